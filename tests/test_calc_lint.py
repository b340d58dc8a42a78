"""Lint: each rule fires on the mistake it names, and stays silent on the presets."""

from __future__ import annotations

import pytest

from ablab.calc import lint_spec
from ablab.models.presets import get_preset, list_presets
from ablab.sizeup import summary
from ablab.spec import parse_spec


def codes(text: str, shape: tuple[int, ...]) -> list[tuple[str, str]]:
    return [(f.code, f.layer) for f in lint_spec(parse_spec(text), shape)]


@pytest.mark.parametrize("name", list_presets())
def test_presets_are_clean(name: str) -> None:
    assert lint_spec(get_preset(name)) == []


def test_collapse_without_nonlinearity() -> None:
    assert codes("conv(8,3) conv(8,3) relu", (1, 10, 10)) == [("collapse", "conv2d_2")]
    assert codes("flatten linear(10) dropout linear(5)", (4,)) == [("collapse", "linear_2")]
    # batch norm and average pooling are affine too; max pooling and activations are not
    assert codes("conv(8,3,bias=false) bn avgpool(2) conv(8,3)", (1, 12, 12)) == [("collapse", "conv2d_2")]
    assert codes("conv(8,3) maxpool(2) conv(8,3)", (1, 12, 12)) == []
    assert codes("conv(8,3) tanh conv(8,3)", (1, 12, 12)) == []
    msg = lint_spec(parse_spec("flatten linear(10) dropout linear(5)"), (4,))[0].message
    assert "linear_1 and linear_2" in msg and "one affine map" in msg and "dropout_1" in msg


def test_bias_before_batchnorm() -> None:
    assert codes("conv(8,3) bn relu", (1, 10, 10)) == [("bias-before-bn", "conv2d_1")]
    assert codes("conv(8,3,bias=false) bn relu", (1, 10, 10)) == []
    assert codes("flatten linear(8) bn relu", (1, 4, 4)) == [("bias-before-bn", "linear_1")]


def test_kernel_larger_than_input() -> None:
    found = lint_spec(parse_spec("conv(4,5,pad=2) relu"), (1, 3, 3))
    assert [(f.code, f.layer) for f in found] == [("kernel-too-large", "conv2d_1")]
    assert "5x5 is larger than its input 3x3" in found[0].message


def test_spatial_size_zero_is_an_error() -> None:
    found = lint_spec(parse_spec("conv(4,3) relu maxpool(2) conv(4,5)"), (1, 8, 8))
    assert [f.severity for f in found] == ["error"]
    assert "layer 4 (conv2d_2)" in found[0].message and "input 4x3x3" in found[0].message


def test_strides_that_drop_pixels() -> None:
    found = lint_spec(parse_spec("conv(4,3,s=2) relu"), (1, 28, 28))
    # windows start at 0, 2, ..., 24; the last one ends at 26: row and column 27 are never seen
    assert [(f.code, f.layer) for f in found] == [("dropped-pixels", "conv2d_1")] * 2
    assert "leaves the last 1 input rows unseen" in found[0].message
    assert codes("conv(4,3,s=2,pad=same) relu", (1, 28, 28)) == []
    assert codes("maxpool(2)", (1, 5, 6)) == [("dropped-pixels", "maxpool2d_1")]
    assert codes("maxpool(2,ceil_mode=true)", (1, 5, 6)) == []


def test_dropped_pixel_count_is_exact() -> None:
    # 1-d: 20 inputs, kernel 5, stride 4: windows at 0,4,8,12 (ends 16); 17 would need 21 -> 3 dropped
    found = lint_spec(parse_spec("conv1d(2,5,s=4) relu"), (1, 20))
    assert [f.code for f in found] == ["dropped-pixels"]
    assert "leaves the last 3 input positions unseen" in found[0].message
    assert codes("conv1d(2,5,s=3) relu", (1, 20)) == []  # 20-5 = 15 = 5 strides of 3: all seen


def test_softmax_before_cross_entropy_and_linear_on_map() -> None:
    assert codes("flatten linear(10) softmax", (1, 4, 4)) == [("softmax-ce", "softmax_1")]
    assert codes("conv1d(4,3) relu linear(5)", (2, 10)) == [("linear-on-map", "linear_1")]


def test_warnings_appear_in_summary_and_json() -> None:
    s = summary("conv(8,3) bn relu flatten linear(10) softmax", (1, 8, 8))
    assert [f.code for f in s.findings] == ["bias-before-bn", "softmax-ce"]
    assert [w["layer"] for w in s.to_dict()["warnings"]] == ["conv2d_1", "softmax_1"]
    assert "warning: conv2d_1: its bias is redundant" in s.render()
