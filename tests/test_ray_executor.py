"""The Ray executor: same store and report as the local executor, the dataset shipped once, a killed
worker's run retried, a killed driver resumed, and a clear message when Ray is missing.

One local Ray instance serves the whole session (``ray_session``); tests marked ``ray`` are skipped
when Ray is not installed. The two tests at the top need no Ray.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.store import Store
from ablab.study.executor import Executor, LocalExecutor, RunEvent, RunSpec
from ablab.study.runner import run_study
from ablab.study.studyfile import parse_study

TINY = """\
[study]
name = "tiny"
seeds = 2

[base]
model = "mlp:16,10"
dataset = "synthetic:n=1000,test=500,noise=2.0"
epochs = 2
batch_size = 32

[variants.baseline]
[variants.wide]
model = "mlp:64,10"
"""

TIMES = ("train_time_s", "eval_time_s", "wall_time_s")


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """One local Ray instance (2 CPUs) for every Ray test of the session."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _no_times(x: Any) -> Any:
    """A result/epoch dict without its timings (the only thing allowed to differ between executors)."""
    if isinstance(x, dict):
        return {k: _no_times(v) for k, v in x.items() if k not in TIMES and k != "checkpoint"}
    if isinstance(x, list):
        return [_no_times(v) for v in x]
    return x


def _store_content(path: Path) -> dict[str, Any]:
    """Per run label: what the store says, timings and paths left out."""
    with Store(path) as store:
        assert store.integrity_check() == "ok"
        return {r.label: {"status": r.status, "attempts": r.attempts, "config_hash": r.config_hash,
                          "best_epoch": r.best_epoch, "result": _no_times(r.result),
                          "epochs": _no_times(store.epochs(r.id))}
                for r in store.runs()}


# ------------------------------------------------------------------------------------------ without Ray


def test_executor_ray_without_ray_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    from ablab.errors import UserError
    from ablab.study.ray_executor import RayExecutor

    with pytest.raises(UserError, match=r"pip install 'ablab\[ray\]'"):
        RayExecutor()
    f = tmp_path / "tiny.toml"
    f.write_text(TINY)
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "o"), "--executor", "ray"])
    assert res.exit_code == 2
    assert res.output.strip() == ("error: --executor ray needs Ray, which is not installed here: "
                                  "pip install 'ablab[ray]'")
    assert not (tmp_path / "o").exists()


def test_address_needs_the_ray_executor(tmp_path):
    f = tmp_path / "tiny.toml"
    f.write_text(TINY)
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--address", "auto"])
    assert res.exit_code == 2 and "--address needs --executor ray" in res.output


def test_unreachable_address_fails_fast():
    import socket

    from ablab.study.ray_executor import RayUnavailableError, _probe

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(RayUnavailableError, match=rf"cannot reach the Ray cluster at '127.0.0.1:{port}'"):
        _probe(f"127.0.0.1:{port}")
    assert time.perf_counter() - t0 < 5


# ---------------------------------------------------------------------------------------------- with Ray


@pytest.mark.ray
def test_ray_store_and_report_equal_the_local_executor(tmp_path, ray_session, monkeypatch):
    from ablab.report.render import write_report
    from ablab.study import ray_executor

    packs: list[str] = []
    pack = ray_executor.pack_dataset
    monkeypatch.setattr(ray_executor, "pack_dataset", lambda c: (packs.append(c["dataset"]), pack(c))[1])

    s = parse_study(TINY, source="tiny.toml")
    local = run_study(s, tmp_path / "local", executor=LocalExecutor(workers=2))
    events: list[tuple[str, str]] = []
    ray_out = run_study(s, tmp_path / "ray", executor=ray_executor.RayExecutor(),
                        on_event=lambda k, i: events.append((k, i.get("label", ""))))
    assert local.counts == ray_out.counts == {"done": 4}

    # the same runs, epoch by epoch, to the last digit (same seeds, one thread each)
    a, b = _store_content(tmp_path / "local"), _store_content(tmp_path / "ray")
    assert a == b and len(b) == 4
    assert all(len(r["epochs"]) == 2 and r["attempts"] == 1 for r in b.values())
    # the dataset went into the object store once for the four runs
    assert packs == ["synthetic:n=1000,test=500,noise=2.0"]
    # each run's events reached the driver in order: start, epoch 1, epoch 2, end
    for label in b:
        assert [k for k, lab in events if lab == label] == ["run_start", "epoch", "epoch", "run_end"]

    # the driver wrote each run's files into its folder: same weights, paths of the driver's disk
    with Store(tmp_path / "ray") as store:
        for r in store.runs():
            assert r.out_dir and Path(r.out_dir).parent == tmp_path / "ray" / "runs"
            assert r.checkpoint == str(Path(r.out_dir) / "checkpoint")
            assert json.loads(Path(r.out_dir, "metrics.json").read_text())["checkpoint"] == r.checkpoint
            twin = tmp_path / "local" / "runs" / Path(r.out_dir).name
            for name in ("checkpoint/model.safetensors", "metrics.csv"):
                if name.endswith(".csv"):  # timings differ; the metric columns do not
                    strip = [line.split(",")[:8] for line in (twin / name).read_text().splitlines()]
                    assert [line.split(",")[:8] for line in Path(r.out_dir, name).read_text().splitlines()] == strip
                else:
                    assert Path(r.out_dir, name).read_bytes() == (twin / name).read_bytes()
        pids = {row[0] for row in store.db.execute("SELECT pid FROM runs")}
        assert pids and os.getpid() not in pids  # trained in Ray workers, not here

    # the same report: summary and comparison tables byte for byte
    pa, pb = write_report(tmp_path / "local"), write_report(tmp_path / "ray")
    for key in ("summary_csv", "comparisons_csv"):
        assert pa[key].read_text() == pb[key].read_text()
    ja, jb = (json.loads(p["json"].read_text()) for p in (pa, pb))
    for j in (ja, jb):
        j.pop("wall_time_s", None)
        j.pop("compute_time_s", None)
        j.pop("runs", None)
    assert ja == jb


