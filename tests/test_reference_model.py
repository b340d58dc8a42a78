"""The pure-NumPy model follows PyTorch's SGD loss trajectory to rounding, from the same spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ablab.models.builder import build
from ablab.reference.model import NumpyModel, compare_with_torch
from ablab.spec import SpecError, parse_spec

SPECS = [
    # asymmetric SAME padding (an extra pad_1 module in torch), BN, grouped conv, dropout
    "input(2,8,8) conv(4,3,s=2,pad=same) bn relu maxpool(2) conv(6,2,g=2) tanh flatten dropout(0.3) "
    "linear(10) leaky_relu(0.1) linear(5)",
    # 1-d: dilation, asymmetric padding, ceil-mode average pooling with padding, gelu, softmax output
    "input(3,12) conv1d(4,3,d=2,pad=(2,1)) avgpool1d(2,ceil=true,p=1) sigmoid bn flatten linear(6) gelu "
    "dropout(0.5) linear(3) softmax",
    "input(1,6,6) conv(3,3,pad=1,bias=false) relu avgpool(2) flatten linear(8) relu linear(4)",
]


@pytest.mark.parametrize("spec", SPECS)
def test_numpy_model_follows_torch_sgd(spec: str) -> None:
    t = compare_with_torch(parse_spec(spec), steps=5, batch=8, lr=0.5, seed=3)
    assert t.max_loss_diff < 1e-8, (t.torch_losses, t.numpy_losses)
    assert t.max_param_diff < 1e-8
    assert t.max_buffer_diff < 1e-8
    assert len(set(round(v, 6) for v in t.torch_losses)) == 5  # the trajectory moves: the test can fail


def test_from_torch_copies_by_name_and_forward_matches() -> None:
    spec = parse_spec(SPECS[0])
    torch.manual_seed(0)
    model = build(spec).double().eval()
    npm = NumpyModel.from_torch(spec, model)
    npm.training = False
    assert set(npm.params) == {k for k, _ in model.named_parameters()}
    x = np.random.default_rng(0).normal(size=(3, 2, 8, 8))
    y, _ = npm.forward(x)
    with torch.no_grad():
        np.testing.assert_allclose(y, model(torch.tensor(x)).numpy(), atol=1e-12)


def test_load_state_names_the_missing_tensor() -> None:
    npm = NumpyModel(parse_spec("input(4) linear(3) relu linear(2)"))
    with pytest.raises(SpecError, match="missing tensor 'linear_2.weight'"):
        npm.load_state({"linear_1.weight": np.zeros((3, 4)), "linear_1.bias": np.zeros(3)})
    with pytest.raises(SpecError, match=r"'linear_1.weight' has shape \(4, 3\), expected \(3, 4\)"):
        npm.load_state({"linear_1.weight": np.zeros((4, 3))})


def test_numpy_model_learns_on_its_own() -> None:
    """Without torch: default init, 60 SGD steps on a separable toy problem reduce the loss."""
    rng = np.random.default_rng(0)
    npm = NumpyModel(parse_spec("input(2) linear(8) tanh linear(2)")).init(seed=0)
    x = rng.normal(size=(64, 2))
    t = (x[:, 0] + x[:, 1] > 0).astype(int)
    losses = [npm.train_step(x, t, lr=0.5) for _ in range(60)]
    assert losses[-1] < 0.5 * losses[0]


def test_compare_needs_class_scores() -> None:
    with pytest.raises(SpecError, match="must output class scores"):
        compare_with_torch(parse_spec("input(1,4,4) conv(2,3)"), steps=1)
