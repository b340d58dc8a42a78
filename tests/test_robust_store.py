"""Read-only means read-only; foreign, empty, random and newer stores are refused; OS and SQLite errors
reach the user as one ``error:`` line (issue 13, items 3 and 5)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.errors import UserError
from ablab.store import Store, StoreError
from ablab.study.runner import prepare
from ablab.study.studyfile import parse_study

STUDY = """\
[study]
name = "ro"
seeds = 2
[base]
model = "mlp:8,10"
dataset = "synthetic:n=100,test=50"
epochs = 1
"""


def _study_dir(tmp_path: Path) -> Path:
    """A real store with one finished and one pending run, written by the driver's own code."""
    out = tmp_path / "study"
    store, _, planned, ids = prepare(parse_study(STUDY, source="ro.toml"), out)
    rid = ids[planned[0].key]
    store.start_run(rid)
    h = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": 0.5, "test_loss": 1.0,
          "test_acc": 0.5, "lr": 1e-3, "train_time_s": 0.1, "eval_time_s": 0.1}]
    store.finish_run(rid, {"status": "done", "history": h, "final": h[0], "best_epoch": 1, "wall_time_s": 1.0})
    store.close()
    return out


def _foreign(folder: Path) -> Path:
    folder.mkdir()
    path = folder / "study.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO customers (name) VALUES ('Ada'), ('Grace')")
    db.commit()
    db.close()
    return path


def _tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` -> SHA-256 of its bytes. A read of an ablab store (WAL mode) makes
    SQLite create that store's own ``-wal``/``-shm`` companions; those are left out, nothing else is."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not (p.parent.name == "study" and p.name.endswith(("-wal", "-shm")))}


READ_COMMANDS = [
    ("runs", "ls", "{d}"),
    ("study", "report", "{d}"),
    ("study", "compare", "{d}", "{d}"),
    ("study", "compare", "{good}", "{d}"),
]


@pytest.mark.parametrize("kind", ["foreign", "empty", "random", "text"])
@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_read_commands_refuse_non_stores_and_change_nothing(tmp_path, kind, command):
    good = _study_dir(tmp_path)
    d = tmp_path / kind
    if kind == "foreign":
        _foreign(d)
    else:
        d.mkdir()
        data = {"empty": b"", "random": os.urandom(4096), "text": b"hello, not a database\n"}[kind]
        (d / "study.sqlite").write_bytes(data)
    before = _tree(tmp_path)
    args = [a.format(d=d, good=good) for a in command]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1, res.output
    assert "not an ablab study store" in res.output and str(d / "study.sqlite") in res.output
    assert _tree(tmp_path) == before  # same files, same bytes: no table, no WAL switch, no report folder


def test_runs_ls_given_a_file_is_one_error(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("not a store")
    res = CliRunner().invoke(cli, ["runs", "ls", str(f)])
    assert res.exit_code == 2 and res.output.startswith(f"error: {f}: not an ablab study store")
    assert f.read_text() == "not a store"


def test_newer_schema_is_refused_by_reads_and_by_the_driver(tmp_path):
    d = _study_dir(tmp_path)
    db = sqlite3.connect(d / "study.sqlite")
    db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    res = CliRunner().invoke(cli, ["runs", "ls", str(d)])
    assert res.exit_code == 2
    assert "written by a newer ablab (store schema version 999; this ablab reads up to 1)" in res.output
    with pytest.raises(StoreError, match="newer ablab"):
        Store(d)  # the driver refuses too, before writing anything


def test_driver_refuses_a_foreign_store_without_touching_it(tmp_path):
    path = _foreign(tmp_path / "out")
    before = path.read_bytes()
    f = tmp_path / "ro.toml"
    f.write_text(STUDY)
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "out"), "--workers", "0"])
    assert res.exit_code == 2 and "not an ablab study store" in res.output and "customers" in res.output
    assert path.read_bytes() == before
    assert not (tmp_path / "out" / "runs").exists()


def test_read_only_open_of_a_real_store_reads_and_cannot_write(tmp_path):
    d = _study_dir(tmp_path)
    with Store(d, readonly=True) as store:
        assert [r.status for r in store.runs()] == ["done", "pending"]
        with pytest.raises(StoreError, match="read-only|readonly"):
            store.fail_run(store.runs()[1].id, "x")
    assert issubclass(StoreError, UserError)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_runs_ls_on_a_read_only_mount(tmp_path):
    mnt = tmp_path / "mnt"
    if not _mount_tmpfs(mnt, "2m"):
        pytest.skip("needs root and tmpfs to make a read-only mount")
    try:
        d = _study_dir(mnt)
        assert subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True).returncode == 0
        res = CliRunner().invoke(cli, ["runs", "ls", str(d)])
        assert res.exit_code == 0, res.output
        assert "2 run(s)" in res.output
        f = tmp_path / "ro.toml"
        f.write_text(STUDY)
        res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(mnt / "new"), "--workers", "0"])
        assert res.exit_code == 2
        assert res.output.strip() == (f"error: {mnt / 'new'}: read-only file system (Errno 30); choose a writable "
                                      "folder (e.g. --out DIR)")
    finally:
        _umount(mnt)


def test_read_only_out_folder_is_one_error(tmp_path, monkeypatch):
    """Without root the same path is driven by a mkdir that raises EROFS, as a read-only mount does."""
    import errno
    import pathlib

    real_mkdir = pathlib.Path.mkdir

    def mkdir(self, *a, **k):
        if "readonly" in str(self):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    f = tmp_path / "ro.toml"
    f.write_text(STUDY)
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "readonly"), "--workers", "0"])
    assert res.exit_code == 2
    assert res.output.strip().startswith(f"error: {tmp_path / 'readonly'}: read-only file system (Errno 30)")


def test_report_json_stays_valid_with_non_finite_numbers(tmp_path):
    """A diverged run's inf loss (or an old store's lr = inf) becomes null: valid JSON, CSVs written."""
    import json
    import math

    out = tmp_path / "study"
    store, study_id, planned, ids = prepare(parse_study(STUDY, source="ro.toml"), out)
    for i, r in enumerate(planned):
        h = [{"epoch": 1, "train_loss": math.inf, "train_acc": 0.1, "val_loss": math.nan, "val_acc": 0.1,
              "test_loss": math.inf, "test_acc": 0.1, "lr": 1e-3, "train_time_s": 0.1, "eval_time_s": 0.1}]
        store.start_run(ids[r.key])
        store.finish_run(ids[r.key], {"status": "diverged" if i == 0 else "done", "history": h, "final": h[0],
                                      "best_epoch": 1, "wall_time_s": 1.0,
                                      "diverged": {"epoch": 1, "loss": math.inf} if i == 0 else None})
    info = store.studies()[0]["info"]
    store.db.execute("UPDATE studies SET info_json = ? WHERE id = ?",
                     (json.dumps({**info, "base": {**info["base"], "lr": math.inf}}), study_id))
    store.close()
    res = CliRunner().invoke(cli, ["study", "report", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "report" / "report.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert doc["base"]["lr"] is None and (out / "report" / "runs.csv").is_file()
