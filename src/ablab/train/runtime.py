"""What a run computes in and with: threads, CPU float settings, library versions, the prepared
splits and evaluation. Shared by the trainer and checkpoint evaluation, so both compute the same numbers.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ablab.version import __version__

if TYPE_CHECKING:
    from ablab.data.dataset import Split


def set_threads(n: int | None) -> int:
    """Set torch's intra-op thread count (None: leave it); returns the previous count.

    Study workers running several runs side by side call ``set_threads(1)``: two runs with one thread
    each use two cores better than two runs fighting over two threads each (oversubscription).
    """
    previous = torch.get_num_threads()
    if n is not None and n != previous:
        torch.set_num_threads(n)
    return previous


def versions() -> dict[str, str]:
    import numpy


    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "ablab": __version__}


@contextmanager
def cpu_settings(threads: int | None) -> Iterator[None]:
    """The CPU state a run computes in, restored afterwards: ``threads`` intra-op threads and
    flush-to-zero for denormal floats (denormals — e.g. Adam's second moments of rarely-used weights,
    gradients through saturated tanh — run ~100x slower on x86; flushing them changes nothing
    measurable). Training and ``evaluate_checkpoint`` use the same settings, hence the same numbers."""
    previous = set_threads(threads)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        set_threads(previous)


def prepare_split(split: Split, mean: tuple[float, ...], std: tuple[float, ...],
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(x float32 (N, C, H, W) normalized and contiguous, y int64 (N,)) on ``device``: done once per
    run. Off the CPU the uint8 images travel (4x less than float32) and are normalized there."""
    from ablab.data import normalize

    x = normalize(split.x.to(device), mean, std).contiguous()
    return x, split.y.to(device=device, dtype=torch.int64).contiguous()


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float | None, float | None]:
    """(mean cross-entropy, accuracy) over all samples, in eval mode; (None, None) for an empty split.

    Batches only change speed, not the result: the sums are accumulated per sample in float64.
    """
    loss, acc, _ = evaluate_confusion(model, x, y, batch_size, None)
    return loss, acc


@torch.inference_mode()
def evaluate_confusion(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, classes: int | None
                       ) -> tuple[float | None, float | None, list[list[int]] | None]:
    """:func:`evaluate` plus, when ``classes`` is given, the confusion matrix: ``[true][predicted]`` sample
    counts (its trace over the split size is the accuracy, exactly)."""
    n = int(y.shape[0])
    if n == 0:
        return None, None, None
    was_training = model.training
    model.eval()
    # sums stay on the device (one host sync at the end); MPS has no float64
    loss_sum = torch.zeros((), dtype=torch.float32 if x.device.type == "mps" else torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    counts = torch.zeros(classes * classes if classes else 0, dtype=torch.int64, device=x.device)
    for i in range(0, n, batch_size):
        out = model(x[i:i + batch_size].clone())  # (B, K) logits; a copy, so a model writing its input in place
        # cannot change the split (evaluated again each epoch and by ablab eval)
        yb = y[i:i + batch_size]
        loss_sum += F.cross_entropy(out, yb, reduction="sum").to(loss_sum.dtype)
        pred = out.argmax(1)
        correct += (pred == yb).sum()
        if classes:
            counts += torch.bincount(yb * classes + pred.clamp(0, classes - 1), minlength=classes * classes)
    model.train(was_training)
    confusion = counts.view(classes, classes).tolist() if classes else None
    return float(loss_sum) / n, int(correct) / n, confusion
