"""`ablab train` and `ablab eval` through click's CliRunner, on tiny synthetic data."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from ablab.cli import cli

DATA = "synthetic:n=400,test=200,shape=1x12x12,classes=4"
NET = "input(1,12,12) conv(4,3) tanh avgpool(2) flatten linear(16) tanh linear(4)"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_train_then_eval_print_the_same_accuracy(tmp_path):
    out = tmp_path / "run"
    res = run("train", NET, "--data", DATA, "--epochs", "2", "--batch-size", "32", "--variant", "bn",
              "--variant", "dropout=0.2", "--threads", "1", "--out", str(out), "--set", "val_fraction=0.2")
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert re.fullmatch(r"test accuracy: [01]\.\d{4} \(\d+/200\)", lines[-1])
    assert lines[-2] == f"checkpoint: {out / 'checkpoint'}"
    metrics = json.loads((out / "metrics.json").read_text())
    acc = metrics["final"]["test_acc"]
    assert lines[-1] == f"test accuracy: {acc:.4f} ({round(acc * 200)}/200)"
    cfg = json.loads((out / "checkpoint" / "config.json").read_text())["config"]
    assert (cfg["batchnorm"], cfg["dropout"], cfg["val_fraction"], cfg["threads"]) == (True, 0.2, 0.2, 1)

    ev = run("eval", str(out / "checkpoint"))
    assert ev.exit_code == 0, ev.output
    assert ev.output.strip().splitlines()[-1] == lines[-1]
    ev_json = run("eval", str(out / "checkpoint"), "--json")
    assert json.loads(ev_json.output)["test_acc"] == acc


def test_train_progress_lines_and_quiet(tmp_path):
    res = run("train", NET, "--data", DATA, "--epochs", "2", "--threads", "1")
    assert res.exit_code == 0
    assert "epoch   1  loss " in res.output and "epoch   2  loss " in res.output
    quiet = run("train", NET, "--data", DATA, "--epochs", "1", "--threads", "1", "-q")
    assert quiet.output.strip().count("\n") == 0 and quiet.output.startswith("test accuracy: ")


def test_user_errors_exit_2_without_traceback(tmp_path):
    res = CliRunner().invoke(cli, ["train", NET, "--data", DATA, "--variant", "dropuot"])
    assert res.exit_code == 2
    assert "error: unknown variant 'dropuot'; did you mean 'dropout'?" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["train", NET, "--data", DATA, "--set", "lr=-1"])
    assert res.exit_code == 2 and "error: --set: lr: expected a positive number, got -1.0" in res.output
    res = CliRunner().invoke(cli, ["train", NET, "--data", DATA, "--set", "learning_rate=1"])
    assert res.exit_code == 2 and "unknown key 'learning_rate'" in res.output
    (tmp_path / "ck").mkdir()
    res = CliRunner().invoke(cli, ["eval", str(tmp_path / "ck")])
    assert res.exit_code == 2 and "missing model.safetensors" in res.output


def test_help_has_examples():
    for cmd in ("train", "eval"):
        res = run(cmd, "--help")
        assert res.exit_code == 0 and "Example:" in res.output
