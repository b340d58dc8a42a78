"""The layer-stack spec: grammar, presets, errors, and the spec -> PyTorch builder."""

import subprocess
import sys

import pytest

from ablab.calc.shapes import resolve, same_padding
from ablab.models.presets import list_presets
from ablab.models.source import load_spec
from ablab.spec import Conv2d, Spec, SpecError, parse_shape, parse_spec


def test_lenet5_parses_to_its_layers_and_round_trips():
    spec = load_spec("lenet5")
    assert spec.input_shape == (1, 28, 28)
    assert [layer.kind for layer in spec][:3] == ["conv2d", "tanh", "avgpool2d"]
    assert spec.layers[0] == Conv2d(out_channels=6, kernel_size=(5, 5), padding=((2, 2), (2, 2)))
    again = parse_spec(spec.to_string())
    assert again.layers == spec.layers and again.input_shape == spec.input_shape
    assert Spec.from_dict(spec.to_dict()).layers == spec.layers


@pytest.mark.parametrize("text, expected", [
    ("conv(8,3,pad=1)", ((1, 1), (1, 1))),
    ("conv(8,3,pad=(1,2))", ((1, 1), (2, 2))),
    ("conv(8,3,pad=((0,1),(2,3)))", ((0, 1), (2, 3))),
    ("conv(8,3,pad=(0,1,2,3))", ((0, 1), (2, 3))),
    ("conv(8,3,pad=same)", "same"),
    ("conv(8,3,pad=VALID)", "valid"),
])
def test_padding_forms(text, expected):
    assert parse_spec(text).layers[0].padding == expected


def test_tf_same_padding_is_asymmetric_for_stride_two():
    # 200 -> ceil(200/2) = 100 outputs; (100-1)*2 + 3 - 200 = 1 pixel of padding, after
    assert same_padding(200, 3, 2) == (0, 1)
    assert same_padding(5, 3, 1) == (1, 1)
    r = resolve(load_spec("input(3,200,300) conv(32,3,2,same)"))
    assert r[0].out_shape == (32, 100, 150) and r[0].padding == ((0, 1), (0, 1))


@pytest.mark.parametrize("text, message", [
    ("conv(6,5) relu linaer(10)", "unknown layer 'linaer'; did you mean 'linear'?"),
    ("conv(6,5,padd=2)", "unknown argument 'padd'; did you mean 'pad'?"),
    ("conv(6", "spec:1:7: expected ',' or ')', got end of spec"),
    ("conv(6,5,pad=)", "expected a value, got ')'"),
    ("conv(6,5,stride=0)", "stride: every value must be >= 1"),
    ("dropout(1.5)", "p: expected a probability in [0, 1)"),
    ("maxpool(2,pad=same)", "pooling takes an integer or a tuple"),
    ("relu input(1,2,2)", "input(...) must come first, once"),
    ("linear()", "missing required argument(s) out_features"),
])
def test_parse_errors_point_at_the_problem(text, message):
    with pytest.raises(SpecError) as e:
        parse_spec(text)
    assert message in str(e.value)


def test_impossible_shape_names_the_layer():
    with pytest.raises(SpecError, match=r"layer 3 \(conv2d_2\).*kernel 5x5 is larger than its padded input 3x3"):
        resolve(load_spec("input(1,8,8) conv(4,3) maxpool(2) conv(4,5)"))


def test_shape_parsing():
    assert parse_shape("1x28x28") == (1, 28, 28)
    assert parse_shape("(3, 32, 32)") == (3, 32, 32)
    with pytest.raises(SpecError, match="expected positive integers"):
        parse_shape("3xAx2")


def test_mlp_preset_sizes():
    spec = load_spec("mlp:1000,500,10")
    assert [getattr(layer, "out_features", None) for layer in spec if layer.kind == "linear"] == [1000, 500, 10]


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_builds_and_runs(name):
    import torch

    from ablab.models import count_params, create_model, output_shapes

    spec = load_spec(name)
    model = create_model(spec)
    shapes = output_shapes(model, spec.input_shape)
    for r in resolve(spec):
        assert shapes[r.name] == r.out_shape
    out = model(torch.randn(2, *spec.input_shape))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    expected = {"lenet5": 61_706, "lenet5-modern": 61_706, "cifar-lenet": 62_006, "mlp": 79_510}[name]
    assert count_params(model) == expected


def test_spec_path_does_not_import_torch():
    code = "import sys, ablab; from ablab.calc import resolve; resolve(ablab.load_spec('lenet5')); " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
