"""The layer registry: every registered kind, parametrised (timm-style), built in torch and in NumPy
from its entry alone, against the calculus; the registry API; and the three kinds added through it
(layernorm, groupnorm, adaptiveavgpool2d) in summary, training and the module summary."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from ablab.calc.shapes import resolve
from ablab.layers import LAYERS, get_layer, grammar_kinds, layer_from_module, list_layers, torch_index
from ablab.models import build, count_params
from ablab.reference.model import NumpyModel
from ablab.sizeup import summary
from ablab.spec import Spec, SpecError, parse_spec

# one spec per kind, ending in that kind (a new kind must add its line here: the test below says so)
EXAMPLES = {
    "conv2d": "input(3,9,8) conv(4,3,s=2,pad=(1,2),d=(1,2))",
    "conv1d": "input(2,11) conv1d(4,3,s=2,pad=1,g=2)",
    "linear": "input(5) linear(3)",
    "maxpool2d": "input(2,7,7) maxpool(3,s=2,pad=1,ceil_mode=true)",
    "avgpool2d": "input(2,6,6) avgpool(2)",
    "maxpool1d": "input(2,9) maxpool1d(3,2)",
    "avgpool1d": "input(2,9) avgpool1d(3,2,1)",
    "batchnorm": "input(3,4,4) bn",
    "layernorm": "input(3,4,5) layernorm",
    "groupnorm": "input(6,4,5) groupnorm(3)",
    "adaptiveavgpool2d": "input(3,7,5) adaptiveavgpool2d((3,2))",
    "dropout": "input(3,4) dropout(0.25)",
    "flatten": "input(3,4,5) flatten",
    "relu": "input(3,4) relu",
    "leaky_relu": "input(3,4) leaky_relu(0.2)",
    "tanh": "input(3,4) tanh",
    "sigmoid": "input(3,4) sigmoid",
    "gelu": "input(3,4) gelu",
    "softmax": "input(3,4) softmax",
}


def test_every_grammar_kind_has_an_example() -> None:
    assert set(grammar_kinds()) == set(EXAMPLES)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_kind_built_from_its_entry_matches_the_calculus(kind: str) -> None:
    """torch module (from the TorchMap), NumPy op (from the ReferenceOp) and the rules agree."""
    spec = parse_spec(EXAMPLES[kind])
    (r,) = resolve(spec)
    assert r.layer.kind == kind
    entry = get_layer(kind)
    assert entry.torch is not None and entry.reference is not None
    model = build(spec).double().eval()
    mod = model.get_submodule(r.name)
    # shape and parameters
    x = torch.randn(3, *r.in_shape, dtype=torch.float64)
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape[1:]) == r.out_shape
    s = summary(spec)
    assert count_params(model) == s.totals.params
    # the tensors the kind declares are the module's state dict, name for name and shape for shape
    declared = {t.name: t.shape for t in r.layer.tensors(r)}
    assert {k: tuple(v.shape) for k, v in mod.state_dict().items()} == declared
    # the way back: the module maps to the same layer
    assert layer_from_module(mod) == r.layer
    # NumPy forward from the reference op equals torch (eval mode: dropout is the identity)
    npm = NumpyModel.from_torch(spec, model)
    npm.training = False
    out, _ = npm.forward(x.numpy())
    assert np.abs(out - y.numpy()).max() < 1e-10
    # the spec form round-trips
    assert parse_spec(spec.to_string()).layers == spec.layers
    assert Spec.from_dict(spec.to_dict()).layers == spec.layers


def test_registry_api() -> None:
    assert get_layer("conv").kind == "conv2d" and get_layer("GN").kind == "groupnorm"
    assert get_layer("layernorm").torch.module == "torch.nn.LayerNorm"  # type: ignore[union-attr]
    assert get_layer("groupnorm").reference.forward == "ablab.reference.norm:group_forward"  # type: ignore[union-attr]
    assert list_layers("*norm*") == ["batchnorm", "batchnorm1d", "batchnorm2d", "groupnorm", "layernorm"]
    assert "pad" not in list_layers() and "module" not in list_layers()  # internal kinds
    with pytest.raises(SpecError, match=r"unknown layer 'layrnorm'; did you mean 'layernorm'\?"):
        get_layer("layrnorm")
    idx = torch_index()
    assert idx["torch.nn.GroupNorm"] == ["groupnorm"] and idx["torch.nn.ZeroPad2d"] == ["pad"]
    assert idx["torch.nn.BatchNorm1d"] == idx["torch.nn.BatchNorm2d"] == ["batchnorm"]
    # the rules are data on the class: no torch import at registration
    assert all(isinstance(e.torch.module_for(3) if not isinstance(e.torch.module, str) else e.torch.module, str)
               for e in LAYERS.values() if e.torch is not None)


def test_new_layers_numbers_by_hand() -> None:
    """layernorm over 6x5x5 holds 2*150 parameters; groupnorm 2*6; adaptive pooling none, and its
    pooling FLOPs sum the window sizes: 7 rows into 3 windows of 3,3,3 taps (0-2, 2-4, 4-6)."""
    s = summary("input(3,7,7) conv(6,3,pad=1) layernorm groupnorm(2) adaptiveavgpool2d(3) flatten linear(2)")
    assert [r.params for r in s.layers] == [6 * 3 * 9 + 6, 2 * 6 * 7 * 7, 2 * 6, 0, 0, 54 * 2 + 2]
    assert [r.output_shape for r in s.layers][3] == (6, 3, 3)
    from ablab.calc.costs import Conventions

    s2 = summary("input(1,7,7) adaptiveavgpool2d(3)", conventions=Conventions(pooling=True, norm=True))
    assert s2.layers[0].flops == 1 * (3 + 3 + 3) * (3 + 3 + 3)
    s3 = summary("input(2,4,4) layernorm groupnorm(2,affine=false)", conventions=Conventions(norm=True))
    assert [r.flops for r in s3.layers] == [8 * 32, 6 * 32]
    # per-sample statistics mix every position: the receptive field becomes the whole input
    assert s3.layers[0].receptive_field is None


def test_new_layers_shape_errors() -> None:
    with pytest.raises(SpecError, match=r"input channels 6 are not divisible by groups=4"):
        resolve(parse_spec("input(6,4,4) groupnorm(4)"))
    with pytest.raises(SpecError, match=r"each of the 4 groups holds a single value on a 4x1x1 input"):
        resolve(parse_spec("input(4,1,1) groupnorm(4)"))
    with pytest.raises(SpecError, match=r"expects a 3-d input \(C,H,W\), got 8"):
        resolve(parse_spec("input(8) adaptiveavgpool2d(2)"))
    with pytest.raises(SpecError, match="output_size: every value must be >= 1"):
        parse_spec("adaptiveavgpool2d(0)")


def test_new_layers_train_with_the_builder() -> None:
    """A network with all three new kinds learns a synthetic task through ablab's trainer."""
    from ablab.train import TrainConfig, fit

    net = "input(1,12,12) conv(6,3,pad=1) groupnorm(3) relu adaptiveavgpool2d(4) flatten layernorm linear(4)"
    cfg = TrainConfig(model=net, dataset="synthetic:n=400,test=200,shape=1x12x12,classes=4", val_fraction=0.2,
                      epochs=3, batch_size=32, lr=3e-3, threads=1)
    r = fit(cfg)
    assert r.status == "done"
    assert r.final["test_acc"] > 0.6  # 4 classes: chance is 0.25
    assert r.history[-1]["train_loss"] < r.history[0]["train_loss"]


