"""Operator-level size-up of student-style modules, checked against torch itself: shapes and parameters
against the modules, FLOPs against torch's FlopCounterMode over a real forward and a real backward,
bytes kept for backward against the tensors autograd saves, lint and receptive field on the data flow."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ablab.calc import Conventions
from ablab.cli import cli
from ablab.sizeup import summary

sys.path.insert(0, str(Path(__file__).parent / "models"))
import mymodel  # noqa: E402

MODELS = {
    "LeNet5V1": lambda: mymodel.LeNet5V1(),
    "LeNet5V1-bn-dropout": lambda: mymodel.LeNet5V1(use_dropout=True, use_batch_norm=True),
    "FunctionalCNN": lambda: mymodel.FunctionalCNN(),
    "FlattenCNN": lambda: mymodel.FlattenCNN(),
    "ResidualNet": lambda: mymodel.ResidualNet(),
    "TiedMLP": lambda: mymodel.TiedMLP(),
    "CumsumNet": lambda: mymodel.CumsumNet(),
}
SHAPE = (1, 28, 28)


def torch_forward_flops(model: nn.Module, batch: int) -> int:
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(batch, *SHAPE))
    return counter.get_total_flops()


def torch_step_flops(model: nn.Module, batch: int) -> int:
    """FlopCounterMode over forward + cross-entropy + a real loss.backward()."""
    model.train()
    with FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(batch, *SHAPE))
        F.cross_entropy(out, torch.zeros(batch, dtype=torch.long)).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


@pytest.mark.parametrize("name", list(MODELS))
def test_params_and_flops_equal_torchs(name):
    model = MODELS[name]()
    s = summary(model, SHAPE, batch=4, training=True)
    assert s.totals.params == sum(p.numel() for p in model.parameters())  # each tensor once, as torch counts
    assert sum(row.params for row in s.layers) == s.totals.params  # and the rows add up to it
    # default conventions count conv/matmul work only, as FlopCounterMode does
    assert s.totals.flops == torch_forward_flops(model, 4)
    assert s.training_flops is not None
    assert s.training_flops["forward"] == s.totals.flops
    assert s.training_flops["step"] == torch_step_flops(model, 4)


@pytest.mark.parametrize("name", list(MODELS))
def test_leaf_module_rows_have_torchs_shapes(name):
    model = MODELS[name]()
    seen: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    names = {id(m): n for n, m in model.named_modules()}

    def hook(m, args, out):
        if next(m.children(), None) is None:
            seen.setdefault(names[id(m)], (tuple(args[0].shape[1:]), tuple(out.shape[1:])))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *SHAPE))
    for h in handles:
        h.remove()
    s = summary(model, SHAPE)
    rows = {row.name.split(" (")[0]: row for row in s.layers if " (" in row.name and not row.name.endswith("#2")}
    checked = 0
    for path, (i, o) in seen.items():
        if path in rows:
            assert (rows[path].input_shape, rows[path].output_shape) == (i, o), path
            checked += 1
    assert checked >= 2


def test_lenet5v1_numbers_and_names():
    s = summary(mymodel.LeNet5V1(), SHAPE)
    assert (s.totals.params, s.totals.macs) == (61_706, 416_520)
    assert [row.name for row in s.layers][:4] == ["feature.0 (conv2d)", "feature.2 (tanh)", "feature.3 (avgpool2d)",
                                                  "feature.4 (conv2d)"]
    assert s.findings == ()
    # what backward keeps: tanh outputs, pooled maps (conv/linear inputs) — each storage once, per sample
    kept = 6 * 28 * 28 + 6 * 14 * 14 + 16 * 10 * 10 + 16 * 5 * 5 + 120 + 84
    assert s.totals.memory.kept_bytes == kept * 4
    s8 = summary(mymodel.LeNet5V1(), SHAPE, batch=8)
    assert s8.totals.memory.kept_bytes == kept * 4 * 8


def test_the_cli_reports_61706_params_and_416520_macs():
    ref = f"{Path(__file__).parent / 'models' / 'mymodel.py'}:LeNet5V1"
    res = CliRunner().invoke(cli, ["summary", ref, "--input", "1x28x28", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert (d["totals"]["params"], d["totals"]["macs"]) == (61_706, 416_520)
    assert d["source"] == "module" and d["layers"][0]["name"] == "feature.0 (conv2d)"
    bn = CliRunner().invoke(cli, ["summary", ref, "--input", "1x28x28", "--model-arg", "use_batch_norm=true",
                                  "--json", "--training"])
    d = json.loads(bn.output)
    assert d["totals"]["params"] == 61_706 + 2 * (6 + 16)
    # backward: every weight gradient (= the forward MACs) + every input gradient except the first conv's
    # (the image needs none): 416,520 + (416,520 - 117,600) MACs, 2 FLOPs each; the loss counts 0 here
    assert d["training_flops"] == {"forward": 833_040, "loss": 0, "backward": 2 * (416_520 + 416_520 - 117_600),
                                   "step": 833_040 + 1_430_880}


@pytest.mark.parametrize("name", ["FunctionalCNN", "FlattenCNN", "ResidualNet", "LeNet5V1-bn-dropout", "TiedMLP"])
def test_no_false_collapse_warning_when_a_nonlinearity_sits_between(name):
    s = summary(MODELS[name](), SHAPE)
    assert not [f for f in s.findings if f.code == "collapse"], [str(f) for f in s.findings]


class TwoLinears(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(F.dropout(self.fc1(x.flatten(1)), 0.1, self.training))  # no nonlinearity: collapses


def test_a_real_collapse_is_still_found_through_functional_ops():
    s = summary(TwoLinears(), SHAPE)
    collapse = [f for f in s.findings if f.code == "collapse"]
    assert len(collapse) == 1 and collapse[0].layer == "fc2 (linear)" and "fc1 (linear)" in collapse[0].message


def test_functional_steps_appear_with_shapes_and_receptive_fields():
    s = summary(mymodel.FunctionalCNN(), SHAPE, conventions=Conventions(activation=1, pooling=True))
    kinds = [row.kind for row in s.layers]
    assert kinds == ["conv2d", "relu", "maxpool2d", "conv2d", "relu", "maxpool2d", "view", "linear", "relu",
                     "linear"]
    relu = s.layers[1]
    assert relu.output_shape == (6, 24, 24) and relu.flops == 6 * 24 * 24  # --act-flops 1
    assert s.layers[2].flops == 6 * 12 * 12 * 3  # max pooling: k-1 comparisons per output
    rf = s.layers[3].receptive_field  # conv 5 -> pool 2 -> conv 5: 5 + 1 + 4*2 = 14, stride 2
    assert rf is not None and (rf.size, rf.stride) == ((14, 14), (2, 2))
    assert s.layers[6].receptive_field is None and s.layers[6].field_known  # view to a vector: the whole input


def test_residual_add_is_a_row_and_the_field_is_the_union():
    s = summary(mymodel.ResidualNet(channels=4, blocks=1), SHAPE, conventions=Conventions(activation=1))
    add = next(row for row in s.layers if row.kind == "add")
    assert add.name == "blocks.0 (add)" and add.flops == 4 * 28 * 28
    assert add.receptive_field is not None and add.receptive_field.size == (7, 7)  # 3 + 2 + 2 (conv-conv branch)


def test_unknown_ops_are_named_never_silently_zero():
    s = summary(mymodel.CumsumNet(), SHAPE, training=True)
    warn = [f for f in s.findings if f.code == "uncosted-op"]
    assert len(warn) == 1 and "aten.cumsum" in warn[0].message and "NOT counted" in warn[0].message
    assert any("aten.cumsum" in n for n in s.notes)  # its backward too
    row = s["cumsum"]
    assert not row.field_known and row.receptive_field is None  # blank, not "all"
    text = s.render(width=140)
    assert "aten.cumsum" in text
    line = next(line for line in text.splitlines() if " cumsum " in line)
    assert not line.rstrip().endswith("all")


def test_tied_weights_count_once():
    model = mymodel.TiedMLP()
    s = summary(model, SHAPE)
    assert s.totals.params == 27_562 == sum(p.numel() for p in model.parameters())
    assert s["shared (linear)"].params == 32 * 32 + 32 and s["shared (linear) #2"].params == 0
    assert s["b (linear)"].params == 0  # b.weight is a.weight
    assert any("a.weight = b.weight" in n for n in s.notes)


def test_tracing_leaves_the_model_as_it_was():
    model = mymodel.LeNet5V1(use_batch_norm=True)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    summary(model, SHAPE, training=True)
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


@pytest.mark.parametrize("preset", ["lenet5", "lenet5-modern", "mlp:64,10"])
def test_spec_training_flops_equal_flop_counter_over_a_real_backward(preset):
    from ablab.models import create_model

    s = summary(preset, training=True, batch=3)
    assert s.training_flops is not None and s.training_flops["forward"] == s.totals.flops
    assert s.training_flops["step"] == torch_step_flops(create_model(preset), 3)
    if preset == "lenet5":  # the spec and the course's module are the same network: the same step
        assert s.training_flops == summary(mymodel.LeNet5V1(), SHAPE, batch=3, training=True).training_flops
