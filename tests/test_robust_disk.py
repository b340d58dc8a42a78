"""A full disk mid-study and while writing the report: one ``error:`` line that says so, no partial
file left behind, and the same command finishes the job once there is space (issue 13 item 3).

The disk is a tiny tmpfs mounted for the test (needs root); without root the full disk is simulated by
a write that raises ENOSPC half-way, which exercises the same clean-up code."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.study.runner import prepare
from ablab.study.studyfile import parse_study

STUDY = """\
[study]
name = "df"
seeds = {seeds}
[base]
model = "mlp:8,10"
dataset = "synthetic:n=100,test=50"
epochs = 1
[variants.baseline]
[variants.drop]
dropout = 0.5
"""


@pytest.fixture
def tiny_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _resize(mnt: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True, capture_output=True)


def _finished_study(folder: Path) -> Path:
    """A study folder whose runs are all finished (written through the driver's own store code)."""
    out = folder / "study"
    store, _, planned, ids = prepare(parse_study(STUDY.format(seeds=3), source="df.toml"), out)
    for r in planned:
        acc = 0.5 + 0.01 * r.seed + (0.05 if r.variant == "drop" else 0.0)
        h = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": acc, "val_loss": 1.0, "val_acc": acc, "test_loss": 1.0,
              "test_acc": acc, "lr": 1e-3, "train_time_s": 0.1, "eval_time_s": 0.1} for e in (1, 2, 3)]
        store.start_run(ids[r.key])
        store.finish_run(ids[r.key], {"status": "done", "history": h, "final": h[-1], "best_epoch": 3,
                                      "wall_time_s": 1.0, "info": {"n_test": 50}})
    store.close()
    return out


def _complete(report: Path) -> None:
    """No temporary file, and every file present is whole."""
    for p in report.rglob("*"):
        assert ".tmp" not in p.name, f"partial file left: {p}"
        if p.suffix == ".png":
            assert p.read_bytes().endswith(b"IEND\xaeB`\x82"), f"truncated PNG: {p}"
        if p.suffix == ".json":
            json.loads(p.read_text())


def test_disk_full_mid_study_is_one_error_then_resumes(tiny_disk, tmp_path):
    f = tmp_path / "df.toml"
    f.write_text(STUDY.format(seeds=20))
    out = tiny_disk / "out"
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(out), "--workers", "0", "--no-report"])
    assert res.exit_code == 2, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and "disk full" in last and "Traceback" not in res.output, res.output
    assert "run the same command again" in last
    _resize(tiny_disk, "50m")
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(out), "--workers", "0", "--no-report"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["runs", "ls", str(out), "--status", "done"])
    assert "40 run(s)" in res.output


def test_disk_full_while_writing_the_report_leaves_no_partial_file(tiny_disk, tmp_path):
    study = _finished_study(tmp_path)
    _resize(tiny_disk, "2m")
    shutil.copytree(study, tiny_disk / "study")
    free = shutil.disk_usage(tiny_disk).free
    (tiny_disk / "filler").write_bytes(b"\0" * (free - 24 * 1024))  # ~24 KB left: less than the report
    res = CliRunner().invoke(cli, ["study", "report", str(tiny_disk / "study")])
    assert res.exit_code == 2, res.output
    msg = res.output.strip()
    assert msg.startswith(f"error: {tiny_disk / 'study' / 'report'}"), msg
    assert "disk full: no space left on device (Errno 28)" in msg, msg
    _complete(tiny_disk / "study" / "report")
    (tiny_disk / "filler").unlink()
    res = CliRunner().invoke(cli, ["study", "report", str(tiny_disk / "study")])
    assert res.exit_code == 0, res.output
    _complete(tiny_disk / "study" / "report")
    assert (tiny_disk / "study" / "report" / "report.json").is_file()


def test_simulated_enospc_removes_the_partial_file(tmp_path, monkeypatch):
    """Without a mount: the PNG write fails half-way with ENOSPC; the error names the file, no partial
    file stays."""
    import ablab.writing

    study = _finished_study(tmp_path)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}") if sys.platform == "linux" else ""
        if "overview.png" in name or not name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(ablab.writing.os, "fsync", fsync)
    res = CliRunner().invoke(cli, ["study", "report", str(study)])
    assert res.exit_code == 2, res.output
    assert res.output.strip() == (f"error: {study / 'report' / 'figures' / 'overview.png'}: disk full: no space left "
                                  "on device (Errno 28); free some space or choose a folder on another disk")
    assert not list((study / "report").rglob("*.tmp")) and not (study / "report" / "figures" / "overview.png").exists()


def test_atomic_writes_get_the_usual_permissions_not_owner_only(tmp_path):
    """mkstemp makes 0600 files: reports, checkpoints and downloads must be readable like any file
    written with open() — 0644 under the usual umask 022, 0640 under 027."""
    import stat

    from ablab.writing import usual_mode, write_atomic

    old = os.umask(0o022)
    try:
        f = write_atomic(tmp_path / "report.md", "# report\n")
        assert stat.S_IMODE(f.stat().st_mode) == 0o644
        os.umask(0o027)
        g = write_atomic(tmp_path / "model.safetensors", b"\0" * 8)
        assert stat.S_IMODE(g.stat().st_mode) == 0o640
        d = tmp_path / "batches"
        d.mkdir(mode=0o700)
        usual_mode(d, folder=True)
        assert stat.S_IMODE(d.stat().st_mode) == 0o750
    finally:
        os.umask(old)