def test_module_summary_reads_the_registry() -> None:
    """A user's nn.Module with the new torch modules is sized up with the same formulas."""
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.GroupNorm(2, 4), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.LayerNorm([4, 2, 2]), nn.Flatten(), nn.Linear(16, 3))
    s = summary(model, (2, 8, 8))
    assert [r.kind for r in s.layers] == ["conv2d", "groupnorm", "relu", "adaptiveavgpool2d", "layernorm",
                                          "flatten", "linear"]
    assert s.totals.params == count_params(model) and not s.notes
    spec = summary("input(2,8,8) conv(4,3) groupnorm(2) relu adaptiveavgpool2d(2) layernorm flatten linear(3)")
    assert s.totals.macs == spec.totals.macs


def test_a_kind_is_one_registration() -> None:
    """Adding a kind: a Layer subclass with its rules and mappings, registered once; the grammar, the
    calculus, the builder and the NumPy model all take it from there."""
    from ablab.layers import Layer, ReferenceOp, TorchMap, register_layer

    @register_layer(torch=TorchMap("torch.nn.Hardtanh"),
                    reference=ReferenceOp(f"{__name__}:_hardtanh_forward", f"{__name__}:_hardtanh_bwd"))
    @dataclasses.dataclass(frozen=True)
    class Hardtanh(Layer):
        """clip(x, -1, 1)."""

        kind = "hardtanh"

    try:
        spec = parse_spec("input(4) linear(3) hardtanh")
        assert summary(spec).layers[-1].output_shape == (3,)
        model = build(spec).double()
        x = torch.randn(5, 4, dtype=torch.float64) * 3
        out, _ = NumpyModel.from_torch(spec, model).forward(x.numpy())
        assert np.abs(out - model(x).detach().numpy()).max() < 1e-12
    finally:
        LAYERS.unregister("hardtanh")


def _hardtanh_forward(x: np.ndarray) -> tuple[np.ndarray, dict]:
    return np.clip(x, -1, 1), {"x": x}


def _hardtanh_bwd(dy: np.ndarray, cache: dict) -> dict:
    return {"x": dy * (np.abs(cache["x"]) < 1)}
