"""Which kernels a training step runs: PyTorch's eager ones, or ``torch.compile``'s (inductor) — the
``kernels`` config field, ``eager`` unless you ask.

Compiled kernels were measured as a lever for issue 23 and did not win where it matters here: on a 2-core
CPU the classic LeNet-5 (tanh, average pooling) trained 1.12–1.19× faster per epoch in three runs and
0.84× in a fourth (1.00–1.16× per step across sessions), the modern LeNet-5 (ReLU, max pooling; the
preset study's model) at 0.96–1.01× with one thread and 0.80× with two, the MLP at ~1.0×, and each run
pays 1.4–5.0 s of compile (``benchmarks/train_speed.py``, docs/train.md#speed). Their time is oneDNN's
convolutions and the matrix products, which inductor calls as they are, and ablab's hand-fused
tanh/pooling functions already do what inductor would fuse. So ablab keeps eager kernels as the default
and offers ``compiled`` for models where elementwise work dominates (or for a GPU), to measure yourself.

Results: other kernels can give other bits, as floating-point sums in another order do (with batch norm
or dropout they do); the same seed on one machine with one configuration gives the same numbers every time
(tested), and the statistics over seeds agree with eager runs within seed noise (tested). Evaluation —
validation, test, ``ablab eval`` — always runs the eager model, so a checkpoint's recorded accuracy is
reproduced by the same eager code everywhere. ``compiled`` is part of the run's identity (its config hash),
so a study never mixes runs of different kernels; ``eager`` runs keep the identity they had before the field
existed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


def compiled(model: nn.Module) -> Any:
    """``torch.compile`` of the model for fixed-shape training batches (the parameters are the model's own)."""
    import torch

    return torch.compile(model, dynamic=False)
