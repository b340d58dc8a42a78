"""The in-memory dataset every trainer consumes: uint8 image tensors, int64 labels, and the
normalization constants computed from the training split only (never validation or test)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Split:
    """One split held whole in memory."""

    x: torch.Tensor  # uint8 (N, C, H, W), raw pixel values 0..255
    y: torch.Tensor  # int64 (N,), class indices 0..num_classes-1

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"Split: {self.x.shape[0]} images but {self.y.shape[0]} labels")


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test splits plus what is needed to normalize them.

    ``mean`` and ``std`` are per channel, in units of pixel/255, computed on ``train`` only (after the
    validation split was taken out) — using validation or test pixels here would leak them.
    """

    name: str  # registry name, e.g. "fashion-mnist"
    train: Split
    val: Split  # may be empty (0 samples) when val_fraction == 0
    test: Split
    classes: tuple[str, ...]  # class names, index = label
    mean: tuple[float, ...]  # per channel, of x/255 over the training split
    std: tuple[float, ...]  # per channel, of x/255 over the training split
    info: dict[str, Any] = field(default_factory=dict)  # provenance: source paths, split seed, limit, ...

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images (N, C, H, W) scaled to [0, 1], in float64.

    Computed from each channel's 256-bin histogram: mean = sum_v v*n_v / N and
    var = sum_v (v - mean)^2 * n_v / N over the pixel values v — exact, and about 6x faster than
    converting the whole split to float64 (which would also need 8 bytes per pixel of memory).
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"channel_stats: expected uint8 images, got {x.dtype}")
    values = torch.arange(256, dtype=torch.float64) / 255.0  # (256,) pixel value of each bin
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1), minlength=256).to(torch.float64)  # (256,)
        total = counts.sum()
        mean = (values * counts).sum() / total
        var = ((values - mean) ** 2 * counts).sum() / total
        means.append(float(mean))
        stds.append(float(var.sqrt()))
    return tuple(means), tuple(stds)
