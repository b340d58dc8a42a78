"""FusedOptimizer (torch.optim's arithmetic in public tensor methods, no torch._dynamo import) is torch.optim's
single-tensor path, bit for bit."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from ablab.train import TrainConfig
from ablab.train.optim import FusedOptimizer, make_optimizer, param_groups


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 6 * 6, 5))


def _reference(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    groups = param_groups(model, config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                               foreach=False)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=config.lr, betas=(config.beta1, config.beta2), foreach=False)


@pytest.mark.parametrize("changes", [
    {"optimizer": "adam"}, {"optimizer": "adam", "weight_decay": 1e-2, "beta1": 0.8},
    {"optimizer": "adamw", "weight_decay": 5e-2}, {"optimizer": "sgd"},
    {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-3},
    {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
])
def test_fused_optimizer_equals_torch_optim_bit_for_bit(changes):
    config = TrainConfig(lr=0.05, **changes)
    a, b = _model(), _model()
    opt_a, opt_b = make_optimizer(config, a), _reference(config, b)
    assert isinstance(opt_a, FusedOptimizer)
    gen = torch.Generator().manual_seed(1)
    for step in range(25):
        x, y = torch.randn(8, 1, 8, 8, generator=gen), torch.randint(0, 5, (8,), generator=gen)
        lr = 0.05 * (0.9 ** step)  # a schedule writes the groups' lr, as the trainer does
        for model, opt in ((a, opt_a), (b, opt_b)):
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    # the state too: a resumed run continues from these tensors
    ref_state = [opt_b.state[p] for p in b.parameters()]
    for (key, t) in opt_a.state_dict().items():
        gi, pi, name = key.split(".")
        p_b = opt_b.param_groups[int(gi)]["params"][int(pi)]
        assert torch.equal(t, opt_b.state[p_b][name]), key
    assert len(opt_a.state_dict()) == sum(len(s) for s in ref_state)


def test_state_dict_round_trip_continues_identically():
    config = TrainConfig(lr=0.01)
    a = _model()
    opt = make_optimizer(config, a)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 5, (8,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(a(x), y).backward()
        opt.step()
    b = _model()
    b.load_state_dict(a.state_dict())
    opt_b = make_optimizer(config, b)
    opt_b.load_state_dict({k: v.clone() for k, v in opt.state_dict().items()})
    for model, o in ((a, opt), (b, opt_b)):
        o.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        o.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_training_does_not_import_dynamo():
    """The start-up fix: a whole fit() without torch._dynamo (it costs ~3 s to import)."""
    code = ("import sys; from ablab.train import TrainConfig, fit; "
            "fit(TrainConfig(model='mlp:8,4', dataset='synthetic:n=64,test=32,shape=1x4x4,classes=4', epochs=1, "
            "threads=1)); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
