"""Driving a study: expand, sync with the store, run what is left, record every event, report.

Resume is the default: ``run_study`` on a folder that already holds the study skips runs that are
``done`` or ``diverged``, and redoes runs that are ``pending``, ``failed`` or were left ``running`` by a
killed driver. Only this driver process writes the store (see :mod:`ablab.store`); a lock file keeps a
second driver off the same folder while one is running.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablab.store import FINISHED, Store, find_stores
from ablab.study import ownloop
from ablab.study.executor import Executor, RunEvent, RunSpec
from ablab.study.executor_registry import check_executor, make_executor, placement
from ablab.study.expand import PlannedRun, cell_name, comparisons, expand, grid_points
from ablab.study.fingerprint import fingerprint, what_differs
from ablab.study.studyfile import METRICS, Study, StudyError, default_out_dir
from ablab.study.tensorboard import TensorBoardLog, require_tensorboard
from ablab.study.validate import validate_study
from ablab.train import resume
from ablab.train.config import SEED_KEYS
from ablab.version import __version__
from ablab.writing import write_atomic

LOCK_NAME = ".lock"
STUDY_COPY = "study.toml"

# on_event(kind, info): "study_start" {total, todo, done, workers}, "run_start" {label},
# "epoch" {label, epoch, epochs, metrics}, "run_end" {label, status, result|error, ...}, "study_end" {...}
OnEvent = Callable[[str, dict[str, Any]], None]


@dataclass
class StudyOutcome:
    """What a ``run_study`` call did."""

    name: str
    out_dir: Path
    total: int  # runs in the study
    skipped: int  # already finished before this call
    ran: int  # finished in this call (done or diverged)
    failed: list[str] = field(default_factory=list)  # labels of runs that failed in this call
    errors: dict[str, str] = field(default_factory=dict)  # label -> why it failed (first line of the error)
    counts: dict[str, int] = field(default_factory=dict)  # status -> runs, after this call
    session_wall_s: float = 0.0
    study_wall_s: float = 0.0  # all sessions of the study


def code_version() -> str:
    """``git describe --always --dirty`` of the ablab source tree when it is a checkout, else the
    package version."""

    src = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=src, capture_output=True,
                             text=True, timeout=5, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return f"ablab {__version__} ({out.stdout.strip()})"
    except (OSError, subprocess.SubprocessError):
        pass
    return f"ablab {__version__}"


def study_info(study: Study) -> dict[str, Any]:
    """What the report needs besides the runs, stored with the study."""
    return {
        "description": study.description, "seeds": list(study.seeds), "metric": study.metric,
        "metric_doc": METRICS[study.metric], "baseline": study.baseline, "reference": study.reference,
        "confidence": study.confidence, "grid": [[k, list(v)] for k, v in study.grid],
        "variants": [{"name": v.name, "description": v.description, "use": list(v.use),
                      "overrides": v.overrides} for v in study.variants],
        "cells": [_cell(v.name, p) for v in study.variants for p in grid_points(study)],
        "comparisons": comparisons(study), "base": study.base,
    }


def _cell(variant: str, point: dict[str, Any]) -> dict[str, Any]:
    return {"cell": cell_name(variant, point), "variant": variant, "point": point}


def run_dir_name(run: PlannedRun) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", run.label).strip("_")
    return f"{safe}-{run.key[:8]}"


@contextmanager
def study_lock(out_dir: Path) -> Iterator[None]:
    """Exclusive lock on the study folder for this process's lifetime (released by the kernel when the
    process dies, SIGKILL included)."""
    path = out_dir / LOCK_NAME
    f = open(path, "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise StudyError(f"{out_dir}: another 'ablab study run' (pid {holder}) is running this study") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield
    finally:
        f.close()


def prepare(study: Study, out_dir: Path) -> tuple[Store, int, list[PlannedRun], dict[str, int]]:
    """Open the store, record the study and make its runs match the expansion (one transaction)."""
    planned = expand(study)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = Store(out_dir)
    existing = store.studies()
    if existing and all(s["name"] != study.name for s in existing):
        store.close()
        raise StudyError(f"{out_dir} holds study {existing[0]['name']!r}, not {study.name!r}; use another --out")
    study_id = store.upsert_study(study.name, study.source, study.text, study_info(study))
    ids = store.sync_runs(study_id, [
        {"config_hash": r.key, "label": r.label, "variant": r.variant, "cell": r.cell, "point": dict(r.point),
         "seed": r.seed, "config": r.config.to_dict()} for r in planned])
    return store, study_id, planned, ids


def run_study(study: Study, out_dir: str | Path | None = None, *, workers: int | None = None,
              executor: str | Executor = "local", on_event: OnEvent | None = None,
              runs_per_gpu: int = 1, device: str | None = None, address: str | None = None,
              validate: bool = True, rerun_changed: bool = False, tensorboard: bool | None = None) -> StudyOutcome:
    """Run every unfinished run of ``study`` into ``out_dir`` (default ``runs/<name>``); resumable. The
    whole study is validated first (:func:`~ablab.study.validate.validate_study`): a study that could
    only fail raises a StudyError before any folder is created or any run starts.

    ``device``: where every run computes (auto, cpu, cuda, cuda:N, mps), overriding the study's
    ``device`` key without changing the runs' stored configs (like ``threads``); None: as configured.
    ``runs_per_gpu``: concurrent runs per GPU when runs go to GPUs (see LocalExecutor).
    ``executor``: a name registered in :mod:`ablab.study.executor_registry` (``local``, ``inline``,
    ``ray``, ...; ``address``: the Ray cluster to join), or an :class:`Executor` instance.
    ``validate=False``: the caller has validated ``study`` already (the CLI does, before its progress bar).
    ``rerun_changed``: re-run the finished runs made with another model source or other data files than
    the current ones (:mod:`ablab.study.fingerprint`); without it such a study is refused."""

    tensorboard = study.tensorboard if tensorboard is None else tensorboard
    if tensorboard:
        require_tensorboard()
    if validate:
        validate_study(study)
    if isinstance(executor, str):
        check_executor(executor, address)
    out = Path(out_dir) if out_dir is not None else default_out_dir(study)
    out.mkdir(parents=True, exist_ok=True)
    emit = on_event or (lambda kind, info: None)
    t0 = time.time()
    with study_lock(out):
        copy = out / STUDY_COPY
        if copy.is_file() and not find_stores(out) and copy.read_bytes() != study.text.encode():
            raise StudyError(f"{copy}: a study.toml that is not this study's copy is already there, and {out} "
                             "holds no study store; ablab does not overwrite it — choose another --out")
        store, study_id, planned, ids = prepare(study, out)  # a foreign store is refused before anything is written
        write_atomic(copy, study.text)
        try:
            store.reset_interrupted(study_id)
            current = _check_fingerprints(store, study, planned, ids, rerun_changed)
            status = {r.id: r.status for r in store.runs(study.name)}
            todo = [r for r in planned if status[ids[r.key]] not in FINISHED]
            skipped = len(planned) - len(todo)
            where = placement([r.config.device for r in todo], workers=workers, device=device,
                              runs_per_gpu=runs_per_gpu, address=address)
            if isinstance(executor, str):
                executor = make_executor(executor, where)
            pinned = where.pinned
            version = code_version()
            session = store.open_session(study_id, executor.workers, version)
            specs = []
            by_id: dict[int, PlannedRun] = {}
            for r in todo:
                run_out = out / "runs" / run_dir_name(r)
                kept = resume.has_state(run_out) or ownloop.has_state(run_out)
                if run_out.exists() and not kept:  # a partial attempt: start clean
                    shutil.rmtree(run_out)  # (one with a finished epoch's state resumes from it instead)
                specs.append(RunSpec(ids[r.key], r.label, r.config.to_dict(), str(run_out), threads=1, device=pinned))
                by_id[ids[r.key]] = r
            if tensorboard:
                emit = _also(TensorBoardLog(out / "tensorboard", by_id, varied_keys(planned)), emit)
            emit("study_start", {"name": study.name, "total": len(planned), "todo": len(todo), "done": skipped,
                                 "workers": executor.workers, "epochs": {ids[r.key]: r.config.epochs for r in todo},
                                 "out_dir": str(out)})
            outcome = StudyOutcome(study.name, out, len(planned), skipped, 0)
            started: set[int] = set()
            try:
                with executor:
                    for event in executor.run(specs):
                        _record(store, session, event, by_id, specs, started, outcome, emit, version, current)
            except BaseException:
                # Ctrl-C or a crash of the driver itself: runs in flight go back to pending
                store.reset_interrupted(study_id)
                store.close_session(session)
                raise
            store.close_session(session)
            outcome.counts = store.counts(study_id)
            outcome.session_wall_s = time.time() - t0
            outcome.study_wall_s = store.wall_time_s(study_id)
            emit("study_end", {"outcome": outcome})
            return outcome
        finally:
            store.close()


def _also(first: OnEvent, then: OnEvent) -> OnEvent:
    def both(kind: str, info: dict[str, Any]) -> None:
        first(kind, info)
        then(kind, info)

    return both


def varied_keys(planned: list[PlannedRun]) -> list[str]:
    """The config keys whose value differs between the study's runs (seeds aside)."""
    dicts = [r.config.to_dict() for r in planned]
    keys = sorted({k for d in dicts for k in d} - set(SEED_KEYS) - {"seed"})
    return [k for k in keys if any(d.get(k) != dicts[0].get(k) for d in dicts)]


