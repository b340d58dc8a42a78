"""The in-memory dataset every trainer consumes: image tensors (uint8 0-255, or float32 0-1 /
standardized — see ``ablab.data.scale``), int64 labels, and the normalization constants computed from
the training split only (never validation or test).

Built-in datasets come from ``load_dataset``; your own data from :meth:`Dataset.from_tensors`,
:meth:`Dataset.from_torch`, or the file sources ``idx:DIR``, ``npz:FILE``, ``folder:DIR``
(``ablab.data.sources``). All end in :func:`assemble`, so splits, ``limit`` and normalization follow
one set of rules."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ablab.data.arrays import Progress, materialize, prepare
from ablab.data.errors import DataError
from ablab.data.split import TEST_SUBSET_SEED, split_indices


@dataclass(frozen=True)
class Split:
    """One split held whole in memory."""

    x: torch.Tensor  # (N, C, H, W): uint8 pixel values 0..255, or float32 (0..1 or standardized)
    y: torch.Tensor  # int64 (N,), class indices 0..num_classes-1

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return f"Split({len(self)} samples, x {tuple(self.x.shape)} {self.x.dtype}, y {tuple(self.y.shape)})"

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
    mean: tuple[float, ...]  # per channel, of x/255 (uint8) or x (float) over the training split
    std: tuple[float, ...]  # per channel, of x/255 (uint8) or x (float) over the training split
    info: dict[str, Any] = field(default_factory=dict)  # provenance: source paths, split seed, limit, ...
    scale: str = "0-255"  # pixel scale of x: "0-255" (uint8), "0-1" or "standardized" (float32)

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        return (f"Dataset({self.name!r}: train {len(self.train):,} / val {len(self.val):,} / test "
                f"{len(self.test):,}, images {shape}, pixels {self.scale}, {self.num_classes} classes)")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def source(self) -> str:
        """Where the data came from, for headers: the name, plus the folder/file when that says more."""
        src = str(self.info.get("source", ""))
        generated = self.info.get("found_via") == "generated"
        return self.name if generated or not src or src in self.name else f"{self.name} ({src})"

    def test_sha256(self) -> str:
        """SHA-256 of the test split's images and labels as stored (dtype, shape and bytes): which test
        set an accuracy belongs to (checkpoints record it; ``evaluate_checkpoint(dataset=)`` checks it)."""

        h = hashlib.sha256()
        for t in (self.test.x, self.test.y):
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()

    @classmethod
    def from_tensors(cls, x: Any, y: Any, **options: Any) -> Dataset:
        """Your own images and labels as a Dataset: see :func:`from_tensors`."""
        return from_tensors(x, y, **options)

    @classmethod
    def from_torch(cls, ds: Any, test: Any = None, **options: Any) -> Dataset:
        """Any map-style torch dataset, read once into memory: see :func:`from_torch`."""
        return from_torch(ds, test, **options)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of images (N, C, H, W) in float64: of x/255 for uint8, of x
    itself for float images.

    For uint8:
    Computed from each channel's 256-bin histogram: mean = sum_v v*n_v / N and
    var = sum_v (v - mean)^2 * n_v / N over the pixel values v — exact, and about 6x faster than
    converting the whole split to float64 (which would also need 8 bytes per pixel of memory).
    """
    if x.is_floating_point():
        flat = x.transpose(0, 1).reshape(x.shape[1], -1).double()  # (C, N*H*W)
        return tuple(flat.mean(1).tolist()), tuple(flat.std(1, correction=0).tolist())
    if x.dtype != torch.uint8:
        raise TypeError(f"channel_stats: expected uint8 or float images, got {x.dtype}")
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


