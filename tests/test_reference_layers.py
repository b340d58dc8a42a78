"""Every registered reference check (the list ``ablab check`` runs) against torch autograd and finite
differences, plus the properties the table cannot show: that the helper catches a wrong backward,
the structure of the matrix A, dropout's mask statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ablab.reference import batchnorm, checks, conv, dropout, pool
from ablab.reference.gradcheck import check, scaled_error


@pytest.mark.parametrize("case", checks.CHECKS.values(), ids=checks.CHECKS.list())
def test_reference_case(case: checks.Case) -> None:
    res = case.run()
    assert res.ok, res.describe()
    assert res.fd or case.family in ("model",) or "running" in case.label or "A^T" in case.label


def test_every_family_is_registered() -> None:
    families = {c.family for c in checks.CHECKS.values()}
    assert families >= {"linear", "conv1d", "conv2d", "maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d",
                        "batchnorm", "dropout", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax",
                        "loss", "model", "layernorm", "groupnorm", "adaptiveavgpool2d"}


def test_gradcheck_catches_the_classic_bn_mistake() -> None:
    """A batch-norm backward with (var + eps)^(-1/2) instead of ^(-3/2) in dvar must fail both oracles."""
    rng = np.random.default_rng(0)
    inp = {"x": rng.normal(size=(5, 3)), "gamma": rng.normal(size=3), "beta": rng.normal(size=3)}

    def wrong_backward(dy: np.ndarray, cache: dict) -> dict:
        x, mu, var, gamma, eps = cache["x"], cache["mu"], cache["var"], cache["gamma"], cache["eps"]
        m = x.shape[0]
        dxh = dy * gamma
        dvar = (dxh * (x - mu)).sum(0) * -0.5 * (var + eps) ** -0.5  # the slip
        dmu = (dxh * -1 / np.sqrt(var + eps)).sum(0)
        dx = dxh / np.sqrt(var + eps) + dvar * 2 * (x - mu) / m + dmu / m
        return {"x": dx, "gamma": (dy * cache["x_hat"]).sum(0), "beta": dy.sum(0)}

    def t_fwd(x, gamma, beta):  # noqa: ANN001, ANN202
        return F.batch_norm(x, None, None, gamma, beta, True, 0.1, 1e-5)

    res = check("bn-wrong", lambda x, gamma, beta: batchnorm.forward(x, gamma, beta), wrong_backward, t_fwd,
                inp, ["x", "gamma", "beta"])
    assert not res.ok
    assert res.autograd["x"] > 1e-3 and res.fd["x"] > 1e-3
    assert res.autograd["gamma"] < 1e-12  # the right parts still agree


def test_conv_matrix_structure_by_hand() -> None:
    """1x3x3 input, one 2x2 kernel: row (i, j) of A holds w[0,0,u,v] at column (i+u)*3 + (j+v)."""
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    a = conv.matrix(w, (1, 3, 3))
    expected = np.array([
        [1, 2, 0, 3, 4, 0, 0, 0, 0],
        [0, 1, 2, 0, 3, 4, 0, 0, 0],
        [0, 0, 0, 1, 2, 0, 3, 4, 0],
        [0, 0, 0, 0, 1, 2, 0, 3, 4],
    ], dtype=float)
    np.testing.assert_array_equal(a, expected)


@pytest.mark.parametrize("cfg", [
    ((2, 6, 5), (4, 1, 3, 3), 2, ((1, 0), (2, 1)), 1, 2),
    ((3, 7, 7), (3, 3, 2, 2), 3, 0, 2, 1),
    ((4, 9), (2, 2, 3), 2, ((1, 2),), 2, 2),
])
def test_transposed_conv_is_rotated_kernel_conv(cfg: tuple) -> None:
    """A^T g == conv of the spread, padded g with rot180 kernels and swapped channels == torch's
    conv_transpose (cropped), for stride, asymmetric padding, dilation and groups."""
    in_shape, w_shape, s, p, d, g = cfg
    rng = np.random.default_rng(1)
    w = rng.normal(size=w_shape)
    y, _ = conv.forward(rng.normal(size=(1, *in_shape)), w, None, s, p, d, g)
    gy = rng.normal(size=y.shape)
    at_g = (conv.matrix(w, in_shape, s, p, d, g).T @ gy.ravel()).reshape(1, *in_shape)
    rot = conv.transposed_as_conv(gy, w, in_shape, s, p, d, g)
    assert scaled_error(rot, at_g) < 1e-12
    xt = torch.zeros((1, *in_shape), dtype=torch.float64, requires_grad=True)
    pairs = conv.pad_pairs(p, len(in_shape) - 1)
    flat = [v for pair in reversed(pairs) for v in pair]
    f = F.conv2d if len(in_shape) == 3 else F.conv1d
    (f(F.pad(xt, flat), torch.tensor(w), None, s, 0, d, g) * torch.tensor(gy)).sum().backward()
    assert xt.grad is not None
    assert scaled_error(at_g, xt.grad.numpy()) < 1e-12


def test_dropout_mask_statistics_and_eval() -> None:
    rng = np.random.default_rng(0)
    x = np.ones((200, 50))
    y, cache = dropout.forward(x, 0.3, rng=rng)
    kept = cache["mask"].mean()
    assert abs(kept - 0.7) < 0.02  # 10,000 Bernoulli(0.7) draws: sd 0.0046
    assert set(np.unique(y)) == {0.0, 1 / 0.7}
    assert abs(y.mean() - 1.0) < 0.03  # inverted scaling keeps the expectation
    g = dropout.backward(np.ones_like(x), cache)["x"]
    np.testing.assert_array_equal(g, y)
    y_eval, c_eval = dropout.forward(x, 0.3, training=False)
    np.testing.assert_array_equal(y_eval, x)
    np.testing.assert_array_equal(dropout.backward(x, c_eval)["x"], x)


def test_batchnorm_eval_uses_running_stats() -> None:
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    rm, rv = np.array([1.0, 2.0]), np.array([4.0, 16.0])
    y, _ = batchnorm.forward(x, np.ones(2), np.zeros(2), rm, rv, training=False, eps=0.0)
    np.testing.assert_allclose(y, [[0.0, 0.0], [1.0, 1.0]])  # (3 - 1)/2 and (6 - 2)/4, by hand
    np.testing.assert_array_equal(rm, [1.0, 2.0])  # evaluation leaves the buffers alone


def test_avgpool_ceil_mode_divisor_by_hand() -> None:
    """Length 5, k=2, s=2, ceil_mode: the last window holds only x[4] and divides by 1, as PyTorch."""
    x = np.arange(5.0).reshape(1, 1, 5)
    y, _ = pool.avg_forward(x, 2, 2, 0, ceil_mode=True)
    np.testing.assert_allclose(y[0, 0], [0.5, 2.5, 4.0])
    assert torch.allclose(F.avg_pool1d(torch.tensor(x), 2, 2, 0, ceil_mode=True), torch.tensor(y))
