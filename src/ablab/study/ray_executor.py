"""The Ray executor: a study's runs as Ray tasks, on this machine or on a cluster; the driver keeps the store.

``ablab study run FILE --executor ray [--address ADDR]`` (or ``run_study(..., executor=RayExecutor(...))``)
runs the same study file, into the same SQLite store and the same report, as the local executor. Only
the driver process touches the study folder; what crosses the network is small:
* **to the workers**: each run's :class:`~ablab.study.executor.RunSpec` (plain data) and, once per
  distinct dataset, the dataset itself. The driver loads it (so workers need no data files), puts its
  uint8 arrays into Ray's object store with ``ray.put`` and passes the reference to every task: Ray
  copies it to each node once, and the tasks of a node read the same shared-memory arrays (zero-copy)
  instead of loading or unpickling the dataset once per run.
* **back to the driver**: the ``start`` and ``epoch`` events, as they happen, through a small inbox
  actor on the driver's node; then, as the task's return value, the run's terminal event together with
  the files the trainer wrote (``metrics.json``, ``metrics.csv``, ``checkpoint/``) as bytes. The driver
  writes them into the run's ``out_dir`` *before* it reports the run finished, so a ``done`` run always
  has its checkpoint. With ``shared_fs=True`` (the study folder is on a filesystem every node mounts at
  the same path, e.g. NFS) workers write into ``out_dir`` directly and return no bytes.

Each run is one task with ``num_cpus=threads`` (default 1) and that many torch intra-op threads; at most
``workers`` tasks are in flight (default: the cluster's CPUs // threads). GPUs: when the cluster has
some, a run whose device is ``auto`` or ``cuda[:N]`` asks for ``num_gpus = 1/runs_per_gpu`` and trains on
the GPU Ray gives it (``cuda`` inside the task: Ray sets CUDA_VISIBLE_DEVICES), so ``runs_per_gpu`` runs
share each GPU; ``workers`` then defaults to the cluster's GPUs × ``runs_per_gpu``.

Failures. A run that raises (bad config, diverging data, ...) ends with an ``"error"`` event as with the
local executor: the run is ``failed`` and the next ``study run`` redoes it. A run whose *worker* dies
(killed, out of memory, node lost) is resubmitted up to ``max_retries`` times within the session: the
retry's ``start`` event makes the driver drop the dead attempt's epochs and count another attempt
(``runs.attempts``), so the store never holds two attempts' epochs; events that a dead attempt still
had in flight are discarded by attempt number. When the retries are used up the run is reported as an
``"error"`` and left to the next ``study run``. A run's result is written once, when its task returns,
so a finished run is never lost or duplicated. If the driver itself dies, Ray ends the job's tasks
(non-detached) and the runner's resume redoes the runs that were in flight, exactly as locally.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import socket
import tempfile
import traceback
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ablab.errors import UserError
from ablab.study.executor import (
    TERMINAL,
    Executor,
    RunEvent,
    RunSpec,
    default_workers,
    execute_run,
    placed_device,
    wants_gpu,
)
from ablab.study.ownloop import is_own
from ablab.study.ray_data import dataset_key, pack_dataset, unpack_dataset
from ablab.train import resume

INSTALL_HINT = "pip install 'ablab[ray]'"
POLL_S = 0.25  # driver: seconds between checks for finished tasks (events are drained at the same pace)


class RayUnavailableError(UserError):
    """Ray is not installed, or the cluster cannot be reached."""


def import_ray() -> Any:
    """``import ray``, or a :class:`UserError` that says how to install it (Ray is an optional extra)."""
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(f"--executor ray needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


# --------------------------------------------------------------------------------------- in the worker


class EventInbox:
    """An actor that collects the events of every task until the driver drains them (FIFO per task).

    Ray runs one caller's calls to an actor in order, and ``put`` is awaited by the worker, so every
    event of a task is in the inbox before the task returns.
    """

    def __init__(self) -> None:
        self.items: list[tuple[int, int, dict[str, Any]]] = []

    def put(self, item: tuple[int, int, dict[str, Any]]) -> None:
        self.items.append(item)

    def drain(self) -> list[tuple[int, int, dict[str, Any]]]:
        items, self.items = self.items, []
        return items


def run_task(spec_dict: dict[str, Any], packed: dict[str, Any] | None, inbox: Any, attempt: int,
             shared_fs: bool, resume_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Body of one Ray task: train one run, stream its events, return its terminal event (+ files).

    Epoch-level resume without a shared filesystem: ``resume_state`` (the run folder's last saved epoch,
    packed by the driver) is installed into the task's folder first, so the trainer continues after that
    epoch; each epoch the trainer saves is sent back through the inbox (a ``"saved"`` item) and the driver
    installs it into the run's folder — a retry on any node, or the next ``study run``, resumes from it.

    Returns ``{"event": terminal RunEvent as a dict, "files": {relative path: bytes}}``.
    """
    import ray


    spec = RunSpec(**spec_dict)
    terminal: list[RunEvent] = []

    def emit(event: RunEvent) -> None:
        if event.kind in TERMINAL:
            terminal.append(event)  # returned with the files, after they are collected
        else:
            ray.get(inbox.put.remote((spec.run_id, attempt, asdict(event))))

    def send_state(saved: dict[str, Any]) -> None:
        item = asdict(RunEvent(spec.run_id, "saved", resume.pack(saved["path"])))
        ray.get(inbox.put.remote((spec.run_id, attempt, item)))

    dataset = unpack_dataset(packed) if packed is not None else None
    if shared_fs:
        execute_run(spec, emit, dataset=dataset)
        return {"event": asdict(terminal[-1]), "files": {}}
    tmp = tempfile.mkdtemp(prefix="ablab-run-")
    try:
        if resume_state is not None:
            resume.install(tmp, resume_state)
        execute_run(dataclasses.replace(spec, out_dir=tmp), emit, dataset=dataset, on_saved=send_state)
        event = terminal[-1]
        files = {}
        for path in sorted(Path(tmp).rglob("*")):
            if path.is_file():
                files[path.relative_to(tmp).as_posix()] = path.read_bytes()
        payload = _relocate(event.payload, tmp, spec.out_dir)
        if "metrics.json" in files:  # the trainer wrote the worker's paths into it

            metrics = _relocate(json.loads(files["metrics.json"]), tmp, spec.out_dir)
            files["metrics.json"] = (json.dumps(metrics, indent=2) + "\n").encode()
        return {"event": asdict(RunEvent(event.run_id, event.kind, payload, event.time)), "files": files}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _relocate(payload: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The result's checkpoint path as the driver will see it (``old`` folder moved to ``new``)."""
    ckpt = payload.get("checkpoint")
    if isinstance(ckpt, str) and ckpt.startswith(old):
        payload = {**payload, "checkpoint": str(Path(new) / Path(ckpt).relative_to(old))}
    return payload


# ----------------------------------------------------------------------------------------- the driver


class RayExecutor(Executor):
    """Runs specs as Ray tasks; see the module docstring for what travels where and how failures go.

    Args:
        address: ``None`` starts a private local Ray instance (``num_cpus`` CPUs, stopped in
            :meth:`close`); ``"auto"`` joins the cluster this machine belongs to (``ray start``);
            ``"ray://host:10001"`` joins a remote cluster through Ray Client. If Ray is already
            initialized in this process (a notebook, the tests), that instance is used as is.
        workers: runs in flight at once (default: the cluster's CPUs // ``threads``).
        threads: CPUs reserved per run and torch intra-op threads of each run.
        num_cpus: CPUs of a locally started instance (default: this machine's cores).
        max_retries: resubmissions of a run whose worker died (0: report it failed at once).
        shared_fs: the study folder is visible at the same path on every node; workers write their
            run folders themselves instead of returning the files to the driver.
        runtime_env: passed to ``ray.init`` when this executor connects (e.g. ``{"py_modules": [...]}``
            to ship ablab to nodes that lack it); ablab and torch must otherwise be installed on every node.
    """

    def __init__(self, address: str | None = None, *, workers: int | None = None, threads: int = 1,
                 num_cpus: int | None = None, max_retries: int = 2, shared_fs: bool = False,
                 runtime_env: dict[str, Any] | None = None, runs_per_gpu: int = 1, device: str | None = None) -> None:
        if threads < 1:
            raise UserError(f"RayExecutor: threads must be >= 1, got {threads}")
        if max_retries < 0:
            raise UserError(f"RayExecutor: max_retries must be >= 0, got {max_retries}")
        if runs_per_gpu < 1:
            raise UserError(f"RayExecutor: runs_per_gpu must be >= 1, got {runs_per_gpu}")
        self.runs_per_gpu = runs_per_gpu
        self.device = device  # --device: overrides every run's device (None/auto: as configured)
        self.ray = import_ray()
        self.address = address
        self.threads = threads
        self.max_retries = max_retries
        self.shared_fs = shared_fs
        self._owns_ray = False
        self._inflight: dict[Any, tuple[RunSpec, int]] = {}  # task ref -> (spec, attempt)
        self._out_dirs: dict[int, str] = {}  # run id -> its folder on the driver
        self._inbox: Any = None
        self._connect(num_cpus, runtime_env)
        resources = self.ray.cluster_resources()
        cpus = int(resources.get("CPU", 1))
        self.gpus = 0 if device in ("cpu", "mps") else int(resources.get("GPU", 0))
        self.workers = workers or (self.gpus * runs_per_gpu if self.gpus else max(1, cpus // threads))

    def _connect(self, num_cpus: int | None, runtime_env: dict[str, Any] | None) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        # workers' output would garble the driver's progress display; Ray's own notices are not errors
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR,
                                  "runtime_env": runtime_env}
        if self.address is not None:
            _probe(self.address)
        try:
            if self.address is None:
                ray.init(address="local", num_cpus=num_cpus or default_workers(), include_dashboard=False,
                         **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = "a local Ray instance" if self.address is None else f"the Ray cluster at {self.address!r}"
            hint = "" if self.address is None else (
                " (start one with `ray start --head`, or check the address: `auto` joins the cluster this "
                "machine is part of, `ray://HOST:10001` connects through Ray Client)")
            raise RayUnavailableError(f"could not start or reach {where}: {e}{hint}") from None
        self._owns_ray = True

    def _remote(self) -> tuple[Any, Any]:
        """The remote task function and a fresh inbox actor placed on the driver's node."""
        ray = self.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = ray.remote(run_task)
        strategy = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        inbox = ray.remote(EventInbox).options(num_cpus=0, scheduling_strategy=strategy).remote()
        return task, inbox

    def run(self, specs: Iterable[RunSpec]) -> Iterator[RunEvent]:
        ray = self.ray
        todo = deque(dataclasses.replace(s, threads=self.threads) for s in specs)
        if not todo:
            return
        task, self._inbox = self._remote()
        datasets: dict[tuple[Any, ...], Any] = {}  # dataset key -> object ref, or the load error
        attempts: dict[int, int] = {}  # run id -> current attempt (1-based)
        try:
            while todo or self._inflight:
                while todo and len(self._inflight) < self.workers:
                    spec = todo.popleft()
                    failed = self._submit(task, spec, datasets, attempts)
                    if failed is not None:
                        yield failed
                if not self._inflight:
                    continue
                ready, _ = ray.wait(list(self._inflight), num_returns=1, timeout=POLL_S)
                yield from self._drain(attempts)
                for ref in ready:
                    spec, attempt = self._inflight.pop(ref)
                    yield from self._finish(ref, spec, attempt, attempts, todo)
        finally:
            self._cancel()

    def _submit(self, task: Any, spec: RunSpec, datasets: dict[tuple[Any, ...], Any],
                attempts: dict[int, int]) -> RunEvent | None:
        """Start one attempt of ``spec``; an ``"error"`` event instead if its dataset cannot be loaded."""
        key = dataset_key(spec.config) if not is_own(spec.config) else ("own loop",)  # loads its own data
        if key not in datasets and key == ("own loop",):
            datasets[key] = None
        elif key not in datasets:
            try:
                datasets[key] = self.ray.put(pack_dataset(spec.config))
            except Exception as e:  # noqa: BLE001 - every run on this dataset fails with the message
                datasets[key] = e
        ref = datasets[key]
        if isinstance(ref, Exception):
            return RunEvent(spec.run_id, "error", {"error": f"{type(ref).__name__}: {ref}", "traceback": ""})
        attempt = attempts[spec.run_id] = attempts.get(spec.run_id, 0) + 1
        # max_retries=0: a dead worker's run comes back to _finish, which decides about the retry
        options: dict[str, Any] = {"num_cpus": spec.threads, "max_retries": 0, "name": f"ablab {spec.label}"}
        device = placed_device(self.device, str(spec.config.get("device", "auto")))
        if self.gpus and (wants_gpu(device) or device.startswith("cuda:")):
            options["num_gpus"] = 1 / self.runs_per_gpu  # K runs share a GPU
            spec = dataclasses.replace(spec, device="cuda")  # the task sees only its GPU
        elif self.device not in (None, "auto"):
            spec = dataclasses.replace(spec, device=self.device)

        state = None if self.shared_fs else resume.pack_latest(spec.out_dir)  # continue after its last epoch
        handle = task.options(**options).remote(spec.to_dict(), ref, self._inbox, attempt, self.shared_fs, state)
        self._out_dirs[spec.run_id] = spec.out_dir
        self._inflight[handle] = (spec, attempt)
        return None

    def _drain(self, attempts: dict[int, int]) -> Iterator[RunEvent]:
        """Yield the streamed events of current attempts (a dead attempt's leftovers are dropped)."""
        for run_id, attempt, ev in self.ray.get(self._inbox.drain.remote()):
            if attempts.get(run_id) != attempt:
                continue
            if ev["kind"] == "saved":  # an epoch's state: into the run's folder, for a retry to resume from

                with contextlib.suppress(OSError, ValueError):
                    resume.install(self._out_dirs[run_id], ev["payload"])
                continue
            yield RunEvent(**ev)

    def _finish(self, ref: Any, spec: RunSpec, attempt: int, attempts: dict[int, int],
                todo: deque[RunSpec]) -> Iterator[RunEvent]:
        """A task ended: write its files and yield its terminal event, or retry a dead worker's run."""
        ray = self.ray
        try:
            out = ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # our task code raised (execute_run itself never does)
            yield RunEvent(spec.run_id, "error", {"error": f"task failed: {e.cause!r}", "traceback": str(e)})
            return
        except ray.exceptions.TaskCancelledError:
            return
        except ray.exceptions.RayError as e:  # the worker or its node died: the attempt is lost
            yield from self._drain(attempts)  # anything it said before dying belongs to this attempt
            reason = f"{type(e).__name__}: {_first_sentence(str(e))}"
            if attempt <= self.max_retries:
                todo.appendleft(spec)  # retried next, before runs that have not started yet
                logging.getLogger(__name__).warning("run %s: worker died (%s); retrying (attempt %d)",
                                                    spec.label, reason, attempt + 1)
            else:
                yield RunEvent(spec.run_id, "error", {
                    "error": f"worker died in each of {attempt} attempt(s); last: {reason}", "traceback": ""})
            return
        event = RunEvent(**out["event"])
        try:
            _write_files(Path(spec.out_dir), out["files"])
            if event.kind == "end":  # finished: its epoch states served their purpose (the checkpoint stays)

                resume.clear(spec.out_dir)
        except OSError as e:
            event = RunEvent(spec.run_id, "error", {"error": f"could not write the run's files into "
                                                    f"{spec.out_dir}: {e}", "traceback": traceback.format_exc()})
        yield event

    def _cancel(self) -> None:
        """Stop every task still running and the inbox."""
        ray = self.ray
        for ref in list(self._inflight):
            with contextlib.suppress(Exception):  # already finished or gone
                ray.cancel(ref, force=True)
        self._inflight.clear()
        if self._inbox is not None:
            with contextlib.suppress(Exception):
                ray.kill(self._inbox)
            self._inbox = None

    def close(self) -> None:
        if not self.ray.is_initialized():
            return
        self._cancel()
        if self._owns_ray:
            self.ray.shutdown()
            self._owns_ray = False


def _first_sentence(text: str) -> str:
    """Ray's failure messages run to a paragraph; the first sentence says what happened."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.split(". ")[0].rstrip(".")


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an unreachable ``host:port`` (Ray itself keeps retrying for minutes)."""

    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return  # "auto" and other forms: Ray resolves them and reports errors itself
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise RayUnavailableError(
            f"cannot reach the Ray cluster at {address!r} ({e}); is `ray start --head` running there, and is "
            "the port open? (`auto` joins the cluster this machine is part of)") from None


def _write_files(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write a run's returned files under ``out_dir`` (names are relative, checked to stay inside)."""
    root = out_dir.resolve()
    for rel, data in files.items():
        path = (root / rel).resolve()
        if root not in path.parents:
            raise OSError(f"refusing to write {rel!r} outside the run folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
