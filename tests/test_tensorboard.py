"""study run --tensorboard: event files per run, read back with TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.store import Store

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

STUDY = """\
[study]
name = "tb"
seeds = 2
TB

[base]
model = "mlp:16,4"
dataset = "synthetic:n=300,test=100,shape=1x8x8,classes=4"
epochs = 3
batch_size = 32

[variants.baseline]
[variants.wide]
model = "mlp:48,4"

[grid]
lr = [0.01, 0.03]
"""


def _events(folder: Path) -> EventAccumulator:
    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    ea.Reload()
    return ea


def test_every_run_gets_its_curves_and_hparams(tmp_path):
    f = tmp_path / "tb.toml"
    f.write_text(STUDY.replace("TB", ""))
    out = tmp_path / "o"
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(out), "--workers", "0", "--tensorboard"])
    assert res.exit_code == 0, res.output
    assert f"tensorboard --logdir {out / 'tensorboard'}" in res.output
    with Store(out, readonly=True) as store:
        runs = store.runs()
        epochs = {r.label: store.epochs(r.id) for r in runs}
    assert len(runs) == 8
    for r in runs:
        cell, seed = r.label.split("/")
        ea = _events(out / "tensorboard" / cell.replace(" ", "_") / seed)
        got = [(s.step, s.value) for s in ea.Scalars("val_acc")]
        want = [(e["epoch"], pytest.approx(e["val_acc"], abs=1e-7)) for e in epochs[r.label]]
        assert got == want
        assert [s.value for s in ea.Scalars("train_loss")] == pytest.approx([e["train_loss"] for e in epochs[r.label]])
        data = ea.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(data["_hparams_/session_start_info"]).session_start_info
        hp = {k: v.ListFields()[0][1] for k, v in start.hparams.items()}
        assert hp["variant"] == r.variant and hp["seed"] == r.seed and hp["lr"] == pytest.approx(r.config["lr"])
        assert hp["model"] == r.config["model"]  # varied by a variant: shown as a hyperparameter
        assert "batch_size" not in hp  # the same in every run
        end = plugin_data_pb2.HParamsPluginData.FromString(data["_hparams_/session_end_info"]).session_end_info
        assert end.status == 1  # STATUS_SUCCESS


def test_the_study_file_key_and_its_typing(tmp_path):
    f = tmp_path / "tb.toml"
    f.write_text(STUDY.replace("TB", "tensorboard = true").replace("lr = [0.01, 0.03]", "lr = [0.01]")
                 .replace("seeds = 2", "seeds = 1"))
    out = tmp_path / "o"
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(out), "--workers", "0"])
    assert res.exit_code == 0, res.output
    assert len(list((out / "tensorboard").glob("*/seed0/events.out.tfevents.*"))) == 2
    f.write_text(STUDY.replace("TB", 'tensorboard = "yes"'))
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "p"), "--workers", "0"])
    assert res.exit_code == 2 and "tensorboard" in res.output and "expected true or false" in res.output
    assert "tb.toml:4:" in res.output


def test_a_rerun_starts_the_runs_folder_afresh(tmp_path):
    """A resumed or retried run replays its epochs: its folder holds one curve, not two."""
    from ablab.study.executor import InlineExecutor
    from ablab.study.runner import run_study
    from ablab.study.studyfile import parse_study

    text = STUDY.replace("TB", "").replace("seeds = 2", "seeds = 1").replace("lr = [0.01, 0.03]", "lr = [0.01]")
    s = parse_study(text, source="tb.toml")
    out = tmp_path / "o"
    run_study(s, out, executor=InlineExecutor(), tensorboard=True)
    with Store(out) as store:
        store.reset_runs([r.id for r in store.runs()])
    run_study(s, out, executor=InlineExecutor(), tensorboard=True)
    folder = out / "tensorboard" / "baseline_lr=0.01" / "seed0"
    assert len(list(folder.iterdir())) == 1
    assert [s.step for s in _events(folder).Scalars("val_acc")] == [1, 2, 3]
