"""Faster equivalents of parameter-free modules, swapped in by ``accelerate(model)``.

On CPU, PyTorch's ``tanh`` kernel (an accurate SLEEF polynomial) costs ~2.4 ns per element and
``avg_pool2d`` forward+backward ~3 ns — in LeNet-5 these two take more time than the convolutions'
forward pass. Same functions, cheaper arithmetic:

* ``tanh(x) = 2·σ(2x) − 1`` (σ is vectorized with a fast exp; |error| ≤ ~2e-7 absolute, float32
  rounding), backward ``g·(1 − y²)`` from the saved output;
* ``tanh`` followed by a 2x2/stride-2 average pool is one autograd function: forward pools with two
  strided adds (no window loop), backward broadcasts the pooled gradient over each 2x2 window in a
  single multiply with ``(1 − y²)/4``.

Module names are kept (a fused pair becomes ``FusedTanhAvgPool`` + ``Identity``), parameters and
buffers are untouched, so ``state_dict`` keys are the builder's. Training and ``evaluate_checkpoint``
both run the accelerated model, so the evaluated number is reproduced exactly.
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


def _pool2x2(y: torch.Tensor) -> torch.Tensor:
    """Mean of each 2x2 window, stride 2: (N, C, H, W) -> (N, C, H/2, W/2) with H, W even."""
    n, c, h, w = y.shape
    cols = y.view(n, c, h, w // 2, 2)
    s = cols[..., 0] + cols[..., 1]  # (N, C, H, W/2): pairs of columns
    rows = s.view(n, c, h // 2, 2, w // 2)
    return (rows[:, :, :, 0] + rows[:, :, :, 1]).mul_(0.25)  # (N, C, H/2, W/2)


class _TanhPoolFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = fast_tanh(x)
        ctx.save_for_backward(y)
        return _pool2x2(y)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        n, c, h, w = y.shape
        d = torch.addcmul(torch.full_like(y, 0.25), y, y, value=-0.25)  # (1 − y²)/4, (N, C, H, W)
        gx = d.view(n, c, h // 2, 2, w // 2, 2) * g.view(n, c, h // 2, 1, w // 2, 1)  # each window gets g
        return gx.view(n, c, h, w)


class FusedTanhAvgPool(nn.Module):
    """tanh followed by a 2x2, stride-2, unpadded average pool on even-sized maps, as one op."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] % 2 or x.shape[-2] % 2 or not x.is_contiguous():
            return nn.functional.avg_pool2d(torch.tanh(x), 2)
        if torch.is_grad_enabled() and x.requires_grad:
            return _TanhPoolFn.apply(x)  # type: ignore[no-any-return]
        return _pool2x2(fast_tanh(x))


def _is_plain_pool2(m: nn.Module) -> bool:
    return (isinstance(m, nn.AvgPool2d) and m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2))
            and m.padding in (0, (0, 0)) and not m.ceil_mode and m.divisor_override is None)


def accelerate(model: nn.Sequential) -> nn.Sequential:
    """Swap tanh (and tanh + 2x2 average pool) for the faster equivalents above, in place; returns it."""
    names = [n for n, _ in model.named_children()]
    mods = dict(model.named_children())
    for i, name in enumerate(names):
        if not isinstance(mods[name], nn.Tanh):
            continue
        nxt = names[i + 1] if i + 1 < len(names) else None
        if nxt is not None and _is_plain_pool2(mods[nxt]):
            setattr(model, name, FusedTanhAvgPool())
            setattr(model, nxt, nn.Identity())
        else:
            setattr(model, name, FastTanh())
    return model
