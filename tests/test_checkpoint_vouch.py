"""Checkpoints that vouch for themselves: every tampering of issue 13 (item 6) is refused, by name; an
untouched checkpoint prints "reproduced"; the loader survives random bytes and random JSON (fuzz)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ablab.cli import cli
from ablab.errors import UserError
from ablab.train import TrainConfig, evaluate_checkpoint, fit, load_checkpoint
from ablab.train.checkpoint import CheckpointError, seal

DATA = "synthetic:n=300,test=200,shape=1x12x12,classes=4,noise=1.0"
OTHER_DATA = "synthetic:n=300,test=200,shape=1x12x12,classes=4,noise=1.0,seed=7"
NET = "input(1,12,12) conv(4,3) relu maxpool(2) flatten linear(16) relu linear(4)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    for seed in (0, 1):
        fit(TrainConfig(model=NET, dataset=DATA, epochs=2, batch_size=32, seed=seed, threads=1),
            out_dir=root / f"seed{seed}")
    return root


def copy(runs: Path, tmp_path: Path, seed: int = 0) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(runs / f"seed{seed}" / "checkpoint", dst)
    return dst


def edit(ckpt: Path, change, *, reseal: bool) -> None:
    meta = json.loads((ckpt / "config.json").read_text())
    change(meta)
    (ckpt / "config.json").write_text(json.dumps(seal(meta) if reseal else meta))


def test_an_untouched_checkpoint_is_reproduced(runs, tmp_path):
    ck = copy(runs, tmp_path)
    res = CliRunner().invoke(cli, ["eval", str(ck)])
    assert res.exit_code == 0, res.output
    assert "reproduced: the recorded test accuracy" in res.output and "Traceback" not in res.output
    assert evaluate_checkpoint(ck)["reproduced"] is True


def _std0(m):
    m["normalization"]["std"] = [0]


def _relu_to_tanh(m):
    for layer in m["spec"]["layers"]:
        if layer["kind"] == "relu":
            layer["kind"] = "tanh"


def _dataset(m):
    m["config"]["dataset"] = OTHER_DATA


def _dataset_and_record(m):
    _dataset(m)
    m["dataset"]["name"] = "synthetic:n=300,test=200,shape=1x12x12,classes=4,noise=1,seed=7"


EDITS = {"std [0]": _std0, "relu -> tanh": _relu_to_tanh, "dataset -> other synthetic": _dataset,
         "dataset and its record": _dataset_and_record}


@pytest.mark.parametrize("what", list(EDITS))
def test_an_edited_config_json_is_refused(runs, tmp_path, what):
    ck = copy(runs, tmp_path)
    edit(ck, EDITS[what], reseal=False)
    res = CliRunner().invoke(cli, ["eval", str(ck)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "config.json: its content changed since it was written" in res.output


@pytest.mark.parametrize("what, message", [
    ("std [0]", "normalization.std: expected positive numbers"),
    ("relu -> tanh", "does not reproduce the recorded"),
    ("dataset -> other synthetic", "but the model was trained on synthetic:n=300"),
    ("dataset and its record", "does not reproduce the recorded"),
])
def test_a_consistent_forgery_is_still_refused(runs, tmp_path, what, message):
    """Someone who re-computes meta_sha256 after editing: the values, or the accuracy, give it away."""
    ck = copy(runs, tmp_path)
    edit(ck, EDITS[what], reseal=True)
    with pytest.raises(CheckpointError, match=message):
        evaluate_checkpoint(ck)


def test_mean_nan_is_refused(runs, tmp_path):
    ck = copy(runs, tmp_path)
    meta = json.loads((ck / "config.json").read_text())
    meta["normalization"]["mean"] = [float("nan")]
    (ck / "config.json").write_text(json.dumps(meta))  # Python writes the NaN literal JSON does not have
    res = CliRunner().invoke(cli, ["eval", str(ck)])
    assert res.exit_code == 2 and "NaN is not a JSON number" in res.output, res.output


def test_weights_from_another_run_are_refused(runs, tmp_path):
    ck = copy(runs, tmp_path)
    shutil.copy(runs / "seed1" / "checkpoint" / "model.safetensors", ck / "model.safetensors")
    with pytest.raises(CheckpointError, match="model.safetensors: the weights file changed since training"):
        evaluate_checkpoint(ck)
    digest = hashlib.sha256((ck / "model.safetensors").read_bytes()).hexdigest()
    edit(ck, lambda m: m.update(weights_sha256=digest), reseal=True)
    with pytest.raises(CheckpointError, match="does not reproduce the recorded"):
        evaluate_checkpoint(ck)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(normalization={}), "normalization.mean: expected a non-empty list of finite numbers"),
    (lambda m: m["normalization"].update(mean=0.5), "normalization.mean: expected a non-empty list"),
    (lambda m: m["normalization"].update(mean=[0.1, 0.2]), "normalization.mean: expected 1 value(s)"),
    (lambda m: m["normalization"].update(std=["1"]), "normalization.std: expected a non-empty list"),
    (lambda m: m.update(threads="abc"), "threads: expected a positive integer"),
    (lambda m: m.update(threads=0), "threads: expected a positive integer"),
    (lambda m: m.update(format_version="2"), "format_version: expected an integer"),
    (lambda m: m.update(spec=5), "spec: expected the trained spec"),
    (lambda m: m.update(config=[]), "config: expected a table"),
    (lambda m: m["config"].update(epochs="two"), "config: epochs: expected int"),
    (lambda m: m.update(metrics={"test_acc": 7}), "metrics.test_acc: expected an accuracy in [0, 1]"),
    (lambda m: m["dataset"].update(input_shape=[1, -12, 12]), "dataset.input_shape: expected a list of positive"),
])
def test_wrong_types_in_config_json_get_one_clear_error(runs, tmp_path, change, message):
    ck = copy(runs, tmp_path)
    edit(ck, change, reseal=True)
    res = CliRunner().invoke(cli, ["eval", str(ck)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.output.startswith("error: ") and message in res.output, res.output


def test_non_utf8_config_json(runs, tmp_path):
    ck = copy(runs, tmp_path)
    (ck / "config.json").write_bytes(b'{"format": "ablab-checkpoint", "x": "\xff\xfe"}')
    res = CliRunner().invoke(cli, ["eval", str(ck)])
    assert res.exit_code == 2
    assert "config.json:1: not UTF-8 text: byte 0xff at byte offset 37; was it overwritten?" in res.output


# ------------------------------------------------------------------------------------------------ fuzz

# finite floats only: seal() writes strict JSON, as checkpoints do
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**30, 10**30)
                    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                max_size=4),
                    max_leaves=20)
FUZZ = settings(max_examples=40, deadline=3000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(max_size=2000))
def test_fuzz_random_bytes_as_config_json(runs, tmp_path_factory, data):
    ck = tmp_path_factory.mktemp("fz") / "ck"
    shutil.copytree(runs / "seed0" / "checkpoint", ck)
    (ck / "config.json").write_bytes(data)
    with pytest.raises(UserError):
        load_checkpoint(ck)


@FUZZ
@given(path=st.lists(st.sampled_from(["config", "spec", "normalization", "dataset", "metrics", "mean", "std",
                                      "layers", "input_shape", "threads", "model", "format_version", "0"]),
                     min_size=1, max_size=3),
       value=JSON)
def test_fuzz_garbage_values_in_a_resealed_config_json(runs, tmp_path_factory, path, value):
    """Any value anywhere, even correctly sealed: the loader loads it or says why, never a traceback."""
    ck = tmp_path_factory.mktemp("fz") / "ck"
    shutil.copytree(runs / "seed0" / "checkpoint", ck)
    meta = json.loads((ck / "config.json").read_text())
    holder = meta
    for key in path[:-1]:
        nxt = holder.get(key) if isinstance(holder, dict) else None
        if not isinstance(nxt, dict):
            break
        holder = nxt
    holder[path[-1]] = value
    (ck / "config.json").write_text(json.dumps(seal(meta)))
    with contextlib.suppress(UserError):
        load_checkpoint(ck)
