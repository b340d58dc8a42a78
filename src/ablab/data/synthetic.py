"""A deterministic, learnable, tiny dataset generated in memory — for tests and demos that must run in
a second with no files.

Each class has a fixed blocky pattern (a random 4x4 on/off grid per channel, scaled up to H x W); an
image is its class pattern at 70% contrast on a 15% grey floor, plus per-pixel Gaussian noise, clipped
and quantised to uint8 like a real image file. Classes are balanced (label = i mod K, then shuffled).

Name options: ``synthetic:n=2000,test=500,shape=1x28x28,classes=10,noise=0.25,seed=0`` (any subset, any
order): ``n`` training images (before the validation split), ``test`` test images, ``shape`` C x H x W,
``classes`` K >= 2, ``noise`` std of the per-pixel noise in units of the full 0..1 range, ``seed`` of
the patterns and samples. ``limit``/``val_fraction``/``split_seed`` apply on top as for real datasets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ablab.data.errors import DataError


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
                values[key] = int(val)
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
                            f"({'CxHxW like 1x8x8' if key == 'shape' else 'a number'})") from None
    opts = SyntheticOptions(**values)  # type: ignore[arg-type]
    checks = [(opts.n >= 1, "n", "a positive integer"), (opts.test >= 1, "test", "a positive integer"),
              (all(d >= 1 for d in opts.shape), "shape", "positive sizes"),
              (2 <= opts.classes <= 1000, "classes", "between 2 and 1000"),
              (opts.noise >= 0, "noise", "a number >= 0"), (opts.seed >= 0, "seed", "an integer >= 0")]
    for ok, key, expected in checks:
        if not ok:
            raise DataError(f"dataset '{name}': option {key} must be {expected}, got {getattr(opts, key)!r}")
    return opts


def generate(opts: SyntheticOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train x uint8 (n, C, H, W), train y int64 (n,), test x, test y), fully determined by ``opts``."""
    c, h, w = opts.shape
    rng = np.random.default_rng(opts.seed)
    coarse = rng.random((opts.classes, c, 4, 4)) < 0.5  # (K, C, 4, 4) on/off grid per class
    rows = np.arange(h) * 4 // h  # nearest-neighbour upsampling 4 -> H
    cols = np.arange(w) * 4 // w
    patterns = coarse[:, :, rows][:, :, :, cols].astype(np.float32)  # (K, C, H, W)

    def sample(count: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
        r = np.random.default_rng([opts.seed, stream])
        y = r.permutation(np.arange(count) % opts.classes).astype(np.int64)  # balanced labels
        x = 0.15 + 0.7 * patterns[y] + r.normal(0.0, opts.noise, (count, c, h, w)).astype(np.float32)
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8), y  # (count, C, H, W)

    xtr, ytr = sample(opts.n, 1)
    xte, yte = sample(opts.test, 2)
    return xtr, ytr, xte, yte
