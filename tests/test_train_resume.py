"""Epoch-level resume: a run interrupted mid-epoch continues from its last finished epoch and ends with
exactly the metrics of an uninterrupted run (in-process, `ablab train` SIGKILLed, a study driver SIGKILLed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ablab.data import load_dataset
from ablab.store import Store
from ablab.study.runner import run_study
from ablab.study.studyfile import parse_study
from ablab.train import TrainConfig, fit
from ablab.train import trainer as trainer_mod
from ablab.train.resume import RESUME_DIR, latest

DATA = "synthetic:n=400,test=200,shape=1x12x12,classes=4"
NET = "input(1,12,12) conv(4,3) tanh avgpool(2) flatten linear(16) tanh linear(4)"
BASE = TrainConfig(model=NET, dataset=DATA, val_fraction=0.2, epochs=4, batch_size=32, lr=3e-3, threads=1)
SLOW_DATA = "synthetic:n=3000,test=300,shape=1x16x16,classes=4"
SLOW_NET = "input(1,16,16) conv(8,3) relu conv(8,3) relu maxpool(2) flatten linear(64) relu linear(4)"


def no_times(history):
    return [{k: v for k, v in h.items() if not k.endswith("_time_s")} for h in history]


@pytest.fixture(scope="module")
def ds():
    return load_dataset(DATA, val_fraction=0.2)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("changes", [
    {"augment": True, "dropout": 0.3, "batchnorm": True, "schedule": "cosine"},
    {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3, "schedule": "onecycle"},
    {"optimizer": "adamw", "weight_decay": 0.05, "early_stopping": 3, "train_metrics": "clean", "epochs": 6},
])
def test_interrupted_run_resumes_to_exactly_the_uninterrupted_metrics(ds, tmp_path, monkeypatch, changes):
    config = BASE.replace(**changes)
    whole = fit(config, dataset=ds)
    real = trainer_mod._train_epoch
    calls = {"n": 0}

    def dies_in_epoch_3(run, state, epoch, callback):
        calls["n"] += 1
        if epoch == 3:
            real(run, state, epoch, callback)  # half of it, as far as the state is concerned: thrown away
            raise Interrupt
        return real(run, state, epoch, callback)

    monkeypatch.setattr(trainer_mod, "_train_epoch", dies_in_epoch_3)
    out = tmp_path / "run"
    if whole.history[-1]["epoch"] < 3:  # early stopping ended it before: nothing to interrupt
        pytest.skip("stopped early")
    with pytest.raises(Interrupt):
        fit(config, dataset=ds, out_dir=out)
    assert latest(out).name == "epoch-0002" and not (out / "metrics.json").exists()
    monkeypatch.setattr(trainer_mod, "_train_epoch", real)

    events = []
    resumed = fit(config, dataset=ds, out_dir=out, callback=lambda e, d: events.append((e, d.get("epoch"))))
    kinds = [e for e, _ in events if e != "progress"]
    assert kinds[:4] == ["start", "resume", "epoch", "epoch"] and events[1] == ("resume", 2)
    assert no_times(resumed.history) == no_times(whole.history)
    assert resumed.final["test_acc"] == whole.final["test_acc"] and resumed.best_epoch == whole.best_epoch
    assert not (out / RESUME_DIR).exists() and (out / "checkpoint" / "model.safetensors").is_file()


def test_only_the_last_epoch_state_is_kept_and_another_config_starts_over(ds, tmp_path):
    out = tmp_path / "run"
    seen = []

    def watch(event, data):
        if event == "saved":
            seen.append(sorted(p.name for p in (out / RESUME_DIR).iterdir()))

    fit(BASE, dataset=ds, out_dir=out, callback=watch)
    assert seen == [["epoch-0001"], ["epoch-0002"], ["epoch-0003"], ["epoch-0004"]]
    # a state of another config is not resumed from
    (out / RESUME_DIR).mkdir()
    events = []
    fit(BASE.replace(seed=5, epochs=1), dataset=ds, out_dir=out, callback=lambda e, d: events.append(e))
    assert "resume" not in events


def test_a_damaged_state_is_ignored(ds, tmp_path, monkeypatch):
    """A truncated state file (as after a power cut: states are renamed into place, not fsynced) is
    ignored: the run starts over and still ends with the uninterrupted metrics."""
    config = BASE.replace(epochs=2)
    whole = fit(config, dataset=ds)
    real = trainer_mod._train_epoch

    def dies_in_epoch_2(run, state, epoch, callback):
        if epoch == 2:
            raise Interrupt
        return real(run, state, epoch, callback)

    monkeypatch.setattr(trainer_mod, "_train_epoch", dies_in_epoch_2)
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        fit(config, dataset=ds, out_dir=out)
    monkeypatch.setattr(trainer_mod, "_train_epoch", real)
    (latest(out) / "optimizer.safetensors").write_bytes(b"\x00" * 3)
    events = []
    r = fit(config, dataset=ds, out_dir=out, callback=lambda e, d: events.append(e))
    assert "resume" not in events and no_times(r.history) == no_times(whole.history)


def _wait_for(path_glob: Path, pattern: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run finished before it could be killed"
        if list(path_glob.glob(pattern)):
            return
        time.sleep(0.005)
    raise AssertionError(f"no {pattern} under {path_glob} after {timeout} s")


@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL")
def test_ablab_train_sigkilled_mid_epoch_resumes_with_the_same_command(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ablab", "train", SLOW_NET, "--data", SLOW_DATA, "--epochs", "4", "--threads", "1",
           "--augment", "--dropout", "0.2", "--out", str(out), "-q"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(out / RESUME_DIR, "epoch-0002", p)
    p.send_signal(signal.SIGKILL)  # epoch 3 has just begun
    p.wait()
    assert latest(out).name == "epoch-0002" and not (out / "metrics.json").exists()
    done = subprocess.run([*cmd[:-1]], capture_output=True, text=True, check=True)
    assert "resuming after epoch 2" in done.stderr + done.stdout
    resumed = json.loads((out / "metrics.json").read_text())
    whole = fit(TrainConfig(model=SLOW_NET, dataset=SLOW_DATA, epochs=4, threads=1, augment=True, dropout=0.2))
    assert no_times(resumed["history"]) == no_times(whole.history)
    assert not (out / RESUME_DIR).exists()


STUDY = f"""\
[study]
name = "resume"
seeds = 1