class KillWorker(Executor):
    """Wraps an executor; SIGKILLs the worker of run ``target`` once the driver has seen its epoch
    ``epoch`` (the next epoch has just begun), or its first epoch when ``epoch`` is None."""

    def __init__(self, inner: Executor, target: str, epoch: int | None = None) -> None:
        self.inner, self.target, self.epoch, self.workers = inner, target, epoch, inner.workers
        self.seen: list[tuple[str, Any]] = []  # the target run's events: (kind, pid or epoch)
        self.killed: int | None = None

    def run(self, specs: Iterable[RunSpec]) -> Iterator[RunEvent]:
        specs = list(specs)
        label = {s.run_id: s.label for s in specs}
        pid: int | None = None
        for ev in self.inner.run(specs):
            if label[ev.run_id] == self.target:
                self.seen.append((ev.kind, ev.payload.get("pid", ev.payload.get("epoch"))))
                if ev.kind == "start":
                    pid = ev.payload["pid"]
                elif (ev.kind == "epoch" and self.killed is None and pid is not None
                      and self.epoch in (None, ev.payload["epoch"])):
                    os.kill(pid, signal.SIGKILL)
                    self.killed = pid
            yield ev

    def close(self) -> None:
        self.inner.close()


KILL = TINY.replace("seeds = 2", "seeds = 1") + """
[variants.long]
dataset = "synthetic:n=16000,test=500,noise=2.0"
model = "mlp:256,10"
epochs = 5
"""


@pytest.mark.ray
def test_ray_worker_killed_mid_run_is_retried(tmp_path, ray_session):
    from ablab.study.ray_executor import RayExecutor
    from ablab.train import TrainConfig, fit

    s = parse_study(KILL, source="kill.toml")
    ex = KillWorker(RayExecutor(max_retries=1), "long/seed0")
    out = run_study(s, tmp_path, executor=ex)
    assert out.failed == [] and out.counts == {"done": 3}

    # the driver saw attempt 1 start and reach epoch 1, then attempt 2 (another process) run through
    assert ex.killed is not None
    kinds = [k for k, _ in ex.seen]
    assert kinds[:2] == ["start", "epoch"] and kinds.count("start") == 2 and kinds[-1] == "end"
    second = kinds.index("start", 1)
    assert ex.seen[0][1] == ex.killed and ex.seen[second][1] != ex.killed
    assert [v for k, v in ex.seen[second:] if k == "epoch"] == [1, 2, 3, 4, 5]

    with Store(tmp_path) as store:
        n, distinct = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT config_hash) FROM runs").fetchone()
        assert (n, distinct) == (3, 3)  # nothing duplicated
        runs = {r.label: r for r in store.runs()}
        assert {k: r.attempts for k, r in runs.items()} == {"baseline/seed0": 1, "wide/seed0": 1, "long/seed0": 2}
        long = runs["long/seed0"]
        epochs = store.epochs(long.id)
        assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5]  # the dead attempt's epoch 1 is gone
        assert store.db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 2 + 2 + 5
        # the retry gives exactly what an uninterrupted run gives
        fresh = fit(TrainConfig.from_dict(long.config).replace(threads=1))
        assert _no_times(epochs) == _no_times(fresh.history)
        assert Path(long.checkpoint or "", "model.safetensors").is_file()


