"""Executors: where a study's runs execute. The driver owns the store; executors only run and report.

The executor interface
======================
A study is a list of independent runs. The driver (:func:`ablab.study.runner.run_study`) decides which
runs still have to happen, hands them to an executor as :class:`RunSpec` s, and consumes the stream of
:class:`RunEvent` s the executor yields back. **Only the driver writes the run store** — executors never
open it — so an executor can run its workers anywhere (other processes, other machines) as long as it
can carry small picklable/JSON-able messages back to the driver.

To implement another engine (Ray, Slurm, a thread pool, ...), subclass :class:`Executor` and implement
:meth:`Executor.run`:
* Input: an iterable of :class:`RunSpec` (plain data: ``run_id``, ``label``, the ``TrainConfig`` as a
  dict, the run's ``out_dir`` and the ``threads`` it may use). Everything in it is JSON-able.
* Execute each spec by calling :func:`execute_run` (``execute_run(spec, emit)``) *in the worker*. It sets
  the thread count, builds the config, calls :func:`ablab.train.fit` and calls ``emit(event)`` for every
  trainer event; it never raises (a failure becomes an ``"error"`` event).
  A spec whose config names the user's own ``train`` function or ``command`` goes to
  :func:`ablab.study.ownloop.execute_own_run` instead, which sends the same events.
* Carry every emitted :class:`RunEvent` back to the driver and **yield** it from :meth:`Executor.run` as
  it arrives (events of different runs may interleave; events of one run keep their order).
* Guarantee exactly one terminal event per spec — ``"end"`` (payload: ``RunResult.to_dict()``) or
  ``"error"`` (payload: ``{"error": message, "traceback": text}``) — including when a worker dies
  (report it as ``"error"``). Return when every spec has had its terminal event.
* Honour :attr:`Executor.workers` as the number of runs in flight, and stop cleanly in :meth:`close`
  (also called when the driver is interrupted: kill what is still running; the driver marks those runs
  as interrupted and the next ``study run`` redoes them).

A Ray executor, for instance, wraps :func:`execute_run` in a ``@ray.remote(num_cpus=spec.threads)`` task
whose ``emit`` puts events on a ``ray.util.queue.Queue``; ``run`` submits up to ``workers`` tasks, drains
the queue and yields, and turns a ``RayTaskError`` into an ``"error"`` event.

Events (``RunEvent.kind``): ``"start"`` (payload: the trainer's start info — n_train, n_val, n_test,
params, spec — plus pid, host, threads), ``"epoch"`` (the trainer's per-epoch metrics dict), ``"end"``
and ``"error"`` as above. A run that fails before training starts sends ``"error"`` without ``"start"``.

:class:`LocalExecutor` runs specs in ``workers`` local processes (``spawn`` context: torch and fork do
not mix), one intra-op thread each by default; :class:`InlineExecutor` runs them one after another in
the driver process (debugging, tests, ``--workers 0``).
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import dataclasses
import multiprocessing as mp
import os
import platform
import queue
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ablab.jsonable import jsonable
from ablab.study.ownloop import execute_own_run, is_own
from ablab.train.config import TrainConfig

EVENT_KINDS = ("start", "epoch", "resume", "end", "error")
TERMINAL = ("end", "error")


@dataclass(frozen=True)
class RunSpec:
    """One run to execute: plain data, so it crosses process and machine boundaries unchanged."""

    run_id: int  # the store's id of the run; events carry it back
    label: str  # human-readable, e.g. "bn/seed3"
    config: dict[str, Any]  # TrainConfig.to_dict()
    out_dir: str  # where the trainer writes metrics.json/csv and the checkpoint
    threads: int = 1  # torch intra-op threads for this run
    device: str | None = None  # where the run computes, set by the executor / --device; None: as configured

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunEvent:
    """Something that happened to a run, sent from the worker to the driver."""

    run_id: int
    kind: str  # start | epoch | end | error
    payload: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)  # unix time at the worker


Emit = Callable[[RunEvent], None]


def execute_run(spec: RunSpec, emit: Emit, *, dataset: Any = None,
                on_saved: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Run one spec in the current process and report through ``emit``; never raises.

    This is the unit of work every executor runs in its workers. ``dataset`` lets an in-process caller
    pass a preloaded :class:`ablab.data.Dataset` (tests); workers normally let the trainer load it.
    """
    if is_own(spec.config):  # the user's own train function or script (ablab.study.ownloop)
        execute_own_run(spec, lambda kind, payload: emit(RunEvent(spec.run_id, kind, payload)))
        return
    try:
        # heavy imports here, in the worker: the driver of a dry run never loads torch
        from ablab.train import fit, set_threads

        set_threads(spec.threads)
        config = TrainConfig.from_dict(spec.config, where=f"run {spec.label}")
        # the stored config keeps the study's `threads` and `device` (where a run goes is not part of
        # what is compared); the trainer gets the executor's allocation
        config = config.replace(threads=spec.threads)
        if spec.device is not None:
            config = config.replace(device=spec.device)

        def callback(event: str, payload: dict[str, Any]) -> None:
            if event == "start":  # the trainer's sample counts, spec, params + where it runs
                info = {k: v for k, v in payload.items() if k != "config"}
                info.update(pid=os.getpid(), host=socket.gethostname(), threads=spec.threads)
                emit(RunEvent(spec.run_id, "start", jsonable(info)))
            elif event in ("epoch", "resume"):  # resume: {epoch} continued from (ablab.train.resume)
                emit(RunEvent(spec.run_id, event, jsonable(dict(payload))))
            elif event == "saved" and on_saved is not None:  # an epoch's state, for executors that carry it
                on_saved(payload)

        result = fit(config, callback=callback, out_dir=spec.out_dir, dataset=dataset)
        emit(RunEvent(spec.run_id, "end", jsonable(result.to_dict())))
    except BaseException as e:  # noqa: BLE001 - reported to the driver, which records the failure
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        emit(RunEvent(spec.run_id, "error", {"error": f"{type(e).__name__}: {e}",
                                             "traceback": traceback.format_exc()}))


