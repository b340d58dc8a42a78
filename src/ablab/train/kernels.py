"""Which kernels a training step runs: PyTorch's eager ones, or ``torch.compile``'s (inductor) — the
``kernels`` config field.

Compiled kernels fuse the elementwise work around the convolutions and matrix products (activations,
pooling, the loss) into generated C++ loops. On a 2-core CPU a classic LeNet-5 (tanh, average pooling)
training step at batch 64 takes 0.65× the eager time; a modern one (ReLU, max pooling) gains nothing, its
time being the convolutions' (benchmarks/train_speed.py --levers). Compiling costs ~30-40 s the first time on
such a machine and a few seconds afterwards (inductor's on-disk cache, shared by the runs of a study), so
``auto`` compiles only where it was measured to win and the run is long enough to pay: ablab-built models
with tanh or sigmoid layers, on the CPU, with at least ``COMPILE_MIN_STEPS`` training steps. Your own
``nn.Module`` is compiled only when you ask (``kernels = "compiled"``): arbitrary Python in ``forward`` may
not compile, and ablab will not guess.

Results: other kernels give other bits, as floating-point sums in another order do; the same seed on one
machine with one configuration gives the same numbers every time (tested), and the statistics over seeds
agree with eager runs within seed noise (tests and docs/results.md). Evaluation — validation, test,
``ablab eval`` — always runs the eager model, so a checkpoint's recorded accuracy is reproduced by the
same eager code everywhere. The ``kernels`` value is part of the run's identity (its config hash), so a
study never mixes runs of different kernels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ablab.train.config import COMPILE_MIN_STEPS, TrainConfig

if TYPE_CHECKING:
    from torch import nn


# Layers whose elementwise work compiled kernels do faster: tanh/sigmoid (ATen's accurate exp polynomial;
# inductor's vectorized one, fused with the pooling around it). A ReLU / max-pool network is convolution-bound:
# compiled it measured 0.96-1.0x the eager step (LeNet-5 modern), so auto leaves it eager.
COMPILE_PAYS = frozenset({"Tanh", "Sigmoid", "FastTanh", "FusedTanhAvgPool"})


def kernels_for(config: TrainConfig, own_model: bool, device_type: str, steps: int, layers: Iterable[str] = ()
                ) -> str:
    """``"compiled"`` or ``"eager"``: what ``config.kernels`` means for a run of ``steps`` training steps on
    a device of type ``device_type`` (``cpu``, ``cuda``, ``mps``) of a model with these ``layers`` (class
    names)."""
    if config.kernels != "auto":
        return config.kernels
    pays = not COMPILE_PAYS.isdisjoint(layers)
    return "compiled" if device_type == "cpu" and not own_model and steps >= COMPILE_MIN_STEPS and pays else "eager"


def compiled(model: nn.Module) -> Any:
    """``torch.compile`` of the model for fixed-shape training batches (the parameters are the model's own)."""
    import torch

    return torch.compile(model, dynamic=False)
