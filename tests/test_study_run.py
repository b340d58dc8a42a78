"""Running studies: resume, retry of failed runs, the local executor, SIGKILL at any moment, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.store import Store
from ablab.study.executor import Executor, InlineExecutor, RunEvent, RunSpec
from ablab.study.runner import run_study
from ablab.study.studyfile import parse_study

TINY = """\
[study]
name = "tiny"
seeds = 3

[base]
model = "mlp:16,10"
dataset = "synthetic:n=400,test=400,noise=1.0"
epochs = 2
batch_size = 32

[variants.baseline]
[variants.wide]
model = "mlp:64,10"
"""


def tiny(tmp_path: Path, text: str = TINY) -> Path:
    f = tmp_path / "tiny.toml"
    f.write_text(text)
    return f


def test_run_then_resume_skips_finished_runs(tmp_path):
    s = parse_study(TINY, source="tiny.toml")
    events: list[str] = []
    out = run_study(s, tmp_path / "out", executor=InlineExecutor(), on_event=lambda k, i: events.append(k))
    assert (out.total, out.ran, out.skipped, out.failed) == (6, 6, 0, [])
    assert events.count("run_end") == 6 and events.count("epoch") == 12
    with Store(tmp_path / "out") as store:
        runs = store.runs()
        assert {r.status for r in runs} == {"done"} and len(runs) == 6
        r = runs[0]
        assert r.code_version.startswith("ablab ") and r.versions["torch"] and r.wall_time_s > 0
        assert [e["epoch"] for e in store.epochs(r.id)] == [1, 2]
        assert Path(r.out_dir, "metrics.json").is_file() and r.checkpoint and Path(r.checkpoint).exists()
        # the stored final test accuracy is the trainer's, epoch by epoch
        metrics = json.loads(Path(r.out_dir, "metrics.json").read_text())
        assert store.epochs(r.id)[-1]["test_acc"] == pytest.approx(metrics["final"]["test_acc"])
    again = run_study(s, tmp_path / "out", executor=InlineExecutor())
    assert (again.ran, again.skipped) == (0, 6)
    with Store(tmp_path / "out") as store:
        assert len(store.sessions(store.study()["id"])) == 2 and store.wall_time_s(store.study()["id"]) > 0


class FlakyExecutor(Executor):
    """Fails the first run it sees once (as a crashed worker would be reported), runs the rest inline."""

    def __init__(self) -> None:
        self.inner = InlineExecutor()
        self.failed: set[str] = set()

    def run(self, specs: Iterable[RunSpec]) -> Iterator[RunEvent]:
        for spec in specs:
            if not self.failed:
                self.failed.add(spec.label)
                yield RunEvent(spec.run_id, "error", {"error": "worker process died (exit code -9)"})
                continue
            yield from self.inner.run([spec])


def test_failed_runs_are_redone_on_the_next_call(tmp_path):
    s = parse_study(TINY, source="tiny.toml")
    flaky = FlakyExecutor()
    first = run_study(s, tmp_path, executor=flaky)
    assert first.failed == ["baseline/seed0"] and first.counts == {"done": 5, "failed": 1}
    with Store(tmp_path) as store:
        assert "exit code -9" in store.runs(status="failed")[0].error
    second = run_study(s, tmp_path, executor=InlineExecutor())
    assert (second.ran, second.skipped, second.counts) == (1, 5, {"done": 6})
    with Store(tmp_path) as store:
        assert next(r for r in store.runs() if r.label == "baseline/seed0").attempts == 2


def test_local_executor_runs_in_worker_processes(tmp_path):
    from ablab.study.executor import LocalExecutor

    s = parse_study(TINY.replace("seeds = 3", "seeds = 1"), source="tiny.toml")
    out = run_study(s, tmp_path, executor=LocalExecutor(workers=2))
    assert out.counts == {"done": 2}
    with Store(tmp_path) as store:
        pids = {r.result["threads"] for r in store.runs()}
        assert pids == {1}  # one intra-op thread per run
        rows = store.db.execute("SELECT pid FROM runs").fetchall()
        assert os.getpid() not in {row[0] for row in rows}


SLOW = TINY.replace("n=400,test=400", "n=4000,test=500").replace("epochs = 2", "epochs = 4")
SLOW = SLOW.replace("seeds = 3", "seeds = 4")


def _cli(*args: str) -> subprocess.Popen[bytes]:
    code = "import sys; from ablab.cli import main; main(sys.argv[1:])"
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _snapshot(path: Path) -> dict[str, tuple[str, float | None, int]]:
    with Store(path) as store:
        assert store.integrity_check() == "ok"
        return {r.config_hash: (r.status, r.finished_at, r.attempts) for r in store.runs()}


def _wait_gone(pids: Iterable[int], timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.time() < deadline:
            try:  # a zombie (already exited) counts as gone
                if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                    break
            except OSError:
                break
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z", \
            f"worker {pid} outlived the killed driver"


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and SIGKILL")
def test_sigkill_mid_study_loses_nothing(tmp_path):
    """Kill -9 the driver twice (during startup, then with runs finished and in flight); rerun: every run
    that had finished is still finished and untouched, nothing is duplicated, the store is intact."""
    f = tiny(tmp_path, SLOW)
    out = tmp_path / "out"
    args = ("study", "run", str(f), "--out", str(out), "--workers", "2", "--no-report")

    # 1) kill during worker startup
    p = _cli(*args)
    time.sleep(1.0)
    p.send_signal(signal.SIGKILL)
    p.wait()
    if (out / "study.sqlite").exists():
        _snapshot(out / "study.sqlite")

    # 2) kill once some runs are done and others are running
    p = _cli(*args)
    deadline = time.time() + 60
    snap: dict[str, tuple[str, float | None, int]] = {}
    while time.time() < deadline:
        assert p.poll() is None, "the study finished before it could be killed; make SLOW slower"
        if (out / "study.sqlite").exists():
            snap = _snapshot(out / "study.sqlite")
            if [v[0] for v in snap.values()].count("done") >= 2:
                break
        time.sleep(0.02)
    with Store(out) as store:
        worker_pids = {row[0] for row in store.db.execute("SELECT pid FROM runs WHERE status = 'running'")
                       if row[0]}
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    after_kill = _snapshot(out / "study.sqlite")
    done_before = {h: v for h, v in after_kill.items() if v[0] == "done"}
    assert len(done_before) >= 2 and len(after_kill) == 8
    _wait_gone(worker_pids)  # workers die with their driver

    # 3) the same command finishes the study
    p = _cli(*args)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    final = _snapshot(out / "study.sqlite")
    assert len(final) == 8 and {v[0] for v in final.values()} == {"done"}
    for h, v in done_before.items():
        assert final[h] == v  # finished runs were not redone: same finish time, one attempt
    with Store(out) as store:
        rows = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT config_hash) FROM runs").fetchone()
        assert tuple(rows) == (8, 8)
        assert all(len(store.epochs(r.id)) == 4 for r in store.runs())
        assert store.db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 8 * 4


def test_cli_run_report_ls_compare(tmp_path):
    f = tiny(tmp_path, TINY.replace("seeds = 3", "seeds = 2"))
    runner = CliRunner()
    res = runner.invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "a"), "--workers", "0"])
    assert res.exit_code == 0, res.output
    assert "✓ baseline/seed0" in res.output and "Study wall time:" in res.output
    assert (tmp_path / "a" / "report" / "report.html").is_file()
    res = runner.invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "a"), "--workers", "0"])
    assert "4 runs, 4 already finished, 0 to run" in res.output
    res = runner.invoke(cli, ["runs", "ls", str(tmp_path / "a"), "--variant", "wide"])
    assert res.exit_code == 0 and "wide/seed1" in res.output and "baseline/seed0" not in res.output
    assert "2 run(s)" in res.output
    res = runner.invoke(cli, ["study", "report", str(tmp_path / "a")])
    assert res.exit_code == 0 and "wide vs baseline" in res.output
    res = runner.invoke(cli, ["study", "compare", str(tmp_path / "a"), str(tmp_path / "a")])
    assert res.exit_code == 0 and "+0.00" in res.output
    res = runner.invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "a"), "--dry-run", "--no-measure"])
    assert res.exit_code == 0 and "to run: 0 of 4 runs" in res.output


def test_cli_errors_are_one_line(tmp_path):
    f = tiny(tmp_path, TINY.replace("epochs = 2", "epochz = 2"))
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--dry-run"])
    assert res.exit_code == 2
    assert res.output.strip() == f"error: {f}:8: base.epochz: unknown key; did you mean 'epochs'?"
