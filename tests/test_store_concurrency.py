"""The SQLite run store: state changes, resume semantics, several processes writing at once."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from ablab.store import Store, StoreError

EPOCHS = 5


def planned(n: int) -> list[dict]:
    return [{"config_hash": f"h{i}", "label": f"v/seed{i}", "variant": "v", "cell": "v", "point": {}, "seed": i,
             "config": {"seed": i}} for i in range(n)]


def result(i: int) -> dict:
    history = [{"epoch": e, "test_acc": 0.5 + 0.01 * e + 0.001 * i, "train_loss": 1.0 / e}
               for e in range(1, EPOCHS + 1)]
    return {"status": "done", "history": history, "final": history[-1], "best_epoch": EPOCHS, "wall_time_s": 1.5,
            "seeds": {"init": i}, "versions": {"torch": "x"}, "threads": 1, "diverged": None}


def test_state_changes_and_resume(tmp_path):
    with Store(tmp_path) as s:
        assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        sid = s.upsert_study("st", "f.toml", "text", {"metric": "test_acc"})
        ids = s.sync_runs(sid, planned(3))
        s.start_run(ids["h0"])
        s.add_epoch(ids["h0"], {"epoch": 1, "test_acc": 0.1})
        assert s.finish_run(ids["h0"], result(0)) == "done"
        s.start_run(ids["h1"])
        s.add_epoch(ids["h1"], {"epoch": 1, "test_acc": 0.2})  # then the driver dies
    with Store(tmp_path) as s:
        sid = s.study("st")["id"]
        assert s.counts(sid) == {"done": 1, "running": 1, "pending": 1}
        assert s.reset_interrupted(sid) == 1
        s.start_run(ids["h1"])  # the retry starts clean: the partial epoch is gone
        assert s.epochs(ids["h1"]) == [] and s.runs(status="running")[0].attempts == 2
        with pytest.raises(StoreError, match="already done"):
            s.start_run(ids["h0"])
        done = s.runs(status="done")[0]
        assert [e["test_acc"] for e in s.epochs(done.id)] == pytest.approx([0.51, 0.52, 0.53, 0.54, 0.55])
        assert done.result["best_epoch"] == EPOCHS and "history" not in done.result
        # the same expansion again inserts nothing; a changed expansion keeps finished runs, deactivates the rest
        assert s.sync_runs(sid, planned(3)) == ids
        s.sync_runs(sid, planned(2))
        assert len(s.runs()) == 2 and len(s.runs(active_only=False)) == 3
        assert s.integrity_check() == "ok"


def test_status_is_checked_by_the_schema(tmp_path):
    with Store(tmp_path) as s:
        sid = s.upsert_study("st", "f", "t", {})
        ids = s.sync_runs(sid, planned(1))
        with pytest.raises(sqlite3.IntegrityError):
            s.db.execute("UPDATE runs SET status = 'finished' WHERE id = ?", (ids["h0"],))


def _writer(path: str, first: int, n: int, barrier) -> None:
    store = Store(path)
    barrier.wait()  # all writers start together
    for i in range(first, first + n):
        store.start_run(i)
        for e in range(1, EPOCHS + 1):
            store.add_epoch(i, {"epoch": e, "test_acc": 0.5, "extra_metric": e})
        store.finish_run(i, result(i))
    store.close()


def test_concurrent_worker_processes(tmp_path):
    """Four processes write runs and epochs into one store at the same time: nothing lost, nothing doubled."""
    workers, per = 4, 6
    with Store(tmp_path) as s:
        sid = s.upsert_study("st", "f", "t", {})
        ids = s.sync_runs(sid, planned(workers * per))
    assert sorted(ids.values()) == list(range(1, workers * per + 1))
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 1 + w * per, per, barrier)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * workers
    with Store(tmp_path) as s:
        assert s.counts(sid) == {"done": workers * per}
        n_epochs = s.db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
        assert n_epochs == workers * per * EPOCHS
        assert all(len(s.epochs(r.id)) == EPOCHS and r.attempts == 1 for r in s.runs())
        assert s.integrity_check() == "ok"
