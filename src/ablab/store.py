"""The run store: one SQLite file per study folder (``<dir>/study.sqlite``).

Tables: ``studies`` (name, file text, expansion), ``runs`` (config JSON and its hash, seed, status,
timings, package and code versions, artifact paths, result), ``epochs`` (per-epoch metrics),
``sessions`` (each ``study run`` invocation, for the study's total wall time).

Crash safety. The file is in WAL mode with ``synchronous=FULL``; every state change (a run created,
started, an epoch recorded, a run finished/failed) is one transaction, so a process killed at any
instant (SIGKILL included) leaves either the state before or the state after that change — never a
half-written run. A run is ``done`` only in the same transaction that stores its final epochs and
result, so "done" always means "complete". Runs left ``running`` by a killed driver are reset to
``pending`` by the next ``study run`` (:meth:`Store.reset_interrupted`), which redoes them.

Concurrency. Several processes may write one store: transactions are ``BEGIN IMMEDIATE`` (writers
queue on SQLite's lock instead of failing half-way) with a generous busy timeout. In ``ablab study
run`` only the driver writes (workers stream their events back to it, see
:mod:`ablab.study.executor`); a lock file keeps two drivers off one study at a time.

Read-only. ``Store(path, readonly=True)`` (``runs ls``, ``study report``/``compare``, ``--dry-run``)
opens with SQLite's ``mode=ro``; every open first checks that the file is an ablab store of a known
schema version (:mod:`ablab.storefile`), so a foreign database is never touched.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from itertools import groupby
from pathlib import Path
from typing import Any

from ablab.storefile import (
    APPLICATION_ID,
    EPOCH_COLUMNS,
    FINISHED,
    SCHEMA,
    SCHEMA_VERSION,
    STATUSES,
    STORE_NAME,
    STREAM_CHUNK,
    RunLine,
    RunRow,
    StoreError,
    check_before_writing,
    check_store,
    connect_readonly,
    find_stores,
    read_object,
    run_row,
    stream,
)
from ablab.writing import sqlite_error_message

__all__ = ["EPOCH_COLUMNS", "FINISHED", "SCHEMA_VERSION", "STATUSES", "STORE_NAME", "RunLine", "RunRow", "Store",
           "StoreError", "find_stores"]


class Store:
    """A connection to a study folder's SQLite store; one per process (connections are not shared)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 60.0, readonly: bool = False) -> None:
        """Open (``readonly=False``: create if needed) the store at ``path`` (a study folder or its
        ``.sqlite`` file). ``readonly`` opens with ``mode=ro``: nothing is created or changed, and the
        write methods fail. Either way a file that is not an ablab store, or one of a newer schema, is
        refused before anything touches it."""
        path = Path(path)
        if path.is_dir() or (path.suffix != ".sqlite" and not (readonly and path.is_file())):
            path = path / STORE_NAME
        self.path = path
        self.readonly = readonly
        if readonly:
            self.db = connect_readonly(path, timeout_s)
            try:
                check_store(self.db, path, allow_empty=False)
            except BaseException:
                self.db.close()
                raise
            self.db.row_factory = sqlite3.Row
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        check_before_writing(path)  # a foreign file: refused before a write-mode connection could touch it
        # autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) in _tx
        try:
            self.db = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None)
        except sqlite3.Error as e:
            raise StoreError(sqlite_error_message(e, path)) from e
        try:
            self.db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            check_store(self.db, path, allow_empty=True)  # before any write: foreign files stay untouched
            mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{path}: could not switch to WAL mode (got {mode})")
            self.db.execute("PRAGMA synchronous = FULL")  # a committed run survives power loss too
            self.db.execute("PRAGMA foreign_keys = ON")
            with self._tx():
                for stmt in SCHEMA.split(";\n"):
                    if stmt.strip():
                        self.db.execute(stmt)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        except sqlite3.Error as e:
            self.db.close()
            raise StoreError(sqlite_error_message(e, path)) from e
        except BaseException:
            self.db.close()
            raise
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: BEGIN IMMEDIATE takes the write lock up front, so concurrent writers wait
        (busy timeout) rather than fail after doing work."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                with suppress(sqlite3.Error):  # a failed write may already have rolled back
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as e:  # disk full, read-only file, locked: one message naming the store
            raise StoreError(sqlite_error_message(e, self.path)) from e

    # ------------------------------------------------------------ studies

    def upsert_study(self, name: str, source: str, file_text: str, info: dict[str, Any]) -> int:
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT id FROM studies WHERE name = ?", (name,)).fetchone()
            if row:
                db.execute("UPDATE studies SET source=?, file_text=?, info_json=?, updated_at=? WHERE id=?",
                           (source, file_text, json.dumps(info), now, row["id"]))
                return int(row["id"])
            cur = db.execute("INSERT INTO studies (name, source, file_text, info_json, created_at, updated_at)"
                             " VALUES (?, ?, ?, ?, ?, ?)", (name, source, file_text, json.dumps(info), now, now))
            return int(cur.lastrowid or 0)

    def studies(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM studies ORDER BY id").fetchall()
        return [{**dict(r), "info": read_object(r["info_json"], f"{self.path}: study {r['name']!r}: column info_json")}
                for r in rows]

    def study(self, name: str | None = None) -> dict[str, Any]:
        studies = self.studies()
        if not studies:
            raise StoreError(f"{self.path}: no study in this store")
        if name is None:
            return studies[-1]
        for s in studies:
            if s["name"] == name:
                return s
        raise StoreError(f"{self.path}: no study named {name!r}")

    # ------------------------------------------------------------ runs

    def sync_runs(self, study_id: int, planned: list[dict[str, Any]]) -> dict[str, int]:
        """Make the store's runs match the expansion, in one transaction: insert missing runs as
        pending, keep existing ones (finished runs are never touched), mark runs that left the study
        file inactive. ``planned``: dicts with config_hash, label, variant, cell, point, seed, config.
        Returns config_hash -> run id."""
        now = time.time()
        ids: dict[str, int] = {}
        with self._tx() as db:
            existing = {r["config_hash"]: r["id"] for r in
                        db.execute("SELECT id, config_hash FROM runs WHERE study_id = ?", (study_id,))}
            for p in planned:
                h = p["config_hash"]
                if h in existing:
                    ids[h] = int(existing[h])
                    db.execute("UPDATE runs SET active = 1, label = ?, variant = ?, cell = ?, point_json = ? "
                               "WHERE id = ?", (p["label"], p["variant"], p["cell"], json.dumps(p["point"]),
                                                existing[h]))
                    continue
                cur = db.execute(
                    "INSERT INTO runs (study_id, config_hash, label, variant, cell, point_json, seed, config_json,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (study_id, h, p["label"], p["variant"], p["cell"], json.dumps(p["point"]), p["seed"],
                     json.dumps(p["config"], sort_keys=True), now))
                ids[h] = int(cur.lastrowid or 0)
            gone = set(existing) - set(ids)
            for h in gone:
                db.execute("UPDATE runs SET active = 0 WHERE id = ?", (existing[h],))
        return ids

    def reset_interrupted(self, study_id: int) -> int:
        """Runs left 'running' by a dead driver go back to 'pending' (their partial epochs are dropped
        when they start again). Call only while holding the study lock."""
        with self._tx() as db:
            cur = db.execute("UPDATE runs SET status = 'pending', error = 'interrupted' "
                             "WHERE study_id = ? AND status = 'running'", (study_id,))
            return cur.rowcount

    def start_run(self, run_id: int, *, out_dir: str | None = None, code_version: str | None = None) -> None:
        """pending/failed -> running; drops epochs of an earlier, unfinished attempt."""
        with self._tx() as db:
            row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"no run with id {run_id}")
            if row["status"] in FINISHED:
                raise StoreError(f"run {run_id} is already {row['status']}")
            db.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            db.execute("UPDATE runs SET status = 'running', attempts = attempts + 1, started_at = ?,"
                       " finished_at = NULL, error = NULL, out_dir = COALESCE(?, out_dir), code_version = ?"
                       " WHERE id = ?", (time.time(), out_dir, code_version, run_id))

    def set_worker(self, run_id: int, *, host: str | None, pid: int | None, threads: int | None) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET host = ?, pid = ?, threads = ? WHERE id = ?", (host, pid, threads, run_id))

    def add_epoch(self, run_id: int, metrics: dict[str, Any]) -> None:
        with self._tx() as db:
            _insert_epoch(db, run_id, metrics)

    def finish_run(self, run_id: int, result: dict[str, Any], session_id: int | None = None) -> str:
        """Store a RunResult dict: all its epochs, the result and status done/diverged, in one
        transaction (so a done run is always complete). Returns the new status."""
        status = "diverged" if result.get("status") == "diverged" else "done"
        history = result.get("history") or []
        rest = {k: v for k, v in result.items() if k != "history"}
        now = time.time()
        with self._tx() as db:
            db.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            for m in history:
                _insert_epoch(db, run_id, m)
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, wall_time_s = ?, seeds_json = ?, versions_json = ?,"
                " checkpoint = ?, best_epoch = ?, diverged_json = ?, result_json = ?, error = NULL,"
                " threads = COALESCE(?, threads) WHERE id = ?",
                (status, now, rest.get("wall_time_s"), json.dumps(rest.get("seeds")),
                 json.dumps(rest.get("versions")), rest.get("checkpoint"), rest.get("best_epoch"),
                 json.dumps(rest.get("diverged")) if rest.get("diverged") else None, json.dumps(rest),
                 rest.get("threads"), run_id))
            if session_id is not None:
                db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (now, session_id))
        return status

    def reset_runs(self, run_ids: list[int]) -> None:
        """Put runs back to pending, their epochs and results removed (to be run again), in one transaction."""
        with self._tx() as db:
            for rid in run_ids:
                db.execute("DELETE FROM epochs WHERE run_id = ?", (rid,))
                db.execute("UPDATE runs SET status = 'pending', finished_at = NULL, wall_time_s = NULL, "
                           "seeds_json = NULL, versions_json = NULL, checkpoint = NULL, best_epoch = NULL, "
                           "diverged_json = NULL, result_json = NULL, error = NULL WHERE id = ?", (rid,))

    def fail_run(self, run_id: int, error: str, session_id: int | None = None) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE runs SET status = 'failed', finished_at = ?, error = ? WHERE id = ?",
                       (now, error, run_id))
            if session_id is not None:
                db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (now, session_id))

    def runs(self, study: str | None = None, *, status: str | None = None, variant: str | None = None,
             active_only: bool = True) -> list[RunRow]:
        return list(self.iter_runs(study, status=status, variant=variant, active_only=active_only))

    def iter_runs(self, study: str | None = None, *, status: str | None = None, variant: str | None = None,
                  active_only: bool = True) -> Iterator[RunRow]:
        """The runs in id order, streamed (``STREAM_CHUNK`` rows at a time)."""
        where, args = _where(study, status, variant, active_only)
        cur = self.db.execute(f"SELECT runs.*, studies.name AS study_name FROM {_FROM} WHERE {where} ORDER BY runs.id",
                              args)
        yield from (run_row(r, self.path) for r in stream(cur))

    def list_runs(self, study: str | None = None, *, status: str | None = None, variant: str | None = None,
                  active_only: bool = True) -> Iterator[RunLine]:
        """What ``ablab runs ls`` prints, in id order, streamed: the final test accuracy is read by SQLite's
        JSON functions, so no run's JSON is parsed in Python — except a result SQLite cannot read (corrupt,
        or holding NaN, which Python writes and SQLite's JSON does not accept), which is parsed and checked
        (a corrupt one is a StoreError naming the run)."""
        where, args = _where(study, status, variant, active_only)
        cur = self.db.execute(
            "SELECT runs.id, studies.name, runs.label, runs.status, runs.attempts, runs.best_epoch, runs.wall_time_s,"
            " runs.error, CASE WHEN runs.result_json IS NULL THEN 'null' WHEN json_valid(runs.result_json) THEN"
            " json_type(runs.result_json) || ' ' || IFNULL(json_type(runs.result_json, '$.final'), 'none')"
            " ELSE 'unread' END, CASE WHEN json_valid(runs.result_json) THEN"
            f" json_extract(runs.result_json, '$.final.test_acc') END FROM {_FROM} WHERE {where} ORDER BY runs.id",
            args)
        for r in stream(cur):
            acc = r[9]
            if r[8] not in ("null", "object none", "object object", "object null"):  # parsed and checked here
                text = self.db.execute("SELECT result_json FROM runs WHERE id = ?", (r[0],)).fetchone()[0]
                result = read_object(text, f"{self.path}: run {r[0]} ({r[2]}): column result_json", optional=True)
                acc = ((result or {}).get("final") or {}).get("test_acc")
            yield RunLine(r[0], r[1], r[2], r[3], r[4], acc, r[5], r[6], r[7])

    def list_widths(self, study: str | None = None, *, status: str | None = None, variant: str | None = None,
                    active_only: bool = True) -> tuple[int, int, int]:
        """The widest id, study name and run label of a listing (characters), so it can stream in columns."""
        where, args = _where(study, status, variant, active_only)
        row = self.db.execute("SELECT LENGTH(MAX(runs.id)), MAX(LENGTH(studies.name)), MAX(LENGTH(runs.label))"
                              f" FROM {_FROM} WHERE {where}", args).fetchone()
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

    def cells(self, study_id: int) -> Iterator[tuple[str, list[RunRow], dict[int, list[dict[str, Any]]]]]:
        """A study's active runs one cell at a time (cells in name order, runs in id order), each with its
        epochs: (cell, runs, run id -> epochs). Memory holds one cell; the ``runs_cell`` index spares SQLite
        a sort of the (cell, id) pairs, and a store without it is read all the same."""
        cur = self.db.execute("SELECT cell, id FROM runs WHERE study_id = ? AND active = 1 ORDER BY cell, id",
                              (study_id,))
        for cell, group in groupby(stream(cur), key=lambda r: r[0]):
            ids = [r[1] for r in group]
            runs: list[RunRow] = []
            epochs: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
            for part in (ids[i:i + STREAM_CHUNK] for i in range(0, len(ids), STREAM_CHUNK)):
                marks = ", ".join("?" * len(part))
                runs += (run_row(r, self.path) for r in self.db.execute(
                    f"SELECT runs.*, studies.name AS study_name FROM {_FROM} WHERE runs.id IN ({marks})"
                    " ORDER BY runs.id", part))
                for r in self.db.execute(f"SELECT * FROM epochs WHERE run_id IN ({marks}) ORDER BY run_id, epoch",
                                         part):
                    epochs[r["run_id"]].append(self._epoch(r))
            yield cell, runs, epochs

    def epochs(self, run_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,)).fetchall()
        return [self._epoch(r) for r in rows]

    def _epoch(self, r: sqlite3.Row) -> dict[str, Any]:
        d = {"epoch": r["epoch"], **{c: r[c] for c in EPOCH_COLUMNS}}
        if r["extra_json"]:
            where = f"{self.path}: run {r['run_id']}, epoch {r['epoch']}: column extra_json"
            d.update(read_object(r["extra_json"], where))
        return d

    def counts(self, study_id: int) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) AS n FROM runs WHERE study_id = ? AND active = 1"
                               " GROUP BY status", (study_id,))
        return {r["status"]: int(r["n"]) for r in rows}

    # ------------------------------------------------------------ sessions (wall time)

    def open_session(self, study_id: int, workers: int, code_version: str | None) -> int:
        now = time.time()
        with self._tx() as db:
            cur = db.execute("INSERT INTO sessions (study_id, started_at, last_seen_at, workers, pid, code_version)"
                             " VALUES (?, ?, ?, ?, ?, ?)", (study_id, now, now, workers, os.getpid(), code_version))
            return int(cur.lastrowid or 0)

    def close_session(self, session_id: int) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE sessions SET last_seen_at = ?, ended_at = ? WHERE id = ?", (now, now, session_id))

    def sessions(self, study_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM sessions WHERE study_id = ? ORDER BY id",
                                                   (study_id,))]

    def wall_time_s(self, study_id: int) -> float:
        """The study's total wall time: the sum of its sessions (a killed session counts up to its last
        finished run)."""
        return sum((s["ended_at"] or s["last_seen_at"]) - s["started_at"] for s in self.sessions(study_id))

    def integrity_check(self) -> str:
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])