def _check_fingerprints(store: Store, study: Study, planned: list[PlannedRun], ids: dict[str, int],
                        rerun_changed: bool) -> dict[int, dict[str, str]]:
    """run id -> the current fingerprint of every planned run; finished runs recorded with another one are
    refused (StudyError naming what changed and how many) or, with ``rerun_changed``, reset to pending."""
    memo: dict[Any, dict[str, str]] = {}
    current = {ids[r.key]: fingerprint(r.config, memo) for r in planned}
    configs = {ids[r.key]: r.config for r in planned}
    changed: dict[str, list[int]] = {}
    for row in store.runs(study.name):
        if row.id not in current or row.status not in FINISHED or not isinstance(row.result, dict):
            continue
        recorded = row.result.get("fingerprint")
        if isinstance(recorded, dict) and recorded != current[row.id]:
            for what in what_differs(recorded, current[row.id], configs[row.id]) or ["other code or data"]:
                changed.setdefault(what, []).append(row.id)
    if changed and not rerun_changed:
        said = "; ".join(f"{len(v)} run(s) were made with {k}" for k, v in changed.items())
        raise StudyError(f"{study.source}: {said}. Re-run them with --rerun-changed (Python: rerun_changed=True), "
                         "or start a new study folder with --out")
    if changed:
        store.reset_runs(sorted({i for v in changed.values() for i in v}))
    return current


