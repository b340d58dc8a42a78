"""Batch-level augmentation and normalization as tensor ops (no per-sample Python, no DataLoader).

``augment`` is for training batches only: evaluation must see the images as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

CHUNK = 8192  # samples per gather: bounds temporary memory when a whole epoch is augmented at once


def normalize(x_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x / 255 - mean) / std`` per channel for uint8 images (..., C, H, W), ``(x - mean) / std`` for
    float images (already 0-1 or standardized: never divided by 255 twice); float32 either way."""
    c = x_uint8.shape[-3]
    if len(mean) != c or len(std) != c:
        raise ValueError(f"normalize: {c} channels but {len(mean)} means and {len(std)} stds")
    m = torch.tensor(mean, dtype=torch.float32, device=x_uint8.device).view(c, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x_uint8.device).view(c, 1, 1)
    if x_uint8.is_floating_point():
        return (x_uint8.to(torch.float32) - m) / s
    return (x_uint8.to(torch.float32) / 255.0 - m) / s


def augment(x: torch.Tensor, generator: torch.Generator, *, crop_padding: int = 4,
            flip: bool = True) -> torch.Tensor:
    """Random crop with zero padding plus random horizontal flip, one draw per sample, vectorized.

    Each image (C, H, W) is padded by ``crop_padding`` zeros on every side and an H x W window at a
    uniform random offset in [0, 2*crop_padding]^2 is cut out (the classic CIFAR "pad 4, crop 32"); with
    ``flip`` each image is mirrored left-right with probability 1/2. Zero padding is applied to the input
    as given — pass normalized images and the border is the mean colour, pass raw images and it is black.

    Implementation: one gather over the padded batch with per-sample linear indices, so the cost is a
    single pass over the batch whatever its size. Random numbers come from ``generator`` only (on its
    own device), so the same generator state gives the same batch.
    """
    if x.dim() != 4:
        raise ValueError(f"augment: expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    p = int(crop_padding)
    if n == 0 or (p == 0 and not flip):
        return x.clone()
    gdev = generator.device
    off_y = torch.randint(0, 2 * p + 1, (n,), generator=generator, device=gdev).to(x.device)  # (N,)
    off_x = torch.randint(0, 2 * p + 1, (n,), generator=generator, device=gdev).to(x.device)  # (N,)
    flips = (torch.rand(n, generator=generator, device=gdev) < 0.5).to(x.device) if flip else None
    if n <= CHUNK:
        return _crop_flip(x, off_y, off_x, flips, p)
    out = torch.empty_like(x)
    for start in range(0, n, CHUNK):  # chunks bound the padded copy and the index (a whole epoch is fine)
        sl = slice(start, min(n, start + CHUNK))
        out[sl] = _crop_flip(x[sl], off_y[sl], off_x[sl], None if flips is None else flips[sl], p)
    return out


def _crop_flip(x: torch.Tensor, off_y: torch.Tensor, off_x: torch.Tensor, flips: torch.Tensor | None,
               p: int) -> torch.Tensor:
    n, c, h, w = x.shape
    padded = F.pad(x, (p, p, p, p)) if p else x  # (N, C, H+2p, W+2p)
    hp, wp = h + 2 * p, w + 2 * p
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = off_y[:, None] + ar_h  # (N, H)
    cols = off_x[:, None] + ar_w  # (N, W)
    if flips is not None:
        cols = torch.where(flips[:, None], off_x[:, None] + (w - 1 - ar_w), cols)  # mirrored window
    index = (rows[:, :, None] * wp + cols[:, None, :]).view(n, 1, h * w)  # (N, 1, H*W) into padded H'*W'
    out = torch.gather(padded.reshape(n, c, hp * wp), 2, index.expand(n, c, h * w))  # (N, C, H*W)
    return out.view(n, c, h, w)