_FROM = "runs JOIN studies ON studies.id = runs.study_id"


def _where(study: str | None, status: str | None, variant: str | None, active_only: bool) -> tuple[str, list[Any]]:
    """The WHERE clause of a run listing (over ``_FROM``) and its arguments."""
    sql, args = ["1 = 1"], []
    for column, value in (("studies.name", study), ("runs.status", status), ("runs.variant", variant)):
        if value is not None:
            sql.append(f"{column} = ?")
            args.append(value)
    if active_only:
        sql.append("runs.active = 1")
    return " AND ".join(sql), args


def _insert_epoch(db: sqlite3.Connection, run_id: int, metrics: dict[str, Any]) -> None:
    epoch = int(metrics["epoch"])
    cols = [_num(metrics.get(c)) for c in EPOCH_COLUMNS]
    extra = {k: v for k, v in metrics.items() if k not in EPOCH_COLUMNS and k != "epoch"}
    db.execute(f"INSERT OR REPLACE INTO epochs (run_id, epoch, {', '.join(EPOCH_COLUMNS)}, extra_json)"
               f" VALUES (?, ?, {', '.join('?' * len(EPOCH_COLUMNS))}, ?)",
               (run_id, epoch, *cols, json.dumps(extra) if extra else None))


def _num(v: Any) -> float | None:
    return None if v is None else float(v)
