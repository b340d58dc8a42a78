"""A deterministic, learnable, tiny dataset generated in memory — for tests and demos that must run in
a second with no files.

Each class has a fixed blocky pattern (a random 4x4 on/off grid per channel, scaled up to H x W); an
image is its class pattern at 70% contrast on a 15% grey floor, plus per-pixel Gaussian noise, clipped
and quantised to uint8 like a real image file. Classes are balanced (label = i mod K, then shuffled).

Name options: ``synthetic:n=2000,test=500,shape=1x28x28,classes=10,noise=0.25,seed=0`` (any subset, any
order): ``n`` training images (before the validation split), ``test`` test images, ``shape`` C x H x W,
``classes`` K >= 2, ``noise`` std of the per-pixel noise in units of the full 0..1 range, ``seed`` of
the patterns and samples. ``limit``/``val_fraction``/``split_seed`` apply on top as for real datasets.

Every size is bounded by the memory budget (:mod:`ablab.data.budget`): the images, the class patterns and
the noise being drawn are counted before anything is allocated, and the noise is drawn a chunk at a time
(the same values as in one draw), so ``synthetic:test=100000000`` is one error, not a 24 GiB allocation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ablab.data.budget import check_fits
from ablab.data.errors import DataError

EXPECTED = {"shape": "CxHxW like 1x8x8", "noise": "a number"}  # the other options are whole numbers
CHUNK_VALUES = 1 << 20  # pixel values drawn per step: the float temporaries stay near 40 MB whatever n is
TEMP_BYTES = 36  # bytes per value of one step's temporaries (float64 noise, float32 pattern, sum, scaled, clipped)
PEAK = 3  # copies of the images at the peak of making a dataset of them (generated, split, tensors): 2.98x measured


@dataclass(frozen=True)
class SyntheticOptions:
    n: int = 2000  # training images (before the validation split)
    test: int = 500  # test images
    shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W)
    classes: int = 10  # number of classes K
    noise: float = 0.25  # per-pixel Gaussian noise std, in units of the 0..1 intensity range
    seed: int = 0  # seed of patterns and samples

    def canonical_name(self) -> str:
        if self == SyntheticOptions():
            return "synthetic"
        c, h, w = self.shape
        return (f"synthetic:n={self.n},test={self.test},shape={c}x{h}x{w},classes={self.classes},"
                f"noise={self.noise:g},seed={self.seed}")


def parse_options(name: str) -> SyntheticOptions:
    """``synthetic`` or ``synthetic:key=value,...`` -> options, with errors naming the key."""
    base, _, rest = name.partition(":")
    values: dict[str, object] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, val = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise DataError(f"dataset '{name}': option '{item}' must be key=value")
        try:
            if key in ("n", "test", "classes", "seed"):
                values[key] = _whole(val)
            elif key == "noise":
                values[key] = float(val)
            elif key == "shape":
                dims = tuple(int(p) for p in val.lower().replace("×", "x").split("x"))
                if len(dims) == 2:
                    dims = (1, *dims)
                if len(dims) != 3:
                    raise ValueError
                values[key] = dims
            else:
                raise DataError(f"dataset '{name}': unknown option '{key}' (known: n, test, shape, classes, "
                                "noise, seed)")
        except ValueError:
            raise DataError(f"dataset '{name}': option {key}={val!r} is not valid "
                            f"({EXPECTED.get(key, 'a whole number')})") from None
    opts = SyntheticOptions(**values)  # type: ignore[arg-type]
    checks = [(opts.n >= 1, "n", "a positive integer"), (opts.test >= 1, "test", "a positive integer"),
              (all(d >= 1 for d in opts.shape), "shape", "positive sizes"),
              (2 <= opts.classes <= 1000, "classes", "between 2 and 1000"),
              (opts.noise >= 0, "noise", "a number >= 0"), (opts.seed >= 0, "seed", "an integer >= 0")]
    for ok, key, expected in checks:
        if not ok:
            raise DataError(f"dataset '{name}': option {key} must be {expected}, got {getattr(opts, key)!r}")
    return opts


def footprint(opts: SyntheticOptions) -> int:
    """Bytes at the peak of making the dataset: ``PEAK`` copies of the uint8 images and int64 labels (as
    generated, then split and made tensors: 491 MiB for synthetic:n=200000,test=20000's 164 MiB of pixels),
    the class patterns (bool and float32), and one chunk's temporaries."""
    c, h, w = opts.shape
    pixels = c * h * w
    rows = max(1, CHUNK_VALUES // pixels)  # images per chunk
    images = PEAK * (opts.n + opts.test) * (pixels + 8)
    return images + opts.classes * pixels * 5 + min(rows, max(opts.n, opts.test)) * pixels * TEMP_BYTES


def _whole(text: str) -> int:
    """An integer option: ``2000``, or a whole number in float notation (``1e8``)."""
    try:
        return int(text)
    except ValueError:
        x = float(text)
        if not x.is_integer():
            raise ValueError(text) from None
        return int(x)


def generate(opts: SyntheticOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train x uint8 (n, C, H, W), train y int64 (n,), test x, test y), fully determined by ``opts``."""
    c, h, w = opts.shape
    check_fits(footprint(opts), f"dataset '{opts.canonical_name()}': {opts.n + opts.test:,} images of {c}x{h}x{w}",
               "ask for fewer or smaller images (n=, test=, shape=)", peak=1)
    rng = np.random.default_rng(opts.seed)
    coarse = rng.random((opts.classes, c, 4, 4)) < 0.5  # (K, C, 4, 4) on/off grid per class
    rows = np.arange(h) * 4 // h  # nearest-neighbour upsampling 4 -> H
    cols = np.arange(w) * 4 // w
    patterns = coarse[:, :, rows][:, :, :, cols].astype(np.float32)  # (K, C, H, W)
    step = max(1, CHUNK_VALUES // (c * h * w))  # images per chunk

    def sample(count: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
        r = np.random.default_rng([opts.seed, stream])
        y = r.permutation(np.arange(count) % opts.classes).astype(np.int64)  # balanced labels
        x = np.empty((count, c, h, w), dtype=np.uint8)  # (count, C, H, W)
        for i in range(0, count, step):  # the noise of images i..i+step: the same values as one draw of all
            part = 0.15 + 0.7 * patterns[y[i:i + step]] + r.normal(0.0, opts.noise, (len(y[i:i + step]), c, h, w)
                                                                   ).astype(np.float32)
            x[i:i + step] = np.clip(np.rint(part * 255.0), 0, 255)
        return x, y

    xtr, ytr = sample(opts.n, 1)
    xte, yte = sample(opts.test, 2)
    return xtr, ytr, xte, yte