def placed_device(override: str | None, configured: str) -> str:
    """The device a run computes on: ``--device`` (``override``) wins over the run's configured device,
    except ``None``/``auto``, which leave it as configured. The one rule every executor places by."""
    return override if override not in (None, "auto") else configured


def wants_gpu(device: str) -> bool:
    """A run the executor may place on one of its GPUs: device ``auto`` or ``cuda`` (``cuda:N`` too
    for Ray, whose tasks see only their GPU). ``cpu`` and ``mps`` runs stay as configured."""
    return device in ("auto", "cuda")


def gpu_devices() -> list[str]:
    """This machine's GPUs as device names (``cuda:0``, ...; or ``mps``); [] without any. torch is
    imported only where a GPU may exist (NVIDIA device files, Apple silicon), so a CPU-only driver
    stays light."""

    nvidia = os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia")
    apple = platform.system() == "Darwin" and platform.machine() == "arm64"
    if not (nvidia or apple):
        return []
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    return ["mps"] if mps is not None and mps.is_available() else []


class Executor(abc.ABC):
    """Runs specs somewhere and yields their events to the driver (see the module docstring)."""

    workers: int = 1

    @abc.abstractmethod
    def run(self, specs: Iterable[RunSpec]) -> Iterator[RunEvent]:
        """Execute every spec; yield each event as it arrives; one terminal event per spec."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop all workers now (runs in flight are abandoned; the driver marks them interrupted)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineExecutor(Executor):
    """Runs specs one after another in the driver process (no parallelism; easy to debug)."""

    def __init__(self, threads: int | None = None, dataset: Any = None) -> None:
        self.workers = 1
        self.threads = threads
        self.dataset = dataset

    def run(self, specs: Iterable[RunSpec]) -> Iterator[RunEvent]:
        for spec in specs:
            if self.threads is not None:
                spec = dataclasses.replace(spec, threads=self.threads)
            events: list[RunEvent] = []
            # events are yielded after the run: the driver writes epochs then (same store content)
            execute_run(spec, events.append, dataset=self.dataset)
            yield from events


def default_workers() -> int:
    """One worker per core: each run uses one intra-op thread, so cores are the parallelism."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class LocalExecutor(Executor):
    """``workers`` spawned processes pulling specs from a queue, each run with ``threads`` threads.

    GPUs: with ``gpu=True`` (the runner sets it when some run asks for device ``auto`` or ``cuda``) and
    GPUs present, there are ``runs_per_gpu`` workers per GPU instead (K concurrent runs share each
    device: small networks leave most of a GPU idle), worker ``i`` pinned to GPU ``i // runs_per_gpu``;
    its runs that ask for ``auto``/``cuda`` compute there. Without GPUs nothing changes.

    Workers are long-lived (torch is imported once per worker, not per run). A worker that dies (killed,
    out of memory) has its in-flight run reported as an ``"error"`` event and is replaced. Workers exit
    when the driver dies, even by SIGKILL (parent-death signal on Linux plus a watchdog thread), so an
    orphan never keeps writing into a run folder that the next ``study run`` redoes.
    """

    def __init__(self, workers: int | None = None, threads: int = 1, start_method: str = "spawn", *,
                 runs_per_gpu: int = 1, gpu: bool = False, max_workers: int | None = None) -> None:
        if runs_per_gpu < 1:
            raise ValueError(f"runs_per_gpu: expected a positive integer, got {runs_per_gpu}")
        self.workers = workers or default_workers()
        self.threads = threads
        self.start_method = start_method
        self.runs_per_gpu = runs_per_gpu
        self.gpus = gpu_devices() if gpu else []
        if self.gpus:
            self.workers = len(self.gpus) * runs_per_gpu
        if max_workers is not None:
            self.workers = max(1, min(self.workers, max_workers))
        self._procs: list[Any] = []
        self._slots: list[str | None] = []  # worker slot -> its GPU (None: CPU)

    def run(self, specs: Iterable[RunSpec]) -> Iterator[RunEvent]:
        ctx = mp.get_context(self.start_method)
        todo = [dataclasses.replace(s, threads=self.threads) for s in specs]
        if not todo:
            return
        tasks = ctx.Queue()
        events = ctx.Queue()
        for spec in todo:
            tasks.put(spec.to_dict())
        n = min(self.workers, len(todo))
        for _ in range(n):
            tasks.put(None)  # one stop marker per worker
        # worker slot -> (process, run_id in flight or None)
        in_flight: dict[int, int | None] = {}
        pending = {s.run_id for s in todo}
        self._procs = []
        self._slots = [self.gpus[i // self.runs_per_gpu] if self.gpus else None for i in range(n)]
        for i in range(n):
            self._procs.append(self._start(ctx, tasks, events, self._slots[i]))
            in_flight[i] = None
        try:
            while pending:
                try:
                    pid, run_id, ev = events.get(timeout=0.5)
                except queue.Empty:
                    yield from self._reap(ctx, tasks, events, in_flight, pending)
                    continue
                w = self._slot_of(pid)
                if ev is None:  # a worker took a spec: remember it, in case the worker dies
                    if w is not None:
                        in_flight[w] = run_id
                    continue
                event = RunEvent(**ev)
                if event.kind in TERMINAL:
                    if w is not None:
                        in_flight[w] = None
                    pending.discard(event.run_id)
                yield event
        finally:
            self.close()

    def _start(self, ctx: Any, tasks: Any, events: Any, device: str | None = None) -> Any:
        p = ctx.Process(target=_worker_main, args=(tasks, events, os.getpid(), device), daemon=True)
        p.start()
        return p

    def _slot_of(self, pid: int) -> int | None:
        for i, p in enumerate(self._procs):
            if p.pid == pid:
                return i
        return None

    def _reap(self, ctx: Any, tasks: Any, events: Any, in_flight: dict[int, int | None],
              pending: set[int]) -> Iterator[RunEvent]:
        """Report the run of a dead worker as failed and start a replacement worker."""
        for i, p in enumerate(self._procs):
            if p.is_alive() or p.exitcode == 0:
                continue
            run_id = in_flight.get(i)
            in_flight[i] = None
            if run_id is not None and run_id in pending:
                pending.discard(run_id)
                yield RunEvent(run_id, "error", {"error": f"worker process died (exit code {p.exitcode})",
                                                 "traceback": ""})
            # the dead worker had consumed its task; a replacement takes the stop marker's place
            self._procs[i] = self._start(ctx, tasks, events, self._slots[i] if i < len(self._slots) else None)
        if pending and all(not p.is_alive() for p in self._procs):
            # every worker exited cleanly but runs are unaccounted for: should not happen; fail them
            for run_id in sorted(pending):
                yield RunEvent(run_id, "error", {"error": "no worker ran this run", "traceback": ""})
            pending.clear()

    def close(self) -> None:
        for p in self._procs:
            if p.is_alive():
                p.kill()
        for p in self._procs:
            p.join(timeout=5)
        self._procs = []


def _worker_main(tasks: Any, events: Any, parent_pid: int, device: str | None = None) -> None:
    """A worker process: take specs until the stop marker; send (pid, run_id, event dict) messages.
    ``device``: the GPU this worker's auto/cuda runs compute on."""
    _die_with_parent(parent_pid)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    pid = os.getpid()

    def emit(event: RunEvent) -> None:
        events.put((pid, event.run_id, asdict(event)))

    while True:
        item = tasks.get()
        if item is None:
            break
        spec = RunSpec(**item)
        if device is not None and spec.device is None and wants_gpu(str(spec.config.get("device", "auto"))):
            spec = dataclasses.replace(spec, device=device)
        # claim the run before anything can fail, so the driver knows which run a crash belongs to
        events.put((pid, spec.run_id, None))
        execute_run(spec, emit)
    events.close()
    events.join_thread()


def _die_with_parent(parent_pid: int) -> None:
    """Exit as soon as the driver is gone (SIGKILL included)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="ablab-parent-watch").start()
