"""Faster equivalents of parameter-free modules, swapped in by ``accelerate(model)``.

On CPU, PyTorch's ``tanh`` kernel (an accurate SLEEF polynomial) costs ~2.4 ns per element and
``avg_pool2d`` forward+backward ~3 ns — in LeNet-5 these two take more time than the convolutions'
forward pass. Same functions, cheaper arithmetic:

* ``tanh(x) = 2·σ(2x) − 1`` (σ is vectorized with a fast exp; |error| ≤ ~2e-7 absolute, float32
  rounding), backward ``g·(1 − y²)`` from the saved output;
* ``tanh`` followed by a 2x2/stride-2 average pool is one autograd function: with s = σ(2x), the
  pool of tanh is sum(s)/2 − 1 (two strided adds; the affine part on the 4x smaller map) and the
  gradient is s(1 − s) times the pooled gradient spread over its window — two passes over the large
  map each way instead of PyTorch's six (1.6 ms -> 0.64 ms forward+backward for LeNet-5's first
  block at batch 64, one thread);
* ``relu`` followed by a 2x2/stride-2 max pool is max pool then relu (they commute), pairing columns
  then rows: bit-identical outputs and gradients (PyTorch's tie rule), faster than NCHW
  ``max_pool2d`` forward+backward.

Module names are kept (a fused pair becomes ``FusedTanhAvgPool``/``FusedReluMaxPool`` + ``Identity``),
parameters and buffers are untouched, so ``state_dict`` keys are the builder's. Training and
``evaluate_checkpoint`` both run the accelerated model, so the evaluated number is reproduced exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def fast_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) as 2·σ(2x) − 1 (no autograd: see FastTanh)."""
    return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)


class _TanhFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = fast_tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(g, y)  # g·(1 − y²), one fused kernel


class FastTanh(nn.Module):
    """nn.Tanh, computed as 2·σ(2x) − 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _TanhFn.apply(x)  # type: ignore[no-any-return]
        return fast_tanh(x)


def _pool2x2_sum(s: torch.Tensor) -> torch.Tensor:
    """Sum of each 2x2 window, stride 2: (N, C, H, W) -> (N, C, H/2, W/2) with H, W even."""
    n, c, h, w = s.shape
    cols = s.view(n, c, h, w // 2, 2)
    pairs = cols[..., 0] + cols[..., 1]  # (N, C, H, W/2): neighbouring columns added
    rows = pairs.view(n, c, h // 2, 2, w // 2)
    return rows[:, :, :, 0] + rows[:, :, :, 1]  # (N, C, H/2, W/2)


def _tanh_pool(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(avgpool2x2(tanh(x)), s = σ(2x)). With tanh = 2s − 1, the pool of tanh is 2·mean(s) − 1 =
    sum(s)/2 − 1: the affine part runs on the 4x smaller pooled map, two passes over the big one."""
    s = x.mul(2.0).sigmoid_()  # (N, C, H, W)
    return _pool2x2_sum(s).mul_(0.5).sub_(1.0), s


class _TanhPoolFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out, s = _tanh_pool(x)
        ctx.save_for_backward(s)
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        # d out / d x = ¼ · tanh'(x) = ¼ · 4·s(1 − s) = s(1 − s): sigmoid's own backward kernel
        (s,) = ctx.saved_tensors
        up = g.repeat_interleave(2, dim=3).repeat_interleave(2, dim=2)  # (N, C, H, W); 2x faster than expand
        return torch.ops.aten.sigmoid_backward(up, s)  # each window's share of g, times s(1 − s)


