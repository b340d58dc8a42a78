"""Smaller defects of issue 20, case 5: dropout transparent to the receptive field, free views, quantized
layers counted, torchinfo's mult-adds per module call."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
torchinfo = pytest.importorskip("torchinfo")
from torch import nn  # noqa: E402

from ablab.calc.conversions import torchinfo_mult_adds  # noqa: E402
from ablab.sizeup import summary  # noqa: E402


def vgg_like(drop: type) -> nn.Module:
    """Three blocks of conv3-conv3-pool2, each followed by dropout: receptive field 36, stride 8."""
    layers: list[nn.Module] = []
    c = 3
    for out in (8, 16, 16):
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.Conv2d(out, out, 3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(2), drop(0.25)]
        c = out
    return nn.Sequential(*layers)


@pytest.mark.parametrize("drop", [nn.Dropout2d, nn.Dropout, nn.AlphaDropout, nn.FeatureAlphaDropout])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_dropout_is_transparent_to_the_receptive_field(drop: type, mode: str) -> None:
    s = summary(vgg_like(drop), (3, 32, 32), mode=mode)
    last = s.layers[-1]
    assert last.receptive_field is not None and last.receptive_field.size == (36, 36), last
    assert not [f for f in s.findings if f.code == "uncosted-op"]  # aten.new_empty / bernoulli_ are free


def quantized(x: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.quantize_per_tensor(x, 0.1, 0, torch.quint8)


def test_quantized_conv_and_linear_count_like_their_float_layers() -> None:
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.quantized.dynamic as nnqd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv, lin, dyn = nnq.Conv2d(3, 8, 3, groups=1), nnq.Linear(16, 4), nnqd.Linear(16, 4)
        s = summary(conv, input_data=quantized(torch.randn(2, 3, 10, 10)))
    assert s.totals.macs == summary(nn.Conv2d(3, 8, 3), (3, 10, 10), batch=2).totals.macs == 2 * 8 * 8 * 8 * 27
    assert s.layers[0].kind == "conv2d"
    assert summary(lin, input_data=quantized(torch.randn(2, 16))).totals.macs == 2 * 64
    s = summary(dyn, (16,))
    assert s.totals.macs == 64 and not [f for f in s.findings if f.code == "uncosted-op"]


class ReuseLinear(nn.Module):
    """torchinfo's fixture: one Linear(10, 10) called four times."""

    def __init__(self) -> None:
        super().__init__()
        linear = nn.Linear(10, 10)
        self.model = nn.Sequential(*[m for _ in range(4) for m in (linear, nn.ReLU(True))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class RawParameter(nn.Module):
    """A parameter used outside any leaf module: torchinfo charges it nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(10))
        self.fc = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.w * x)


@pytest.mark.parametrize(("model", "shape"), [(ReuseLinear(), (10,)), (RawParameter(), (10,)),
                                              (nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), (3, 8, 8))])
def test_torchinfo_mult_adds_per_call(model: nn.Module, shape: tuple[int, ...]) -> None:
    info = torchinfo.summary(model, input_size=(2, *shape), verbose=0)
    s = summary(model, shape, batch=2)
    assert torchinfo_mult_adds(s) == info.total_mult_adds
    if isinstance(model, ReuseLinear):
        assert info.total_mult_adds == 880 and s.totals.params == 110


def test_torchinfo_mult_adds_of_an_lstm() -> None:
    m = nn.LSTM(8, 16, 2)
    info = torchinfo.summary(m, input_size=(5, 3, 8), verbose=0)
    s = summary(m, input_data=torch.randn(5, 3, 8))
    assert torchinfo_mult_adds(s) == info.total_mult_adds


class BadInplace(nn.Module):
    """sigmoid saves its output for backward; add_ then changes it: PyTorch's backward raises."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(self.fc(x))
        y.add_(1)
        return y


def test_an_inplace_change_autograd_rejects_is_reported() -> None:
    from ablab.errors import UserError

    m = BadInplace()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        m(torch.randn(2, 4)).sum().backward()
    assert summary(m, (4,)).totals.macs == 16  # inference counts stay available
    with pytest.raises(UserError, match="cannot train: a tensor of shape 2x4 saved for backward was modified in place"):
        summary(m, (4,), training=True)
