"""User images and labels as checked tensors, before they become a :class:`~ablab.data.dataset.Dataset`.

Tensors, NumPy arrays and map-style torch datasets are validated (shapes, counts, label range), a test
split is held out when none is given (``test_fraction``, fixed seed ``TEST_HOLDOUT_SEED``, so every
split seed of a study is scored on the same test set), and the pixel scale is detected and recorded
(``ablab.data.scale``). Nothing here knows about Dataset: ``ablab.data.dataset`` calls :func:`prepare`
and :func:`materialize` and assembles the splits, so the two modules import in one direction only.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from ablab.data import scale as pixel_scale
from ablab.data.budget import check_fits
from ablab.data.errors import DataError
from ablab.data.files import channels_last
from ablab.data.split import choose, holdout_size

TEST_HOLDOUT_SEED = 0  # seed of the held-out test split when none is given (fixed across split seeds)

Progress = Callable[[int, int], None]  # progress(done, total)


class Prepared(NamedTuple):
    """Checked train and test tensors in their stored form, the class names, the stored pixel scale and
    the provenance record."""

    x: torch.Tensor  # (N, C, H, W)
    y: torch.Tensor  # int64 (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    scale: str
    info: dict[str, Any]


# dtypes read as they are; others are refused with the fix (complex has no order, the unsigned 16/32/64-bit
# integers have almost no torch kernels, and a silent cast could change values)
READABLE = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool, torch.float16,
            torch.bfloat16, torch.float32, torch.float64)


def _as_tensor(a: Any, what: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        if a.is_sparse or a.layout != torch.strided:
            raise DataError(f"{what}: a {a.layout} tensor; pass a dense one (t.to_dense())")
        if a.device.type == "meta":
            raise DataError(f"{what}: a tensor on the meta device holds no values")
        t = a.detach().cpu()
    else:
        try:
            arr = np.asarray(a)
        except Exception as e:  # noqa: BLE001 - any conversion failure is the user's input
            raise DataError(f"{what}: expected a tensor or array, got {type(a).__name__} ({e})") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise DataError(f"{what}: expected numbers, got an array of {arr.dtype}")
        if arr.dtype in (np.uint16, np.uint32, np.uint64) or np.issubdtype(arr.dtype, np.complexfloating):
            raise DataError(_unreadable(what, str(arr.dtype)))
        arr = np.ascontiguousarray(arr)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # views of file bytes are read-only
    if t.dtype not in READABLE:
        raise DataError(_unreadable(what, str(t.dtype).removeprefix("torch.")))
    return t


def _unreadable(what: str, dtype: str) -> str:
    fix = ("16-bit images: x.astype('float32') / 65535 with scale='0-1'" if "16" in dtype and "int" in dtype
           else "convert to float32 or int64")
    return f"{what}: values of dtype {dtype} are not read (no silent cast); {fix}"


def _images(x: Any, what: str) -> tuple[torch.Tensor, str | None]:
    """(N, C, H, W) images; (N, H, W) gains C = 1; channels-last (N, H, W, C<=4) is transposed (noted)."""
    t = _as_tensor(x, what)
    if t.dim() == 3:
        return t.unsqueeze(1), None  # (N, 1, H, W)
    if t.dim() != 4:
        raise DataError(f"{what}: expected images of shape (N, C, H, W) or (N, H, W), got {tuple(t.shape)}")
    if channels_last(tuple(t.shape)):  # (N, H, W, C): the NumPy/PIL/Keras layout
        n, h, w, c = t.shape
        note = (f"{what}: read {tuple(t.shape)} as channels-last (N, H, W, C) and transposed to "
                f"({n}, {c}, {h}, {w}) (a last axis of at most 4 is read as colour channels; images of more "
                "than 4 channels and width 4 or less are not supported)")
        warnings.warn(note, stacklevel=_caller_level())  # shown at the user's line; info["notes"] keeps it
        return t.permute(0, 3, 1, 2).contiguous(), note
    return t, None


def _caller_level() -> int:
    """``warnings.warn``'s stacklevel of the first frame outside ablab, from the function calling this."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("ablab."):
        frame, level = frame.f_back, level + 1
    return level


MAX_LABEL = 1_000_000  # more classes than any image classifier ablab trains; bounds the class table too