[base]
model = "{SLOW_NET}"
dataset = "{SLOW_DATA}"
epochs = 4
augment = true

[variants.baseline]
"""


@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL")
def test_study_driver_sigkilled_mid_epoch_resumes_the_run(tmp_path):
    f = tmp_path / "resume.toml"
    f.write_text(STUDY)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ablab", "study", "run", str(f), "--out", str(out), "--workers", "1", "--no-report"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(out / "runs", f"*/{RESUME_DIR}/epoch-0002", p)
    p.send_signal(signal.SIGKILL)  # the worker dies with it, in epoch 3
    p.wait()
    run_dir = next((out / "runs").glob(f"*/{RESUME_DIR}")).parent
    time.sleep(1.0)  # the orphaned worker notices its parent is gone within 0.5 s
    assert latest(run_dir).name in ("epoch-0002", "epoch-0003") and not (run_dir / "metrics.json").exists()
    outcome = run_study(parse_study(STUDY, source=str(f)), out, workers=1)
    assert outcome.failed == [] and outcome.counts == {"done": 1}
    with Store(out) as store:
        (run,) = store.runs()
        epochs = store.epochs(run.id)
        assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
        whole = fit(TrainConfig.from_dict(run.config).replace(threads=1))
        assert no_times(epochs) == no_times(whole.history)
    assert os.path.isfile(run_dir / "checkpoint" / "model.safetensors") and not (run_dir / RESUME_DIR).exists()
