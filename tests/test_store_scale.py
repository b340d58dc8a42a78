"""The store scales (issue 19, item 10): `runs ls` and the report stream from SQLite — one chunk of rows, one cell
of runs at a time — so a listing is exact, in a stable order, and memory does not grow with the store; the
indexes that spare SQLite its sorts are optional: a store without them (written before they existed) reads the
same, read-only commands never add them, and the next `study run` does. Timings: benchmarks/store_scale.py."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sqlite3
import tracemalloc
from itertools import islice
from pathlib import Path

import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.report.analysis import analyze
from ablab.report.load import load
from ablab.store import Store, StoreError
from ablab.storefile import INDEXES

RUNS = 20_000
_spec = importlib.util.spec_from_file_location("store_scale", Path(__file__).parents[1] / "benchmarks" /
                                               "store_scale.py")
store_scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(store_scale)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """20,000 runs: 200 cells × 100 seeds, 2 epochs each, about 1% failed and 0.5% diverged."""
    folder = tmp_path_factory.mktemp("scale") / "study"
    store_scale.build(folder, RUNS, epochs=2)
    return folder


def _ro(folder: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{folder / 'study.sqlite'}?mode=ro&immutable=1", uri=True)


def _expected_lines(folder: Path) -> list[list[str]]:
    """What runs ls must print, read independently: plain SQL and json.loads, in id order."""
    out = []
    for rid, label, status, attempts, best, wall, result in _ro(folder).execute(
            "SELECT id, label, status, attempts, best_epoch, wall_time_s, result_json FROM runs ORDER BY id"):
        acc = json.loads(result)["final"]["test_acc"] if result else None
        out.append([str(rid), "scale", label, status, str(attempts), "—" if acc is None else f"{100 * acc:.2f}",
                    str(best or "—"), f"{wall:.1f}" if wall else "—"])
    return out


def _listing(folder: Path, *args: str) -> list[str]:
    res = CliRunner().invoke(cli, ["runs", "ls", str(folder), *args])
    assert res.exit_code == 0, res.output
    return res.output.splitlines()


def test_runs_ls_lists_every_run_once_in_id_order_with_its_stored_values(big):
    lines = _listing(big)
    assert lines[0].split() == ["id", "study", "run", "status", "attempts", "final", "test", "acc", "best", "epoch",
                                "wall", "(s)"]
    assert lines[-1] == f"{RUNS} run(s)"
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[1:-1]]
    assert rows == _expected_lines(big)
    assert {r[3] for r in rows} == {"done", "failed", "diverged"}
    assert _listing(big) == lines  # stable: the same bytes twice
    failed = _listing(big, "--status", "failed", "--errors")
    failures = [f"scale {r[2]}: RuntimeError: out of memory" for r in rows if r[3] == "failed"]
    assert f"{len(failures)} run(s)" in failed and failed[-len(failures):] == failures and len(failures) == 207


def test_listing_and_report_stream_instead_of_holding_the_store(big):
    """Peak Python memory while streaming is a small fraction of holding the rows (a chunk of 500 rows, one cell
    of 100 runs at a time): memory does not grow with the store."""
    with Store(big, readonly=True) as store:
        study_id = store.study()["id"]
        tracemalloc.start()
        n = sum(1 for _ in store.list_runs())
        stream_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        tracemalloc.start()
        held = list(store.list_runs())
        held_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert n == len(held) == RUNS
        assert stream_peak < held_peak / 10, (stream_peak, held_peak)

        tracemalloc.start()
        cells = sum(len(runs) for _, runs, _ in islice(store.cells(study_id), 100))  # half the store, streamed
        cells_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        tracemalloc.start()
        runs = list(islice(store.iter_runs(), RUNS // 8))  # an eighth of it, held, with its epochs
        epochs = {r.id: store.epochs(r.id) for r in runs}
        runs_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert cells == RUNS // 2 and len(epochs) == RUNS // 8
        assert cells_peak < runs_peak / 10, (cells_peak, runs_peak)


def test_the_report_of_a_large_store_matches_a_direct_computation(big):
    r = analyze(big)
    assert sum(sum(c.counts.values()) for c in r.cells) == RUNS == len(r.runs)
    assert len(r.cells) == 200 and len(r.comparisons) == 190
    db = _ro(big)
    accs = [json.loads(t)["final"]["test_acc"] for (t,) in db.execute(
        "SELECT result_json FROM runs WHERE cell = 'v07 lr=0.001' AND status = 'done'")]
    cell = {c.cell: c for c in r.cells}["v07 lr=0.001"]
    assert cell.n == len(accs) and cell.metrics["test_acc"].mean == pytest.approx(sum(accs) / len(accs), abs=1e-12)
    assert r.counts == {"done": RUNS - sum(r.counts[s] for s in ("failed", "diverged")),
                        "failed": sum(1 for n in range(RUNS) if n % 97 == 13),
                        "diverged": sum(1 for n in range(RUNS) if n % 97 != 13 and n % 211 == 5)}


def test_indexes_are_used_optional_and_never_added_by_a_reader(big, tmp_path):
    db = _ro(big)
    plan = " ".join(str(r) for r in db.execute(
        "EXPLAIN QUERY PLAN SELECT cell, id FROM runs WHERE study_id = 1 AND active = 1 ORDER BY cell, id"))
    assert "runs_cell" in plan and "TEMP B-TREE" not in plan, plan  # the index, no sort
    old = tmp_path / "old"
    shutil.copytree(big, old)
    raw = sqlite3.connect(old / "study.sqlite")
    for name in INDEXES:
        raw.execute(f"DROP INDEX {name}")
    raw.commit()
    raw.close()
    before = (old / "study.sqlite").read_bytes()
    assert _listing(old) == _listing(big)  # the same listing without the index
    assert load(old).run_rows == load(big).run_rows
    assert (old / "study.sqlite").read_bytes() == before and sorted(p.name for p in old.iterdir()) == ["study.sqlite"]
    with Store(old) as store:  # the next write-mode open (study run) adds them
        names = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert set(INDEXES) <= names


def test_a_result_sqlite_cannot_read_is_read_by_python_or_refused_by_name(tmp_path):
    folder = tmp_path / "s"
    store_scale.build(folder, 400, epochs=1)
    raw = sqlite3.connect(folder / "study.sqlite")
    doc = json.loads(raw.execute("SELECT result_json FROM runs WHERE id = 3").fetchone()[0])
    doc["final"]["test_acc"] = float("nan")  # Python writes NaN; SQLite's JSON does not accept it
    raw.execute("UPDATE runs SET result_json = ? WHERE id = 3", (json.dumps(doc),))
    raw.execute("UPDATE runs SET result_json = 'null' WHERE id = 4")
    raw.commit()
    rows = {r.split()[0]: r for r in _listing(folder)[1:-1]}
    assert " nan " in rows["3"] and " — " in rows["4"]
    raw.execute("UPDATE runs SET result_json = '{\"final\": ' WHERE id = 5")
    raw.commit()
    raw.close()
    res = CliRunner().invoke(cli, ["runs", "ls", str(folder)])
    assert res.exit_code == 2 and res.output.strip().splitlines()[-1].startswith("error: "), res.output
    assert "run 5 (baseline lr=0.0005/seed0): column result_json is not valid JSON" in res.output
    with Store(folder, readonly=True) as store, pytest.raises(StoreError, match="run 5"):
        list(store.list_runs())
