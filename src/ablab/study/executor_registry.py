"""The executor registry: where a study's runs execute, by name (``local``, ``inline``, ``ray``, and yours).

One table feeds ``ablab study run --executor`` (its choices and help), ``ablab.run_study(executor=...)`` and
the runner. An entry is a factory that takes the study's :class:`Placement` — decided once, by the runner,
from ``--workers``, ``--device``, ``--runs-per-gpu``, ``--address`` and the runs' configs — and returns an
:class:`~ablab.study.executor.Executor`::
    from ablab.study.executor_registry import register_executor

    register_executor("threads", lambda p: MyThreadExecutor(p.workers), help="runs in threads of this process")
    ablab.run_study("my-study.toml", executor="threads")

Importing this module does not import torch or Ray (the Ray entry imports them when it is built).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ablab.errors import UserError
from ablab.registry import Registry
from ablab.study.executor import Executor, InlineExecutor, LocalExecutor, placed_device, wants_gpu
from ablab.study.ray_executor import RayExecutor, import_ray


@dataclass(frozen=True)
class Placement:
    """Where a study's runs go, decided once per ``study run`` (see :func:`placement`)."""

    workers: int | None  # runs in flight asked for (None: the executor's default; 0: in this process)
    max_workers: int  # runs still to do: no point in more workers
    device: str | None  # --device: overrides every run's configured device (None: as configured)
    runs_per_gpu: int  # concurrent runs sharing one GPU
    gpu: bool  # some run goes to a GPU: executors place workers on GPUs
    address: str | None = None  # a cluster to join (Ray); None: start one locally

    @property
    def pinned(self) -> str | None:
        """The device every run is pinned to (cpu, mps, cuda:N); None where the executor places runs."""
        return self.device if self.device not in (None, "auto", "cuda") else None


@dataclass(frozen=True)
class ExecutorEntry:
    name: str
    build: Callable[[Placement], Executor]
    help: str
    check: Callable[[], None] | None = None  # raises a UserError when the executor cannot run here (a missing extra)


EXECUTORS: Registry[ExecutorEntry] = Registry("executor", sort=False)


def register_executor(name: str, build: Callable[[Placement], Executor], *, help: str = "",
                      check: Callable[[], None] | None = None) -> ExecutorEntry:
    """Add an executor under ``name``: ``build(placement)`` returns the Executor for one study run;
    ``check()``, run before anything is created, raises a UserError when it cannot run here."""
    return EXECUTORS.register(name, ExecutorEntry(name, build, help, check))


def check_executor(name: str, address: str | None = None) -> None:
    """Refuse an unknown executor, an address for one that joins no cluster, or one that cannot run here,
    before a study creates anything."""
    entry = EXECUTORS.get(name)
    if address is not None and name != "ray":
        raise UserError(f"--address: only the ray executor joins a cluster, not {name!r}")
    if entry.check is not None:
        entry.check()


def placement(configured_devices: list[str], *, workers: int | None = None, device: str | None = None,
              runs_per_gpu: int = 1, address: str | None = None) -> Placement:
    """The study's placement: the one place that decides whether runs go to GPUs."""
    if runs_per_gpu < 1:
        raise UserError(f"runs_per_gpu: expected a positive integer, got {runs_per_gpu}")
    gpu = any(wants_gpu(placed_device(device, d)) for d in configured_devices)
    return Placement(workers, max(1, len(configured_devices)), device, runs_per_gpu, gpu, address)


def make_executor(name: str, where: Placement) -> Executor:
    """The executor registered as ``name``, built for ``where``; unknown names say what is known."""
    check_executor(name, where.address)
    return EXECUTORS.get(name).build(where)


def _local(p: Placement) -> Executor:
    if p.workers == 0:
        return InlineExecutor()
    return LocalExecutor(workers=p.workers, max_workers=p.max_workers, runs_per_gpu=p.runs_per_gpu, gpu=p.gpu)


def _ray(p: Placement) -> Executor:
    return RayExecutor(p.address, workers=p.workers or None, runs_per_gpu=p.runs_per_gpu, device=p.device)


def _ray_installed() -> None:
    import_ray()


def _inline(p: Placement) -> Any:
    return InlineExecutor()


register_executor("local", _local, help="local worker processes, one thread each (--workers 0: in this process)")
register_executor("inline", _inline, help="one run after another in this process (debugging)")
register_executor("ray", _ray, help="Ray tasks on a local instance or a cluster (--address; pip install 'ablab[ray]')",
                  check=_ray_installed)
