"""Opening a study store: its schema, and the checks that keep ablab off files that are not its own.

A store is opened read-write only by ``ablab study run`` (the driver); every command that only reads
(``runs ls``, ``study report``, ``study compare``, ``--dry-run``) opens it with SQLite's ``mode=ro``
URI, so it can never create a file, add a table or switch a journal mode. Before anything is written
— and before any read-only command reads — :func:`check_store` makes sure the file is an ablab store of
a schema version this code understands: a foreign SQLite database, an empty or random file, or a store
written by a newer ablab is refused with a :class:`StoreError` (a :class:`~ablab.errors.UserError`).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from ablab.errors import UserError
from ablab.metrics import EPOCH_METRICS, RUN_METRICS
from ablab.writing import sqlite_error_message

STORE_NAME = "study.sqlite"
SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "done", "failed", "diverged")
FINISHED = ("done", "diverged")  # never rerun
EPOCH_COLUMNS = EPOCH_METRICS  # the one list: ablab.metrics
STREAM_CHUNK = 500  # rows fetched per step and run ids per IN (...) query: memory holds a chunk, not the store

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,            -- file path or "preset NAME"
    file_text TEXT NOT NULL,         -- the study file as run (latest)
    info_json TEXT NOT NULL,         -- seeds, metric, baseline, cells, comparisons, ...
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    config_hash TEXT NOT NULL,       -- sha256 of the canonical config JSON: the run's identity
    label TEXT NOT NULL,             -- "<cell>/seed<seed>"
    variant TEXT NOT NULL,
    cell TEXT NOT NULL,              -- variant + grid point
    point_json TEXT NOT NULL,        -- the grid point
    seed INTEGER NOT NULL,
    config_json TEXT NOT NULL,
    seeds_json TEXT,                 -- init/data/dropout seeds as used
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ({", ".join(f"'{s}'" for s in STATUSES)})),
    active INTEGER NOT NULL DEFAULT 1,  -- 0: no longer in the study file (kept, not reported)
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    wall_time_s REAL,                -- the trainer's wall time of the run
    host TEXT, pid INTEGER, threads INTEGER,
    versions_json TEXT,              -- python/torch/numpy/ablab versions
    code_version TEXT,               -- git describe of the code that ran (or the package version)
    out_dir TEXT, checkpoint TEXT,   -- artifact paths
    best_epoch INTEGER,
    diverged_json TEXT,
    result_json TEXT,                -- RunResult.to_dict() without the history
    error TEXT,
    UNIQUE (study_id, config_hash)
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(study_id, status);
-- the report streams a study cell by cell (Store.cells)
CREATE INDEX IF NOT EXISTS runs_cell ON runs(study_id, active, cell);
CREATE TABLE IF NOT EXISTS epochs (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,          -- 1-based
    {", ".join(f"{c} REAL" for c in EPOCH_COLUMNS)},
    extra_json TEXT,                 -- any other metric the trainer reported
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    started_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,      -- updated with every finished run: a killed session still counts
    ended_at REAL,
    workers INTEGER,
    pid INTEGER,
    code_version TEXT
);
"""


# Indexes a reader can use but never needs: a store written before one was added gets it at its next
# 'ablab study run' (CREATE INDEX IF NOT EXISTS, in the write-mode open); read-only commands never create
# one — without it SQLite sorts instead (tests/test_store_scale.py reads a store without them).
INDEXES = ("runs_status", "runs_cell")
TABLES = ("meta", "studies", "runs", "epochs", "sessions")
_HINT = "point ablab at a study folder written by 'ablab study run' (or use another --out)"


class StoreError(UserError, RuntimeError):
    """A store that cannot be used (not an ablab store, newer schema, unreadable), or a run-state
    transition that is not allowed."""


def connect_readonly(path: Path, timeout_s: float) -> sqlite3.Connection:
    """A read-only connection that creates no file beside the store. A store no writer has open (no
    ``-wal`` file: a WAL writer keeps one while connected, and removes it on a clean close) is opened
    ``immutable``: SQLite then reads the file as it is, creates no ``-wal``/``-shm`` and touches no journal.
    While a study runs (a ``-wal`` file exists) it is opened ``mode=ro``, sharing the writer's files."""
    if not path.is_file():
        raise StoreError(f"{path}: no such store file")
    idle = not path.with_name(path.name + "-wal").exists()  # a connected WAL writer keeps its -wal file
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    if idle:
        return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=timeout_s, isolation_level=None)
    db = sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None)
    try:
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as e:
        db.close()
        cannot_create = not os.access(path.parent, os.W_OK) or "disk i/o" in str(e).lower()
        if "unable to open" not in str(e) and "disk i/o" not in str(e).lower() or not (cannot_create and idle):
            raise _unusable(path, e) from None
        db = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=timeout_s, isolation_level=None)
    return db


def _unusable(path: Path, e: sqlite3.Error) -> StoreError:
    if "not a database" not in str(e):
        return StoreError(sqlite_error_message(e, path))
    return StoreError(f"{path}: not an ablab study store: not an SQLite database ({e}); {_HINT}")


