"""Class probabilities from a checkpoint or a model: ``ablab.predict(source, x)``.

A checkpoint folder is rebuilt as ``ablab eval`` rebuilds it (your own model's code only when you name it:
``model_ref`` or ``trust_code``) and its recorded normalization is applied to ``x``, which you give as the
dataset gives images: uint8 pixel values 0..255, or floats in [0, 1] — exactly the preprocessing of
training, so a test image predicts what evaluation counted. An ``nn.Module`` is called on ``x`` as given
(your model, your preprocessing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ablab.errors import UserError

BATCH = 512  # samples per forward pass; only speed depends on it


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "uif":
            raise UserError(f"x: expected numbers (uint8 pixels or floats), got a {x.dtype} array")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise UserError(f"x: expected a torch tensor or a NumPy array, got {type(x).__name__}")
    if x.is_complex() or x.dtype == torch.bool or x.is_sparse:
        raise UserError(f"x: expected uint8 pixels or floats, got {x.dtype}{' (sparse)' if x.is_sparse else ''}")
    return x


def _batched(x: torch.Tensor, shape: tuple[int, ...] | None) -> tuple[torch.Tensor, bool]:
    """(x with a batch axis, whether one sample was given), checked against the model's input shape."""
    if shape is None:
        return x, False
    if tuple(x.shape) == shape:
        return x.unsqueeze(0), True
    if x.dim() == len(shape) + 1 and tuple(x.shape[1:]) == shape:
        return x, False
    if shape[0] == 1 and tuple(x.shape[-2:]) == shape[1:] and x.dim() in (2, 3):  # (H, W) or (N, H, W) greyscale
        return (x.unsqueeze(0).unsqueeze(0), True) if x.dim() == 2 else (x.unsqueeze(1), False)
    raise UserError(f"x: expected images of shape {'x'.join(map(str, shape))} (or a batch of them, "
                    f"N x {'x'.join(map(str, shape))}), got {'x'.join(map(str, x.shape))}")


@torch.inference_mode()
def predict(source: Any, x: Any, *, model_ref: str | None = None, trust_code: bool = False,
            device: str | None = None) -> torch.Tensor:
    """Class probabilities (softmax of the logits, float32 on the CPU): ``(N, K)`` for a batch, ``(K,)`` for
    one sample. ``source``: a checkpoint folder (or its ``config.json``), or an ``nn.Module``. ``x``: a
    tensor or NumPy array of images, one ``C x H x W`` (or ``H x W`` greyscale) or a batch of them."""
    from ablab.data import normalize
    from ablab.train.device import resolve_device
    from ablab.train.reload import load_checkpoint

    x = _as_tensor(x)
    where = resolve_device(device or "cpu")
    if isinstance(source, nn.Module):
        model, shape, norm = source, None, None
    elif isinstance(source, str | Path):
        model, _, meta = load_checkpoint(source, model_ref=model_ref, trust_code=trust_code, device=where)
        shape = tuple((meta.get("dataset") or {}).get("input_shape") or ()) or None
        norm = meta["normalization"]
    else:
        raise UserError(f"predict: expected a checkpoint folder or an nn.Module, got {type(source).__name__}")
    xb, single = _batched(x, shape)
    if norm is not None:
        if not xb.is_floating_point() and xb.dtype != torch.uint8:
            raise UserError(f"x: integer images must be uint8 pixel values 0..255, got {x.dtype}")
        xb = normalize(xb, norm["mean"], norm["std"])
    was_training = model.training
    model.eval()
    try:
        probs = torch.cat([torch.softmax(model(xb[i:i + BATCH].to(where).clone()).float(), dim=-1).cpu()
                           for i in range(0, xb.shape[0], BATCH)]) if xb.shape[0] else torch.empty(0)
    finally:
        model.train(was_training)
    return probs[0] if single else probs