@pytest.mark.ray
def test_ray_worker_dying_every_time_fails_the_run_and_the_next_call_redoes_it(tmp_path, ray_session):
    from ablab.study.ray_executor import RayExecutor

    s = parse_study(KILL, source="kill.toml")
    first = run_study(s, tmp_path, executor=KillWorker(RayExecutor(max_retries=0), "long/seed0"))
    assert first.failed == ["long/seed0"] and first.counts == {"done": 2, "failed": 1}
    with Store(tmp_path) as store:
        error = store.runs(status="failed")[0].error or ""
        assert error.startswith("worker died in each of 1 attempt(s); last: ")
        done_before = {r.label: r.finished_at for r in store.runs(status="done")}
    again = run_study(s, tmp_path, executor=RayExecutor())
    assert (again.ran, again.skipped, again.counts) == (1, 2, {"done": 3})
    with Store(tmp_path) as store:
        assert {r.label: r.finished_at for r in store.runs() if r.label in done_before} == done_before
        assert next(r for r in store.runs() if r.label == "long/seed0").attempts == 2


@pytest.mark.ray
def test_ray_run_errors_are_reported_not_retried(tmp_path, ray_session):
    from ablab.study.ray_executor import RayExecutor

    bad = TINY.replace('model = "mlp:64,10"', 'model = "mlp:64,5"')  # 5 outputs for 10 classes
    out = run_study(parse_study(bad, source="bad.toml"), tmp_path, executor=RayExecutor())
    assert sorted(out.failed) == ["wide/seed0", "wide/seed1"] and out.counts == {"done": 2, "failed": 2}
    with Store(tmp_path) as store:
        for r in store.runs(status="failed"):
            assert r.attempts == 1 and "the last layer must be linear(10)" in (r.error or "")


@pytest.mark.ray
def test_ray_shared_fs_workers_write_run_folders_themselves(tmp_path, ray_session):
    from ablab.study.ray_executor import RayExecutor

    s = parse_study(TINY.replace("seeds = 2", "seeds = 1"), source="tiny.toml")
    out = run_study(s, tmp_path, executor=RayExecutor(shared_fs=True))
    assert out.counts == {"done": 2}
    with Store(tmp_path) as store:
        for r in store.runs():
            assert r.checkpoint == str(Path(r.out_dir or "", "checkpoint"))
            assert Path(r.checkpoint, "model.safetensors").is_file()
            metrics = json.loads(Path(r.out_dir or "", "metrics.json").read_text())
            assert metrics["checkpoint"] == r.checkpoint
            assert _no_times(metrics["history"]) == _no_times(store.epochs(r.id))


DRIVER = TINY.replace("seeds = 2", "seeds = 3").replace("n=1000", "n=12000").replace("epochs = 2", "epochs = 3")


def _running_pids(store: Store) -> set[int]:
    return {row[0] for row in store.db.execute("SELECT pid FROM runs WHERE status = 'running' AND pid IS NOT NULL")}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.ray
@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and SIGKILL")
def test_ray_driver_killed_mid_study_resumes_with_the_same_command(tmp_path, ray_session):
    """A CLI driver joins the session's Ray instance by address, is SIGKILLed with runs done and running;
    Ray ends its tasks; the same command finishes the study without redoing or duplicating a run."""
    f = tmp_path / "driver.toml"
    f.write_text(DRIVER)
    out = tmp_path / "out"
    address = ray_session.get_runtime_context().gcs_address
    cmd = [sys.executable, "-c", "import sys; from ablab.cli import main; main(sys.argv[1:])",
           "study", "run", str(f), "--out", str(out), "--executor", "ray", "--address", address, "--no-report"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300  # generous: on a loaded machine the first run can take minutes to finish
    snap: dict[str, tuple[str, float | None, int]] = {}
    while time.time() < deadline:
        assert p.poll() is None, "the study finished before it could be killed; make DRIVER slower"
        if (out / "study.sqlite").exists():
            with Store(out) as store:
                snap = {r.config_hash: (r.status, r.finished_at, r.attempts) for r in store.runs()}
                running = _running_pids(store)
            statuses = [v[0] for v in snap.values()]
            if statuses.count("done") >= 1 and running:
                break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    with Store(out) as store:
        after = {r.config_hash: (r.status, r.finished_at, r.attempts) for r in store.runs()}
        running = _running_pids(store)
    done_before = {h: v for h, v in after.items() if v[0] == "done"}
    assert len(after) == 6 and done_before and running
    # Ray ends a dead driver's tasks: no orphan keeps training
    gone_by = time.time() + 30
    while any(_alive(pid) for pid in running) and time.time() < gone_by:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in running), "a worker outlived its killed driver"

    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    assert f"{len(done_before)} already finished" in res.stdout
    with Store(out) as store:
        final = {r.config_hash: (r.status, r.finished_at, r.attempts) for r in store.runs()}
        assert {v[0] for v in final.values()} == {"done"} and len(final) == 6
        for h, v in done_before.items():
            assert final[h] == v  # finished runs untouched: same finish time, one attempt
        assert store.db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 6 * 3