APPLICATION_ID = 0x61626C62  # "ablb": PRAGMA application_id of every store ablab creates (0 in older ones)


def check_before_writing(path: Path) -> None:
    """Before a store is opened for writing: refuse an existing file unless it is an ablab store or empty,
    without touching it or anything beside it. The file is read ``immutable`` (no lock, no journal rolled
    back, no WAL merged, nothing created). When that shows no tables but a ``-wal`` or ``-journal`` lies
    beside it (their content not yet in the file), a copy of the three is checked instead."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    journals = [path.with_name(path.name + s) for s in ("-wal", "-journal")]
    try:
        if not _check_file(path, immutable=True) or not any(j.exists() for j in journals):
            return
    except StoreError:
        if not any(j.exists() for j in journals):
            raise
    with tempfile.TemporaryDirectory() as tmp:  # the journals' content, read from a copy
        copy = Path(tmp) / path.name
        for f in (path, *journals):
            if f.exists():
                shutil.copyfile(f, copy.with_name(f.name))
        _check_file(copy, immutable=False, shown=path)


def _check_file(path: Path, *, immutable: bool, shown: Path | None = None) -> bool:
    """check_store on a fresh read-only connection to ``path`` (errors name ``shown``); True when empty."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")
    db = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        return check_store(db, shown or path, allow_empty=True)
    finally:
        db.close()


def check_store(db: sqlite3.Connection, path: Path, *, allow_empty: bool) -> bool:
    """Raise StoreError unless ``db`` is an ablab store of a known schema version; True when it is an
    empty database (only allowed — and then initialised by the caller — when ``allow_empty``)."""
    hint = _HINT
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        app_id = int(db.execute("PRAGMA application_id").fetchone()[0])
    except sqlite3.DatabaseError as e:
        raise _unusable(path, e) from None
    if app_id not in (0, APPLICATION_ID):
        raise StoreError(f"{path}: not an ablab study store: its SQLite application id is {app_id:#x}, another "
                         f"program's file; ablab leaves it untouched — {hint}")
    if not tables:
        if allow_empty:
            return True
        size = path.stat().st_size if path.is_file() else 0
        raise StoreError(f"{path}: not an ablab study store: an empty database ({size:,} bytes, no tables); "
                         f"{hint}")
    missing = [t for t in TABLES if t not in tables]
    if missing:
        raise StoreError(f"{path}: not an ablab study store: it has table(s) {', '.join(sorted(tables))} but "
                         f"not {', '.join(missing)}; ablab leaves it untouched — {hint}")
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row is not None else None
    except (sqlite3.DatabaseError, ValueError, TypeError) as e:
        raise StoreError(f"{path}: unreadable schema version in table meta ({e}); {hint}") from None
    if version is None:
        raise StoreError(f"{path}: not an ablab study store: table meta has no schema_version; {hint}")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: written by a newer ablab (store schema version {version}; this ablab reads "
                         f"up to {SCHEMA_VERSION}); upgrade ablab (pip install -U ablab) to read it")
    if version < 1:
        raise StoreError(f"{path}: invalid store schema version {version}; {hint}")
    return False


# The shapes ablab reads back from its JSON columns (key -> allowed types); a store edited into another shape
# is refused by name instead of failing deep inside the report.
_NUM = (int, float)
_PLAIN = (int, float, str, type(None), list, dict)  # what a result's final/info/fingerprint values may be
SHAPES: dict[str, dict[str, tuple[type, ...]]] = {
    "info_json": {"cells": (list,), "comparisons": (list,), "variants": (list,), "seeds": (list,), "base": (dict,),
                  "grid": (list,), "confidence": _NUM, "metric": (str,), "metric_doc": (str,), "baseline": (str,),
                  "description": (str,)},
    "result_json": {"info": (dict,), "final": (dict,), "test_confusion": (list, type(None)), "fingerprint": (dict,),
                    "history": (list,), "status": (str,),
                    "seeds": (dict,), "versions": (dict,), "wall_time_s": _NUM},
    "config_json": {"model": (str,), "dataset": (str,), "model_args": (dict,)},
}
ITEM_SHAPES = {("info_json", "cells"): dict, ("info_json", "variants"): dict, ("info_json", "comparisons"): list,
               ("info_json", "seeds"): int}


