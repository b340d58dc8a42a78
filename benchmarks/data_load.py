"""How fast does ablab get a dataset into tensors, and what does it cost per epoch afterwards?

Measured in one run, against references measured in the same run:

1. Loading the full Fashion-MNIST (60,000 + 10,000 images) with ``load_dataset``: read, gunzip,
   SHA-256 check, validation, 90/10 split, mean/std — versus the minimal reader Fashion-MNIST itself
   ships (``utils/mnist_reader.py``: gzip.open + numpy.frombuffer, no checks, no split).
2. The in-process cache: a second ``load_dataset`` call with the same arguments.
3. One epoch of shuffled batches of 256: whole-tensor indexing (how ablab's trainer batches) versus a
   per-sample ``torch.utils.data.Dataset`` + ``DataLoader`` (the usual torchvision-style path).
4. ``augment`` (random crop pad 4 + flip) on a 512 x 3 x 32 x 32 batch versus a per-sample loop.

Usage:  python benchmarks/data_load.py [--data-dir DIR] [--repeats 5] [--threads N]
Timings are medians; numbers taken while other jobs use the CPU are noisy (with 2 OpenMP threads on a
busy 2-core machine, tensor ops can be 10x slower than with 1 thread: compare with --threads 1).
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ablab.data import augment, clear_cache, load_dataset
from ablab.data.catalog import get_spec
from ablab.data.locate import locate


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def reference_reader(folder: Path) -> tuple[torch.Tensor, ...]:
    """Fashion-MNIST's own utils/mnist_reader.py, as tensors."""
    out = []
    for kind in ("train", "t10k"):
        with gzip.open(folder / f"{kind}-labels-idx1-ubyte.gz", "rb") as f:
            labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
        with gzip.open(folder / f"{kind}-images-idx3-ubyte.gz", "rb") as f:
            images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(len(labels), 1, 28, 28)
        out += [torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))]
    return tuple(out)


class PerSample(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i].float().div(255), self.y[i]


def epoch_whole_tensor(x: torch.Tensor, y: torch.Tensor, bs: int, g: torch.Generator) -> int:
    perm = torch.randperm(len(y), generator=g)
    n = 0
    for i in range(0, len(y), bs):
        idx = perm[i: i + bs]
        xb, yb = x[idx].float().div_(255), y[idx]  # (B, 1, 28, 28), (B,)
        n += min(len(xb), len(yb))
    return n


def epoch_dataloader(x: torch.Tensor, y: torch.Tensor, bs: int, g: torch.Generator) -> int:
    loader = torch.utils.data.DataLoader(PerSample(x, y), batch_size=bs, shuffle=True, generator=g)
    return sum(len(yb) for _, yb in loader)


def augment_loop(x: torch.Tensor, g: torch.Generator, p: int = 4) -> torch.Tensor:
    n, _, h, w = x.shape
    oy = torch.randint(0, 2 * p + 1, (n,), generator=g)
    ox = torch.randint(0, 2 * p + 1, (n,), generator=g)
    fl = torch.rand(n, generator=g) < 0.5
    out = []
    for i in range(n):
        img = F.pad(x[i], (p, p, p, p))[:, oy[i]: oy[i] + h, ox[i]: ox[i] + w]
        out.append(img.flip(-1) if fl[i] else img)
    return torch.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    found = locate(get_spec("fashion-mnist"), args.data_dir)
    if found is None:
        raise SystemExit("Fashion-MNIST not found: sudo apt-get install dataset-fashion-mnist "
                         "or ablab data fetch fashion-mnist")
    print(f"Fashion-MNIST from {found.dir}  (torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats})")

    def fresh() -> object:
        clear_cache()
        return load_dataset("fashion-mnist", data_dir=args.data_dir, download=False)

    t0 = time.perf_counter()
    fresh()
    t_first = time.perf_counter() - t0  # includes first-call warm-up (allocator, lazy imports)
    t_ours = median_time(fresh, args.repeats)
    t_ref = median_time(lambda: reference_reader(found.dir), args.repeats)
    t_cached = median_time(lambda: load_dataset("fashion-mnist", data_dir=args.data_dir), args.repeats)
    print(f"1. full load into tensors (read+gunzip+sha256+validate+split+mean/std): {t_ours:.3f} s   "
          f"reference mnist_reader (no checks, no split): {t_ref:.3f} s   ratio {t_ours / t_ref:.2f}x   "
          f"(first call in this process: {t_first:.3f} s)")
    print(f"2. cached reload (same arguments): {t_cached * 1e3:.3f} ms   ({t_ours / t_cached:,.0f}x faster "
          "than a fresh load)")

    ds = load_dataset("fashion-mnist", data_dir=args.data_dir)
    reps = max(1, args.repeats // 2)
    t_whole = median_time(lambda: epoch_whole_tensor(ds.train.x, ds.train.y, 256, torch.Generator().manual_seed(0)),
                          reps)
    t_loader = median_time(lambda: epoch_dataloader(ds.train.x, ds.train.y, 256, torch.Generator().manual_seed(0)),
                           reps)
    print(f"3. one epoch of shuffled batches of 256 (54,000 images): whole-tensor {t_whole:.3f} s   "
          f"per-sample Dataset+DataLoader {t_loader:.3f} s   speed-up {t_loader / t_whole:.1f}x")

    xb = torch.randn(512, 3, 32, 32)
    threads = torch.get_num_threads()
    for t in sorted({1, threads}):  # on a busy machine, 2 OpenMP threads can be much slower than 1
        torch.set_num_threads(t)
        t_aug = median_time(lambda: augment(xb, torch.Generator().manual_seed(0)), args.repeats)
        t_loop = median_time(lambda: augment_loop(xb, torch.Generator().manual_seed(0)), args.repeats)
        print(f"4. augment 512x3x32x32 (crop pad 4 + flip), {t} thread(s): vectorized {t_aug * 1e3:.2f} ms   "
              f"per-sample loop {t_loop * 1e3:.2f} ms   speed-up {t_loop / t_aug:.1f}x")
    torch.set_num_threads(threads)
    print(f"load average during the run: {', '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
