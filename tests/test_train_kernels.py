"""Compiled training kernels (``kernels = "compiled"``, opt-in): the same seed gives the same numbers every
time, an interrupted run resumes to exactly the uninterrupted metrics, evaluation stays eager (a
checkpoint reproduces), and seeds agree with eager runs within seed noise. Compiling costs seconds per
distinct model, so these tests share one tiny model."""

from __future__ import annotations

import hashlib
import json

import pytest

from ablab.data import load_dataset
from ablab.train import TrainConfig, evaluate_checkpoint, fit
from ablab.train import trainer as trainer_mod

DATA = "synthetic:n=600,test=300,shape=1x8x8,classes=4,noise=1.2"
NET = "input(1,8,8) conv(4,3) tanh avgpool(2) flatten linear(16) relu dropout(0.2) linear(4)"
BASE = TrainConfig(model=NET, dataset=DATA, val_fraction=0.2, epochs=3, batch_size=32, lr=3e-3, threads=1,
                   kernels="compiled", batchnorm=True)


def no_times(history):
    return [{k: v for k, v in h.items() if not k.endswith("_time_s")} for h in history]


@pytest.fixture(scope="module")
def ds():
    return load_dataset(DATA, val_fraction=0.2)


@pytest.fixture(scope="module")
def compiled_run(ds, tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled")
    return fit(BASE, dataset=ds, out_dir=out), out


def test_eager_unless_asked():
    assert TrainConfig().kernels == "eager"
    assert BASE.kernels == "compiled"


def test_the_kernels_are_part_of_the_runs_identity():
    assert BASE.config_hash() != BASE.replace(kernels="eager").config_hash()
    # an eager run keeps the identity it had before the field existed (the hash of the config without it),
    # so a study that says kernels = "eager" reuses its earlier runs; under auto they are run again
    d = BASE.replace(kernels="eager").to_dict()
    for key, default in (("kernels", "eager"), ("loss", "cross-entropy"), ("model_args", {})):
        assert d.pop(key) == default
    old = hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert BASE.replace(kernels="eager").config_hash() == old


def test_a_seed_repeated_on_compiled_kernels_gives_identical_metrics(ds, compiled_run):
    first, _ = compiled_run
    again = fit(BASE, dataset=ds)
    assert first.info["kernels"] == "compiled"
    assert no_times(again.history) == no_times(first.history)
    eager = fit(BASE.replace(kernels="eager"), dataset=ds)
    assert eager.info["kernels"] == "eager"
    assert no_times(eager.history) != no_times(first.history)  # other kernels, other bits (and dropout masks)


def test_evaluation_is_eager_so_the_checkpoint_reproduces(compiled_run):
    result, out = compiled_run
    res = evaluate_checkpoint(out / "checkpoint")
    assert res["reproduced"] is True and res["test_acc"] == result.final["test_acc"]


class Interrupt(Exception):
    pass


def test_an_interrupted_compiled_run_resumes_to_the_uninterrupted_metrics(ds, compiled_run, tmp_path, monkeypatch):
    whole, _ = compiled_run
    real = trainer_mod._train_epoch

    def dies_in_epoch_2(run, state, epoch, callback):
        if epoch == 2:
            real(run, state, epoch, callback)
            raise Interrupt
        return real(run, state, epoch, callback)

    monkeypatch.setattr(trainer_mod, "_train_epoch", dies_in_epoch_2)
    with pytest.raises(Interrupt):
        fit(BASE, dataset=ds, out_dir=tmp_path / "run")
    monkeypatch.setattr(trainer_mod, "_train_epoch", real)
    resumed = fit(BASE, dataset=ds, out_dir=tmp_path / "run")
    assert no_times(resumed.history) == no_times(whole.history)


def test_five_seeds_compiled_and_eager_agree_within_seed_noise(ds):
    from ablab.report.stats import t_interval

    def accs(kernels):
        return [fit(BASE.replace(kernels=kernels, seed=s), dataset=ds).final["test_acc"] for s in range(5)]

    compiled, eager = t_interval(accs("compiled")), t_interval(accs("eager"))
    # the two means lie inside each other's 95% interval of the seed-to-seed spread
    assert compiled.lo <= eager.mean <= compiled.hi and eager.lo <= compiled.mean <= eager.hi, (compiled, eager)
