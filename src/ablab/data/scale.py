"""Pixel scale: what the numbers of an image tensor mean, detected once and recorded, so nothing is
rescaled twice.

Three scales exist (``SCALES``):

``0-255``
    raw 8-bit pixels (uint8, or whole numbers in 0..255 of any dtype). Kept as uint8; normalization
    divides by 255 and standardizes with the training split's mean/std of x/255.
``0-1``
    floats in [0, 1] (``ToTensor()`` output, ``x / 255`` done by the user). Kept as float32;
    normalization standardizes with the training split's mean/std of x — never divides by 255 again.
``standardized``
    floats already centred and scaled by the user (per channel mean ≈ 0, std ≈ 1). Kept as float32 and
    left alone (mean 0, std 1 recorded): standardizing twice would be harmless, dividing by 255 is not.

Detection (``scale="auto"``): integer dtypes are ``0-255`` (values outside 0..255 are an error); floats
in [0, 1] are ``0-1``; whole-number floats in [0, 255] are ``0-255``; floats with negatives whose
per-channel mean is within 0.5 of 0 and std within [0.5, 2] are ``standardized``; anything else is an
error that says how to declare the scale. A declared scale is checked against the values.
"""

from __future__ import annotations

import torch

from ablab.data.errors import DataError

SCALES = ("0-255", "0-1", "standardized")
ALIASES = {"uint8": "0-255", "255": "0-255", "0..255": "0-255", "unit": "0-1", "01": "0-1", "0..1": "0-1",
           "float": "0-1", "std": "standardized", "normalized": "standardized", "auto": "auto"}
TOL = 1e-6  # float slack on the range checks


def canonical(scale: str | None) -> str:
    """``scale`` spelled as one of SCALES (or ``auto``); DataError on anything else."""
    s = "auto" if scale is None else str(scale).strip().lower()
    s = ALIASES.get(s, s)
    if s not in (*SCALES, "auto"):
        raise DataError(f"scale: expected one of auto, {', '.join(SCALES)}, got {scale!r}")
    return s


def _hint(where: str) -> str:
    return (f"declare it: Dataset.from_tensors(..., scale='0-255' | '0-1' | 'standardized'), or for a file "
            f"source append ?scale=0-1 (e.g. --data 'npz:{where}?scale=0-1')")


def detect(x: torch.Tensor, declared: str | None = "auto", where: str = "x") -> str:
    """The scale of images ``x`` (N, C, H, W): detected (``auto``) or the declared one, checked."""
    scale = canonical(declared)
    if x.numel() == 0:
        raise DataError(f"{where}: no images")
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise DataError(f"{where}: images contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    whole = not x.is_floating_point() or bool((x == x.round()).all())
    if scale == "0-255":
        if lo < -TOL or hi > 255 + TOL:
            raise DataError(f"{where}: scale 0-255 declared but values span [{lo:g}, {hi:g}]")
        return scale
    if scale == "0-1":
        if lo < -TOL or hi > 1 + TOL:
            raise DataError(f"{where}: scale 0-1 declared but values span [{lo:g}, {hi:g}]"
                            + ("; these look like 0-255 pixels" if hi > 1 and whole else ""))
        return scale
    if scale == "standardized":
        if not x.is_floating_point():
            raise DataError(f"{where}: scale 'standardized' declared but the images are {x.dtype} integers")
        return scale
    # auto
    if not x.is_floating_point():
        if lo < 0 or hi > 255:
            raise DataError(f"{where}: integer pixel values span [{lo:g}, {hi:g}], outside 0..255; "
                            + _hint(where))
        return "0-255"
    if lo >= -TOL and hi <= 1 + TOL:
        return "0-1"
    if lo >= 0 and hi <= 255 and whole:
        return "0-255"
    if lo < 0:
        flat = x.transpose(0, 1).reshape(x.shape[1], -1).double()  # (C, N*H*W)
        mean, std = flat.mean(1), flat.std(1, correction=0)
        if bool((mean.abs() < 0.5).all()) and bool(((std > 0.5) & (std < 2)).all()):
            return "standardized"
    raise DataError(f"{where}: float pixel values span [{lo:g}, {hi:g}], which is none of 0-1, 0-255 (whole "
                    "numbers) or standardized (per channel mean ≈ 0, std ≈ 1), so the scale is ambiguous; "
                    + _hint(where))


def to_storage(x: torch.Tensor, scale: str) -> torch.Tensor:
    """Images in the form a :class:`Dataset` holds: uint8 for whole 0-255 values, float32 otherwise
    (non-whole 0-255 floats are divided by 255 here, once, and held as 0-1)."""
    if scale == "0-255":
        if not x.is_floating_point() or bool((x == x.round()).all()):
            return x.to(torch.uint8)
        return (x.to(torch.float32) / 255.0).clamp_(0, 1)
    return x.to(torch.float32)


def stored_scale(x: torch.Tensor, scale: str) -> str:
    """The scale of ``to_storage(x, scale)``'s result."""
    return "0-255" if x.dtype == torch.uint8 else ("standardized" if scale == "standardized" else "0-1")


def describe(scale: str) -> str:
    return {"0-255": "uint8 pixels 0-255 (divided by 255, then standardized with the train split's mean/std)",
            "0-1": "float pixels 0-1 (standardized with the train split's mean/std; not divided by 255)",
            "standardized": "already standardized by the user (left as given)"}[scale]