class FusedTanhAvgPool(nn.Module):
    """tanh followed by a 2x2, stride-2, unpadded average pool on even-sized maps, as one op."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] % 2 or x.shape[-2] % 2 or not x.is_contiguous():
            return nn.functional.avg_pool2d(torch.tanh(x), 2)
        if torch.is_grad_enabled() and x.requires_grad:
            return _TanhPoolFn.apply(x)  # type: ignore[no-any-return]
        return _tanh_pool(x)[0]


class _ReluMaxPoolFn(torch.autograd.Function):
    """relu then 2x2/stride-2 max pool, computed as max pool then relu (relu is monotone, so they
    commute) in two steps like ``_pool2x2_sum``: neighbouring columns, then neighbouring rows. The
    gradient goes to the first maximum of each window in row-major order — PyTorch's choice on ties —
    and only where the max is > 0."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        left, right, top, bottom, out = _relu_maxpool(x)
        ctx.save_for_backward(left >= right, top >= bottom, out > 0)
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        pick_left, pick_top, positive = ctx.saved_tensors  # (N, C, H, W/2), (N, C, H/2, W/2) x 2
        n, c, h2, w2 = g.shape
        g = g * positive  # relu' (0 at 0, as PyTorch)
        g_rows = torch.empty(n, c, h2, 2, w2, dtype=g.dtype)  # (N, C, H/2, 2, W/2) = (N, C, H, W/2)
        torch.mul(g, pick_top, out=g_rows[:, :, :, 0])  # the top row wins ties
        torch.sub(g, g_rows[:, :, :, 0], out=g_rows[:, :, :, 1])
        g_rows = g_rows.view(n, c, 2 * h2, w2)
        gx = torch.empty(n, c, 2 * h2, w2, 2, dtype=g.dtype)  # (N, C, H, W/2, 2) = (N, C, H, W)
        torch.mul(g_rows, pick_left, out=gx[..., 0])  # the left column wins ties
        torch.sub(g_rows, gx[..., 0], out=gx[..., 1])
        return gx.view(n, c, 2 * h2, 2 * w2)


def _relu_maxpool(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(left, right, top, bottom, relu(maxpool2x2(x))): columns paired first, then rows."""
    n, c, h, w = x.shape
    cols = x.view(n, c, h, w // 2, 2)
    left, right = cols[..., 0], cols[..., 1]  # (N, C, H, W/2) strided views
    rows = torch.maximum(left, right).view(n, c, h // 2, 2, w // 2)
    top, bottom = rows[:, :, :, 0], rows[:, :, :, 1]  # (N, C, H/2, W/2)
    return left, right, top, bottom, torch.maximum(top, bottom).relu_()


class FusedReluMaxPool(nn.Module):
    """relu followed by a 2x2, stride-2, unpadded max pool on even-sized contiguous maps, as one op."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] % 2 or x.shape[-2] % 2 or not x.is_contiguous():
            return nn.functional.max_pool2d(torch.relu(x), 2)
        if torch.is_grad_enabled() and x.requires_grad:
            return _ReluMaxPoolFn.apply(x)  # type: ignore[no-any-return]
        return _relu_maxpool(x)[-1]


def _is_plain_pool2(m: nn.Module, kind: type[nn.Module] = nn.AvgPool2d) -> bool:
    if not isinstance(m, kind) or m.kernel_size not in (2, (2, 2)) or m.stride not in (2, (2, 2)):
        return False
    if m.padding not in (0, (0, 0)) or m.ceil_mode:
        return False
    if isinstance(m, nn.MaxPool2d):
        return m.dilation in (1, (1, 1)) and not m.return_indices
    return isinstance(m, nn.AvgPool2d) and m.divisor_override is None


def accelerate(model: nn.Sequential) -> nn.Sequential:
    """Swap tanh, tanh + 2x2 average pool and relu + 2x2 max pool for the faster equivalents above, in
    place; returns the model."""
    names = [n for n, _ in model.named_children()]
    mods = dict(model.named_children())
    for i, name in enumerate(names):
        nxt = names[i + 1] if i + 1 < len(names) else None
        if isinstance(mods[name], nn.ReLU) and nxt is not None and _is_plain_pool2(mods[nxt], nn.MaxPool2d):
            setattr(model, name, FusedReluMaxPool())
            setattr(model, nxt, nn.Identity())
        elif isinstance(mods[name], nn.Tanh):
            if nxt is not None and _is_plain_pool2(mods[nxt]):
                setattr(model, name, FusedTanhAvgPool())
                setattr(model, nxt, nn.Identity())
            else:
                setattr(model, name, FastTanh())
    return model
