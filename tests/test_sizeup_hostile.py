"""Hostile arguments to summary() of a module: each is one UserError (the CLI's one `error:` line), never a
raw exception from torch or Python."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from ablab.errors import UserError  # noqa: E402
from ablab.sizeup import summary  # noqa: E402

LIN = nn.Sequential(nn.Linear(4, 3))

BAD = {
    "input_size": [("x",), (0, 4), (-1, 4), (4.5,), "abc", "4x-1", "long:", "cplx:4", ":4",
                   [(4,), "z"], [], (), {"a": 4}, (True,), (10**12,), (40_000, 40_000)],
    "input_data": ["text", (), [], {}, {"a": 1}, 3, torch.tensor(5.0), (torch.zeros(2, 5),),
                   torch.zeros(2, 4, dtype=torch.float64)],
    "dtypes": ["complex", 5, [torch.long, torch.long], torch.int8],
    "batch_dim": [-1, 5, 1.5, "0", True],
    "mode": ["inference", 1, "TRAIN", ""],
    "batch": [0, -2, 1.5, True, "2", 10**12],
    "kwargs": [{"y": 1}, {"x": torch.zeros(1, 4)}, "notadict"],
}


@pytest.mark.parametrize(("key", "value"), [(k, v) for k, vs in BAD.items() for v in vs],
                         ids=lambda v: (f"tensor{tuple(v.shape)}" if isinstance(v, torch.Tensor)
                                        else f"tuple-of-tensor{tuple(v[0].shape)}" if isinstance(v, tuple) and v
                                        and isinstance(v[0], torch.Tensor) else repr(v)[:20]))
def test_bad_argument_is_one_user_error(key: str, value: object) -> None:
    kw: dict = {"input_size": (4,)}
    if key == "input_data":
        kw = {}
    kw[key] = value
    with pytest.raises(UserError):
        summary(LIN, **kw)


class Raises(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("boom")


class ReturnsNone(nn.Module):
    def forward(self, x: torch.Tensor) -> None:
        return None


class ReturnsArgmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).argmax(1)


class NoParams(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


@pytest.mark.parametrize("model", [Raises(), ReturnsNone(), ReturnsArgmax(), NoParams(), nn.Linear, object(),
                                   lambda x: x], ids=lambda m: type(m).__name__)
def test_a_model_that_cannot_be_sized_up_for_training_is_one_user_error(model: object) -> None:
    with pytest.raises(UserError):
        summary(model, (4,), training=True)


def test_an_integer_output_still_has_inference_counts() -> None:
    assert summary(ReturnsArgmax(), (4,)).totals.macs == 8