def check_split_args(val_fraction: float, split_seed: int, limit: int | None) -> None:
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, int | float) or not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction: expected a fraction in [0, 1), got {val_fraction!r}")
    if isinstance(split_seed, bool) or not isinstance(split_seed, int) or not 0 <= split_seed <= 2**32 - 1:
        raise DataError(f"split_seed: expected an integer in 0..{2**32 - 1:,}, got {split_seed!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise DataError(f"limit: expected a positive integer or None, got {limit!r}")


def assemble(name: str, train_all: Split, test: Split, classes: Sequence[str], *, val_fraction: float = 0.1,
             split_seed: int = 0, stratified: bool = False, limit: int | None = None, scale: str = "0-255",
             info: dict[str, Any] | None = None) -> Dataset:
    """The one way a Dataset is made from a full training set and a test set: the seeded validation
    split and ``limit`` subsets of ``ablab.data.split``, then mean/std on the final training split."""


    tr, va, te = split_indices(train_all.y, len(test), val_fraction=val_fraction, split_seed=split_seed,
                               stratified=stratified, limit=limit, y_test=test.y)
    train = Split(train_all.x[tr], train_all.y[tr])
    val = Split(train_all.x[va], train_all.y[va])
    test_part = test if len(te) == len(test) else Split(test.x[te], test.y[te])
    if scale == "standardized":
        c = train.x.shape[1]
        mean, std = (0.0,) * c, (1.0,) * c
    else:
        mean, std = channel_stats(train.x)
        std = tuple(s if s > 0 else 1.0 for s in std)  # a constant channel: centre it, do not divide by 0
    full = {
        "dataset": name,
        **(info or {}),
        "pixel_scale": scale,
        "official_sizes": {"train": len(train_all), "test": len(test)},
        "sizes": {"train": len(train), "val": len(val), "test": len(test_part)},
        "val_fraction": float(val_fraction),
        "split_seed": int(split_seed),
        "stratified": bool(stratified),
        "limit": limit,
        "test_subset_seed": TEST_SUBSET_SEED if limit is not None and limit < len(test) else None,
        "val_indices_sha256": hashlib.sha256(va.numpy().astype("<i8").tobytes()).hexdigest(),
        "mean": list(mean),
        "std": list(std),
        "normalization": ("none: the images were given standardized" if scale == "standardized" else
                          "per channel, of " + ("x/255" if scale == "0-255" else "x")
                          + " over the final train split (after validation and limit)"),
    }
    return Dataset(name, train, val, test_part, tuple(classes), mean, std, full, scale)


# ------------------------------------------------------------------------------ your own data


def from_arrays(x: Any, y: Any, test: tuple[Any, Any] | None = None, *, classes: Sequence[str] | None = None,
                name: str | None = None, scale: str = "auto", test_fraction: float = 0.2,
                val_fraction: float = 0.1, split_seed: int = 0, stratified: bool = False,
                limit: int | None = None, info: dict[str, Any] | None = None, where: str = "x") -> Dataset:
    """Validate, detect the pixel scale, hold out a test split if none is given (``ablab.data.arrays``),
    and assemble."""
    check_split_args(val_fraction, split_seed, limit)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, int | float) or not 0 < test_fraction < 1:
        raise DataError(f"test_fraction: expected a fraction in (0, 1), got {test_fraction!r}")
    if classes is not None and (isinstance(classes, str | bytes) or not isinstance(classes, Sequence)):
        raise DataError(f"classes: expected a list of class names (e.g. ['cat', 'dog']), got {classes!r}; the number "
                        "of classes comes from the labels")
    p = prepare(x, y, test, classes=classes, scale=scale, test_fraction=test_fraction, stratified=stratified,
                info=info, where=where)
    return assemble(name or "tensors", Split(p.x, p.y), Split(p.test_x, p.test_y), p.classes,
                    val_fraction=val_fraction, split_seed=split_seed, stratified=stratified, limit=limit,
                    scale=p.scale, info=p.info)


def from_tensors(x: Any, y: Any, *, test: tuple[Any, Any] | None = None, classes: Sequence[str] | None = None,
                 name: str | None = None, scale: str = "auto", test_fraction: float = 0.2,
                 val_fraction: float = 0.1, split_seed: int = 0, stratified: bool = False,
                 limit: int | None = None) -> Dataset:
    """Images ``x`` (N, C, H, W) or (N, H, W) — uint8 0-255, float 0-1 or standardized floats, torch or
    NumPy — and integer labels ``y`` (N,) as a Dataset.

    ``test``: (x_test, y_test); None holds out ``test_fraction`` of the samples. ``scale``: ``auto``
    (detected; an ambiguous range is an error) or one of ``0-255``, ``0-1``, ``standardized``.
    ``classes``: class names (index = label); default ``"0".."K-1"``. ``name`` shows in headers and runs.
    """
    return from_arrays(x, y, test, classes=classes, name=name, scale=scale, test_fraction=test_fraction,
                       val_fraction=val_fraction, split_seed=split_seed, stratified=stratified, limit=limit)


def from_torch(ds: Any, test: Any = None, *, classes: Sequence[str] | None = None, name: str | None = None,
               progress: Progress | None = None, max_bytes: int | None = None, **options: Any) -> Dataset:
    """A map-style torch dataset (``(image, label)`` items; tensors, arrays or PIL images) read once
    into memory; ``test`` likewise (None: held out). ``progress(done, total)`` is called while reading.
    Class names come from ``classes=`` or the dataset's own ``.classes``. Other options as
    :func:`from_tensors`. Refuses (DataError) a dataset that would need more than half the available
    memory, or ``max_bytes``."""
    x, y = materialize(ds, "dataset", progress, max_bytes)
    test_xy = materialize(test, "test", progress, max_bytes) if test is not None else None
    if classes is None and isinstance(getattr(ds, "classes", None), list | tuple):
        classes = [str(c) for c in ds.classes]
    return from_arrays(x, y, test_xy, classes=classes, name=name or type(ds).__name__, where="dataset",
                       info={"format": "torch", "source": f"torch dataset {type(ds).__name__}"}, **options)