def _labels(y: Any, n: int, what: str) -> torch.Tensor:
    t = _as_tensor(y, what)
    if t.dim() == 2 and t.shape[1] > 1:
        raise DataError(f"{what}: expected class indices (N,), got shape {tuple(t.shape)} — one-hot labels? "
                        "pass y.argmax(1)")
    t = t.reshape(-1) if t.dim() == 2 else t
    if t.dim() != 1:
        raise DataError(f"{what}: expected class indices of shape (N,), got {tuple(t.shape)}")
    if t.is_floating_point():
        if not bool((t == t.round()).all()):
            raise DataError(f"{what}: expected integer class indices, got non-integer floats")
        if t.numel() and not bool((t.abs() <= MAX_LABEL).all()):  # 1e20 would wrap to a negative int64
            raise DataError(f"{what}: label {float(t.abs().max()):g} is not a class index (at most {MAX_LABEL:,})")
    elif t.dtype == torch.bool:
        t = t.to(torch.int64)
    if t.shape[0] != n:
        raise DataError(f"{what}: {t.shape[0]:,} labels for {n:,} images")
    if n and int(t.min()) < 0:
        raise DataError(f"{what}: label {int(t.min())} is negative; labels must be class indices 0..K-1")
    if n and int(t.max()) > MAX_LABEL:
        raise DataError(f"{what}: label {int(t.max()):,} is not a class index (at most {MAX_LABEL:,})")
    return t.to(torch.int64)


def prepare(x: Any, y: Any, test: tuple[Any, Any] | None = None, *, classes: Sequence[str] | None = None,
            scale: str = "auto", test_fraction: float = 0.2, stratified: bool = False,
            info: dict[str, Any] | None = None, where: str = "x") -> Prepared:
    """Validate images and labels, hold out a test split if none is given, detect the pixel scale and
    convert to the stored form; ``where`` names the input in errors (``x``, a folder, ``dataset``)."""
    pixel_scale.canonical(scale)
    notes: list[str] = []
    xt, note = _images(x, where)
    notes += [note] if note else []
    yt = _labels(y, xt.shape[0], f"{where}: labels" if where != "x" else "y")
    if xt.shape[0] == 0:
        raise DataError(f"{where}: no images")
    if test is not None:
        if not isinstance(test, tuple | list) or len(test) != 2:
            raise DataError(f"test: expected a pair (x_test, y_test), got {type(test).__name__}")
        xs, note = _images(test[0], f"{where} (test)" if where != "x" else "test x")
        notes += [note] if note else []
        ys = _labels(test[1], xs.shape[0], "test y" if where == "x" else f"{where} (test): labels")
        if tuple(xs.shape[1:]) != tuple(xt.shape[1:]):
            raise DataError(f"{where}: test images are {'x'.join(map(str, xs.shape[1:]))} but training images are "
                            f"{'x'.join(map(str, xt.shape[1:]))}")
        if xs.shape[0] == 0:
            raise DataError(f"{where}: the test split is empty")
    else:
        if not 0 < test_fraction < 1:
            raise DataError(f"test_fraction: expected a fraction in (0, 1), got {test_fraction!r}")
        n = xt.shape[0]
        k = holdout_size(n, test_fraction)
        if n - k < 1:
            raise DataError(f"{where}: {n} sample(s) are too few to hold out a test split")
        gen = torch.Generator().manual_seed(TEST_HOLDOUT_SEED)
        held = choose(yt, torch.arange(n), k, gen, stratified)
        keep = torch.ones(n, dtype=torch.bool)
        keep[held] = False
        xs, ys, xt, yt = xt[held], yt[held], xt[keep], yt[keep]
        notes.append(f"test split held out: {k:,} of {n:,} samples ({test_fraction:g}, seed {TEST_HOLDOUT_SEED})")
    # labels: K from the class names, else from the largest label
    k_max = int(max(int(yt.max()), int(ys.max()))) + 1
    if classes is not None:
        classes = tuple(str(c) for c in classes)
        if k_max > len(classes):
            split, arr = ("train", yt) if int(yt.max()) + 1 > len(classes) else ("test", ys)
            i = int((arr >= len(classes)).nonzero()[0, 0])
            raise DataError(f"{where}: {split} label {int(arr[i])} at index {i:,} is outside 0..{len(classes) - 1} "
                            f"({len(classes)} classes given)")
    else:
        if int(yt.min()) == 1 and int(ys.min()) >= 1:
            raise DataError(f"{where}: the labels start at 1 (no label 0), which would make {k_max} classes with an "
                            f"empty class 0; subtract 1 from the labels, or pass classes=[...] naming all {k_max}")
        classes = tuple(str(k) for k in range(k_max))
    unseen = sorted(set(ys.unique().tolist()) - set(yt.unique().tolist()))
    if unseen:
        raise DataError(f"{where}: test label(s) {', '.join(map(str, unseen[:5]))}{' ...' if len(unseen) > 5 else ''}"
                        f" never occur in the training split: a model cannot learn a class it never sees, and "
                        "accuracy on it says nothing; check the labels (or drop those test samples)")
    if len(classes) < 2:
        raise DataError(f"{where}: only one class (label 0); a classifier needs at least 2")
    # pixel scale: detected on the training images; the test images must be on the same scale
    scale_of = pixel_scale.detect(xt, scale, where)
    pixel_scale.detect(xs, scale_of, f"{where} (test)")
    xt, xs = pixel_scale.to_storage(xt, scale_of), pixel_scale.to_storage(xs, scale_of)
    stored = pixel_scale.stored_scale(xt, scale_of)
    full_info = {"format": "tensors", "source": "in-memory tensors", **(info or {}),
                 "declared_scale": scale, "detected_scale": scale_of, "notes": notes}
    return Prepared(xt, yt, xs, ys, classes, stored, full_info)