def _record(store: Store, session: int, event: RunEvent, by_id: dict[int, PlannedRun], specs: list[RunSpec],
            started: set[int], outcome: StudyOutcome, emit: OnEvent, version: str,
            fingerprints: dict[int, dict[str, str]] | None = None) -> None:
    """Write one event to the store (one transaction) and tell the caller."""
    run = by_id.get(event.run_id)
    if run is None:
        return
    label = run.label
    out_dir = next(s.out_dir for s in specs if s.run_id == event.run_id)
    if event.kind == "start" or (event.kind in ("epoch", "end", "error") and event.run_id not in started):
        started.add(event.run_id)
        store.start_run(event.run_id, out_dir=out_dir, code_version=version)
        p = event.payload if event.kind == "start" else {}
        store.set_worker(event.run_id, host=p.get("host"), pid=p.get("pid"), threads=p.get("threads"))
        emit("run_start", {"label": label, "run_id": event.run_id})
    if event.kind == "epoch":
        store.add_epoch(event.run_id, event.payload)
        emit("epoch", {"label": label, "run_id": event.run_id, "epoch": event.payload.get("epoch"),
                       "epochs": run.config.epochs, "metrics": event.payload})
    elif event.kind == "end":
        result = {**event.payload, "fingerprint": (fingerprints or {}).get(event.run_id, {})}
        status = store.finish_run(event.run_id, result, session)
        outcome.ran += 1
        emit("run_end", {"label": label, "run_id": event.run_id, "status": status, "result": event.payload,
                         "epochs": run.config.epochs})
    elif event.kind == "error":
        error = str(event.payload.get("error", "unknown error"))
        tb = str(event.payload.get("traceback", ""))
        store.fail_run(event.run_id, error + ("\n" + tb if tb else ""), session)
        outcome.failed.append(label)
        outcome.errors[label] = error.strip().splitlines()[0] if error.strip() else "unknown error"
        emit("run_end", {"label": label, "run_id": event.run_id, "status": "failed", "error": error,
                         "epochs": run.config.epochs})
