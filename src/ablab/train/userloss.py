"""A custom training loss for ablab's trainer: ``loss = "mylosses.py:focal"`` names a callable
``(logits, targets) -> scalar tensor`` (logits (B, K), targets (B,) int64), used in place of cross-entropy
for the training objective. Validation and test losses stay cross-entropy, so they compare across losses.
"""

from __future__ import annotations

from typing import Any

from ablab.errors import UserError
from ablab.models.resolve import load_reference

DEFAULT_LOSS = "cross-entropy"


def load_loss(ref: str, num_classes: int) -> Any:
    """The loss function ``ref`` names, checked on a tiny batch (2 samples, ``num_classes`` logits): it must
    return one finite number that backpropagates to the logits. None for the default (cross-entropy)."""
    if ref == DEFAULT_LOSS:
        return None
    import torch


    fn = load_reference(ref)
    logits = torch.zeros(2, num_classes, requires_grad=True)  # (B=2, K)
    targets = torch.tensor([0, 1 % num_classes])  # (B,)
    try:
        out = fn(logits, targets)
    except Exception as e:  # the user's function failed on a tiny batch: one line, naming it
        raise UserError(f"loss {ref}: calling it on logits (2, {num_classes}) and targets (2,) failed: "
                        f"{type(e).__name__}: {e}", key="loss") from None
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UserError(f"loss {ref}: expected a scalar tensor from (logits, targets), got {shape}", key="loss")
    if not out.requires_grad:
        raise UserError(f"loss {ref}: its result does not depend on the logits (no gradient would flow)",
                        key="loss")
    if not torch.isfinite(out.detach()).all():
        raise UserError(f"loss {ref}: returned {out.item()} on a tiny batch of zero logits", key="loss")
    return fn