def _shape(value: dict[str, Any], column: str, where: str) -> None:
    for key, types in SHAPES.get(column, {}).items():
        if key not in value:
            continue
        v = value[key]
        if not isinstance(v, types) or isinstance(v, bool) and bool not in types:
            raise StoreError(f"{where}: {key} is a {type(v).__name__}, not what ablab writes there; the store was "
                             "edited or is corrupt")
        item = ITEM_SHAPES.get((column, key))
        if item is not None and isinstance(v, list) and not all(isinstance(x, item) for x in v):
            raise StoreError(f"{where}: {key} holds an item that is not a {item.__name__}; the store was edited or "
                             "is corrupt")
    if column == "info_json":
        if "metric" in value and value["metric"] not in RUN_METRICS:
            raise StoreError(f"{where}: metric {value['metric']!r} is not one ablab reports; the store was edited or "
                             "is corrupt")
        if "confidence" in value and not 0 < value["confidence"] < 1:
            raise StoreError(f"{where}: confidence {value['confidence']!r} is not a level in (0, 1); the store was "
                             "edited or is corrupt")
        for c in value.get("cells") or []:
            if not (isinstance(c.get("cell"), str) and isinstance(c.get("variant"), str)
                    and isinstance(c.get("point", {}), dict)):
                raise StoreError(f"{where}: a cell without its name, variant or point; the store was edited or is "
                                 "corrupt")
        if not all(isinstance(v, dict) and isinstance(v.get("name"), str) and isinstance(v.get("overrides", {}), dict)
                   for v in value.get("variants") or []):
            raise StoreError(f"{where}: a variant without its name; the store was edited or is corrupt")
        if not all(isinstance(g, list) and len(g) == 2 and isinstance(g[0], str) and isinstance(g[1], list)
                   for g in value.get("grid") or []):
            raise StoreError(f"{where}: grid must be [key, values] pairs; the store was edited or is corrupt")
        if not all(len(p) == 2 and all(isinstance(x, str) for x in p) for p in value.get("comparisons") or []):
            raise StoreError(f"{where}: comparisons must be [cell, reference] pairs; the store was edited or is "
                             "corrupt")
    for key in ("final", "info", "fingerprint") if column == "result_json" else ():
        if isinstance(value.get(key), dict):
            bad = next((k for k, v in value[key].items() if not isinstance(v, _PLAIN)), None)
            if bad is not None:
                raise StoreError(f"{where}: {key}.{bad} is not a plain value; the store was edited or is corrupt")


def read_object(text: Any, where: str, *, optional: bool = False) -> Any:
    """A JSON object column, parsed; a StoreError naming ``where`` when it is not one (a corrupt store)."""
    if text is None and optional:
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise StoreError(f"{where} is not valid JSON; the store was edited or is corrupt (start a new --out, "
                         "or restore the file)") from None
    if not isinstance(value, dict) and not (optional and value is None):
        raise StoreError(f"{where}: expected a JSON object, got {type(value).__name__}; the store was edited or is "
                         "corrupt")
    if isinstance(value, dict):
        _shape(value, where.rpartition("column ")[2], where)
    return value


@dataclass(frozen=True)
class RunRow:
    """A run as stored (the columns a report needs), its JSON columns parsed and checked."""

    id: int
    study: str
    label: str
    variant: str
    cell: str
    point: dict[str, Any]
    seed: int
    status: str
    attempts: int
    config: dict[str, Any]
    config_hash: str
    wall_time_s: float | None
    started_at: float | None
    finished_at: float | None
    best_epoch: int | None
    diverged: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    out_dir: str | None
    checkpoint: str | None
    code_version: str | None
    versions: dict[str, Any] | None
    active: bool


def run_row(r: sqlite3.Row, path: Path) -> RunRow:
    """A RunRow from a ``runs.*, studies.name AS study_name`` row; a corrupt JSON column is a StoreError."""
    def col(name: str, optional: bool = True) -> Any:
        return read_object(r[name], f"{path}: run {r['id']} ({r['label']}): column {name}", optional=optional)

    return RunRow(
        id=r["id"], study=r["study_name"], label=r["label"], variant=r["variant"], cell=r["cell"],
        point=col("point_json", False), seed=r["seed"], status=r["status"], attempts=r["attempts"],
        config=col("config_json", False), config_hash=r["config_hash"], wall_time_s=r["wall_time_s"],
        started_at=r["started_at"], finished_at=r["finished_at"], best_epoch=r["best_epoch"],
        diverged=col("diverged_json"), result=col("result_json"), error=r["error"],
        out_dir=r["out_dir"], checkpoint=r["checkpoint"], code_version=r["code_version"],
        versions=col("versions_json"), active=bool(r["active"]))


class RunLine(NamedTuple):
    """A run as ``ablab runs ls`` lists it: the columns it prints, read without parsing the run's config, so a
    listing of 200,000 runs streams in seconds (``Store.list_runs``)."""

    id: int
    study: str
    label: str
    status: str
    attempts: int
    test_acc: Any  # final test accuracy as stored (a number, or None / another value: printed as "—")
    best_epoch: int | None
    wall_time_s: float | None
    error: str | None


def find_stores(root: str | Path) -> list[Path]:
    """Store files at ``root`` (a study folder or its store) or one level below (a folder of studies)."""
    root = Path(root)
    if root.is_file():
        return [root]
    if (root / STORE_NAME).is_file():
        return [root / STORE_NAME]
    return sorted(p for p in root.glob(f"*/{STORE_NAME}") if p.is_file()) if root.is_dir() else []


def stream(cur: sqlite3.Cursor) -> Iterable[Any]:
    """A cursor's rows, ``STREAM_CHUNK`` at a time (never the whole result in memory)."""
    while rows := cur.fetchmany(STREAM_CHUNK):
        yield from rows