# ------------------------------------------------------------------------------ torch datasets


def _item(sample: Any, i: int) -> tuple[torch.Tensor, int]:
    if not isinstance(sample, tuple | list) or len(sample) < 2:
        raise DataError(f"dataset[{i}]: expected an (image, label) pair, got {type(sample).__name__}")
    img, label = sample[0], sample[1]
    if not isinstance(img, torch.Tensor):
        if hasattr(img, "getbands"):  # a PIL image: (H, W) or (H, W, C) uint8
            arr = np.asarray(img)
            img = torch.from_numpy(arr.copy() if arr.ndim == 2 else arr.transpose(2, 0, 1).copy())
        else:
            img = _as_tensor(img, f"dataset[{i}] image")
    if isinstance(label, torch.Tensor):
        if label.numel() != 1:
            raise DataError(f"dataset[{i}]: expected one integer label, got a tensor of shape {tuple(label.shape)}")
        label = label.item()
    try:
        if isinstance(label, float) and not label.is_integer():
            raise ValueError
        if not 0 <= int(label) <= MAX_LABEL:
            raise DataError(f"dataset[{i}]: label {label!r} is not a class index 0..{MAX_LABEL:,}")
        return img, int(label)
    except (TypeError, ValueError):
        raise DataError(f"dataset[{i}]: expected an integer class label, got {label!r}") from None


def materialize(ds: Any, what: str = "dataset", progress: Progress | None = None,
                max_bytes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, ...), labels (N,)) of a map-style dataset, read once. A ``TensorDataset`` is used
    directly; any other is indexed ``ds[0] .. ds[N-1]`` into one preallocated tensor."""
    from torch.utils.data import TensorDataset

    if isinstance(ds, TensorDataset):
        if len(ds.tensors) < 2:
            raise DataError(f"{what}: a TensorDataset of (images, labels) is needed, got {len(ds.tensors)} tensor(s)")
        return ds.tensors[0], ds.tensors[1]
    if not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__")):
        raise DataError(f"{what}: expected a map-style dataset (with __len__ and __getitem__), got "
                        f"{type(ds).__name__}; an IterableDataset cannot be split reproducibly — collect it "
                        "into tensors and use Dataset.from_tensors")
    try:
        n = int(len(ds))
    except (TypeError, ValueError, OverflowError) as e:
        raise DataError(f"{what}: len() failed ({type(e).__name__}: {e})") from None
    if n < 0:
        raise DataError(f"{what}: len() is {n}, not a number of items")
    if n == 0:
        raise DataError(f"{what}: the dataset is empty")
    first, label0 = _item(ds[0], 0)
    need = n * first.numel() * first.element_size()
    check_fits(need, f"{what}: {n:,} images of {tuple(first.shape)} {first.dtype}",
               "use a subset (torch.utils.data.Subset) or pass max_bytes=", max_bytes, peak=1)  # filled in place
    x = torch.empty((n, *first.shape), dtype=first.dtype)
    y = torch.empty(n, dtype=torch.int64)
    x[0], y[0] = first, label0
    step = max(1, n // 100)
    for i in range(1, n):
        try:
            sample = ds[i]
        except (IndexError, KeyError, StopIteration):
            raise DataError(f"{what}: len() says {n:,} items but {what}[{i}] does not exist") from None
        img, label = _item(sample, i)
        if img.shape != first.shape:
            raise DataError(f"{what}[{i}]: image of shape {tuple(img.shape)}, but {what}[0] is "
                            f"{tuple(first.shape)}; all images must have one size")
        if img.dtype != first.dtype:  # a copy into x would cast: float [0, 1] pixels after uint8 ones become 0
            raise DataError(f"{what}[{i}]: image of dtype {img.dtype}, but {what}[0] is {first.dtype}; ablab does not "
                            "cast between dtypes — give every item one dtype (e.g. the same transform for all)")
        x[i], y[i] = img, label
        if progress is not None and (i + 1) % step == 0:
            progress(i + 1, n)
    if progress is not None:
        progress(n, n)
    return x, y
