"""A custom training loss (TrainConfig.loss = "file.py:name"): used for the training objective, checked on a
tiny batch before training, and named in the one error when it is unusable."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.errors import UserError
from ablab.train import fit
from ablab.train.config import TrainConfig

BASE = TrainConfig(model="mlp:16,4", dataset="synthetic:n=400,test=200,shape=1x6x6,classes=4", epochs=2,
                   batch_size=32, threads=1, device="cpu")

LOSSES = '''
import torch
import torch.nn.functional as F


def plain_ce(logits, targets):
    return F.cross_entropy(logits, targets)


def focal(logits, targets, gamma=2.0):
    logp = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)  # (B,)
    return (-(1 - logp.exp()) ** gamma * logp).mean()


def per_sample(logits, targets):
    return F.cross_entropy(logits, targets, reduction="none")


def constant(logits, targets):
    return torch.tensor(1.0)
'''


@pytest.fixture()
def losses(tmp_path):
    f = tmp_path / "mylosses.py"
    f.write_text(LOSSES)
    return f


def test_own_cross_entropy_equals_the_default_and_focal_differs(losses):
    default = fit(BASE)
    same = fit(BASE.replace(loss=f"{losses}:plain_ce"))
    focal = fit(BASE.replace(loss=f"{losses}:focal"))
    assert [h["train_loss"] for h in same.history] == pytest.approx([h["train_loss"] for h in default.history])
    assert same.history[-1]["test_acc"] == default.history[-1]["test_acc"]
    assert focal.history[-1]["train_loss"] < 0.7 * default.history[-1]["train_loss"]  # focal loss is smaller
    assert focal.history[-1]["test_loss"] != focal.history[-1]["train_loss"]  # test loss stays cross-entropy


@pytest.mark.parametrize(("name", "message"), [
    ("per_sample", "expected a scalar tensor"),
    ("constant", "does not depend on the logits"),
    ("nosuch", "no name 'nosuch'"),
])
def test_an_unusable_loss_is_refused_before_training(losses, name, message):
    with pytest.raises(UserError, match=message):
        fit(BASE.replace(loss=f"{losses}:{name}"))


def test_the_config_and_the_cli_know_the_loss(losses, tmp_path):
    with pytest.raises(UserError, match="label_smoothing"):
        TrainConfig(loss=f"{losses}:focal", label_smoothing=0.1)
    assert TrainConfig().config_hash() == TrainConfig(loss="cross-entropy").config_hash()
    res = CliRunner().invoke(cli, ["train", "mlp:16,4", "--data", "synthetic:n=200,test=100,shape=1x6x6,"
                                   "classes=4", "--epochs", "1", "--device", "cpu", "--loss", f"{losses}:per_sample",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "per_sample" in res.output and "scalar" in res.output, res.output