RESUME = TINY.replace("seeds = 2", "seeds = 1") + """
[variants.long]
dataset = "synthetic:n=3000,test=300,shape=1x16x16,classes=4"
model = "input(1,16,16) conv(8,3) relu conv(8,3) relu maxpool(2) flatten linear(64) relu linear(4)"
augment = true
epochs = 4
"""


@pytest.mark.ray
def test_ray_worker_killed_mid_epoch_resumes_from_its_last_epoch(tmp_path, ray_session):
    """Epoch-level resume through Ray without a shared filesystem: each epoch's state streams to the
    driver, the retry (another worker) continues after the last epoch it received and ends exactly as an
    uninterrupted run."""
    from ablab.study.ray_executor import RayExecutor
    from ablab.train import TrainConfig, fit

    s = parse_study(RESUME, source="resume.toml")
    ex = KillWorker(RayExecutor(max_retries=1), "long/seed0", epoch=2)
    out = run_study(s, tmp_path, executor=ex)
    assert out.failed == [] and out.counts == {"done": 3} and ex.killed is not None
    second = [k for k, _ in ex.seen].index("start", 1)
    # the retry resumes from the last epoch the killed attempt delivered: epoch 2, where the kill was sent,
    # or epoch 3 when that epoch finished and streamed to the driver before the SIGKILL landed
    last = max(e for k, e in ex.seen[:second] if k == "epoch")
    assert last in (2, 3) and ex.seen[second + 1] == ("resume", last)  # never from epoch 1
    with Store(tmp_path) as store:
        long = {r.label: r for r in store.runs()}["long/seed0"]
        epochs = store.epochs(long.id)
        assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
        fresh = fit(TrainConfig.from_dict(long.config).replace(threads=1))
        assert _no_times(epochs) == _no_times(fresh.history)
        run_dir = Path(long.checkpoint or "").parent
        assert (run_dir / "checkpoint" / "model.safetensors").is_file() and not (run_dir / "resume").exists()


OWN_MODEL = """\
[study]
name = "own-ray"
seeds = 2

[base]
model = "models/mymodel.py:FunctionalCNN"
model_args = { width = 4 }
dataset = "synthetic:n=96,test=64,shape=1x28x28,classes=10"
epochs = 1
batch_size = 32

[variants.baseline]
[variants.wide]
model_args = { width = 8 }
"""


@pytest.mark.ray
def test_ray_runs_a_study_of_your_own_module(tmp_path, ray_session):
    """The model reference (made absolute by the study loader) is imported on the Ray workers; each
    variant's model_args reach its runs, and the results equal the local executor's."""
    from ablab.study.ray_executor import RayExecutor
    from ablab.study.studyfile import read_study

    f = Path(__file__).parent / "own_ray_study.toml"  # next to tests/models: the reference is relative to it
    f.write_text(OWN_MODEL)
    try:
        s = read_study(f)
    finally:
        f.unlink()
    ray_out = run_study(s, tmp_path / "ray", executor=RayExecutor())
    local = run_study(s, tmp_path / "local", executor=LocalExecutor(workers=2))
    assert ray_out.counts == local.counts == {"done": 4}
    a, b = _store_content(tmp_path / "local"), _store_content(tmp_path / "ray")
    assert a == b
    with Store(tmp_path / "ray") as store:
        widths = {(r.variant, r.seed): r.config["model_args"]["width"] for r in store.runs()}
    assert widths == {("baseline", 0): 4, ("baseline", 1): 4, ("wide", 0): 8, ("wide", 1): 8}


@pytest.mark.ray
def test_run_study_from_python_with_executor_ray(tmp_path, ray_session):
    """The notebook API takes the executor by its registered name, as `--executor ray` does."""
    import ablab

    f = tmp_path / "tiny.toml"
    f.write_text(TINY)
    result = ablab.run_study(f, tmp_path / "ray", executor="ray", report=False, progress=False)
    assert result.outcome.counts == {"done": 4} and not result.outcome.failed
