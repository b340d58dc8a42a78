"""TrainConfig's field metadata is the one source of the train command's options, help and choices."""

from __future__ import annotations

import dataclasses

import click
import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.cli.options import field_kind, flag_of, option_fields
from ablab.cli.train import train
from ablab.study.studyfile import StudyError, parse_study
from ablab.train.config import FIELDS, OPTIMIZERS, SCHEDULES, ConfigError, TrainConfig

DATA = "synthetic:n=400,test=200,shape=1x12x12,classes=4"
NET = "input(1,12,12) conv(4,3) tanh avgpool(2) flatten linear(16) tanh linear(4)"


def test_every_field_is_documented():
    for name, f in FIELDS.items():
        assert f.metadata.get("help", "").strip(), f"TrainConfig.{name} has no help metadata"
        if "choices" in f.metadata:
            assert f.default in f.metadata["choices"], name


def test_train_options_carry_the_configs_defaults_help_and_choices():
    options = {p.name: p for p in train.params if isinstance(p, click.Option)}
    scalar = option_fields(skip=("model",))
    assert scalar and set(scalar) <= set(options)
    for name in scalar:
        f, opt = FIELDS[name], options[name]
        assert opt.default == f.default, name
        assert opt.help == f.metadata["help"], name
        assert flag_of(name) in opt.opts, name
        if "choices" in f.metadata:
            assert isinstance(opt.type, click.Choice) and tuple(opt.type.choices) == f.metadata["choices"], name
        elif field_kind(f)[0] == "bool":
            assert opt.is_flag, name
    # the lists that used to be copied by hand
    assert tuple(options["optimizer"].type.choices) == OPTIMIZERS
    assert tuple(options["schedule"].type.choices) == SCHEDULES
    assert "--data" in options["dataset"].opts


def test_default_command_line_builds_the_default_config():
    """Parsing no options gives exactly TrainConfig's defaults (nothing re-declared in the CLI)."""
    ctx = train.make_context("train", ["lenet5"])
    fields = {k: ctx.params[k] for k in option_fields(skip=("model",))}
    assert TrainConfig(model="lenet5", **fields) == TrainConfig(model="lenet5")


@pytest.mark.parametrize(("args", "message"), [
    (["--epochs", "0"], "error: --epochs: expected a positive integer, got 0"),
    (["--val-fraction", "1.5"], "error: --val-fraction: expected a fraction in [0, 1), got 1.5"),
    (["--data", DATA, "--nesterov"], "error: --nesterov: expected only with optimizer = sgd and momentum > 0"),
])
def test_config_errors_name_the_flag(args, message):
    res = CliRunner().invoke(cli, ["train", NET, *args])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_flags_reach_the_config(tmp_path):
    res = CliRunner().invoke(cli, ["train", NET, "--data", DATA, "--epochs", "1", "--threads", "1", "--optimizer",
                                   "sgd", "--momentum", "0.9", "--nesterov", "--label-smoothing", "0.1",
                                   "--batchnorm", "--out", str(tmp_path), "-q"])
    assert res.exit_code == 0, res.output
    import json

    cfg = json.loads((tmp_path / "checkpoint" / "config.json").read_text())["config"]
    assert (cfg["optimizer"], cfg["momentum"], cfg["nesterov"], cfg["label_smoothing"], cfg["batchnorm"]) == \
        ("sgd", 0.9, True, 0.1, True)


def test_choice_lists_are_checked_by_the_config_too():
    with pytest.raises(ConfigError, match="optimizer: expected one of sgd, adam, adamw"):
        TrainConfig(optimizer="rmsprop")
    assert {f.name for f in dataclasses.fields(TrainConfig)} == set(FIELDS)


def test_study_keys_are_the_config_fields():
    with pytest.raises(StudyError) as e:
        parse_study('[base]\nmodel = "lenet5"\nlearnig_rate = 0.1\n')
    assert "base.learnig_rate: unknown key" in str(e.value)
    assert ", ".join(FIELDS) in str(e.value)


def test_studies_measure_clean_train_accuracy_by_default():
    """A study shows generalization gaps, so its train accuracy is an eval-mode pass unless it says
    otherwise; train_eval_subsample makes that pass cheap and is a recorded key like any other."""
    s = parse_study('[base]\nmodel = "mlp:16,10"\n')
    assert s.base["train_metrics"] == "clean"
    s = parse_study('[base]\nmodel = "mlp:16,10"\ntrain_metrics = "running"\n')
    assert s.base["train_metrics"] == "running"
    s = parse_study('[base]\nmodel = "mlp:16,10"\ntrain_eval_subsample = 10000\n')
    assert s.base["train_eval_subsample"] == 10000
