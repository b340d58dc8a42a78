"""Decoded built-in datasets, cached as memory-mappable ``.npy`` arrays in the user cache.

Reading Fashion-MNIST means inflating four gzip files and hashing their content (~1 s on a small
machine) — every ``ablab train`` and every study worker paid it. The first verified read stores the
decoded uint8 arrays under ``<user cache>/decoded/<name>-<key>/`` and later runs map them from disk.

The key is a SHA-256 over the dataset's pinned checksums (the sums the content was verified against)
and each source file's path, size and modification time: a replaced or touched source file, or a
registry entry with other sums, misses the cache and is read and verified again. A cache entry is
written to a temporary folder and renamed into place (never half-written); one that is damaged or
does not match the registry's shapes is ignored and rewritten. ``ABLAB_NO_DATA_CACHE=1`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ablab.data.locate import user_cache_dir

if TYPE_CHECKING:
    from ablab.data.catalog import DatasetSpec
    from ablab.data.dataset import Split
    from ablab.data.locate import Found

ENV_OFF = "ABLAB_NO_DATA_CACHE"
FORMAT = 1
ARRAYS = ("train_x", "train_y", "test_x", "test_y")


@dataclass(frozen=True)
class Decoded:
    """The official splits as read from the cache and the verified file sums."""

    train: Split  # tensors over copy-on-write memory maps: pages are read when used, writes stay private
    test: Split
    files: dict[str, dict[str, str]]


def cache_root() -> Path:
    return user_cache_dir() / "decoded"


def entry_dir(spec: DatasetSpec, found: Found) -> Path:
    """``<cache>/decoded/<name>-<key>``: the key covers the pinned sums and the source files' identity."""
    blob = json.dumps([FORMAT, spec.name, repr(spec.files), found.fmt, [list(i) for i in found.identity()]])
    return cache_root() / f"{spec.name}-{hashlib.sha256(blob.encode()).hexdigest()[:24]}"


def enabled() -> bool:
    return os.environ.get(ENV_OFF, "").lower() not in ("1", "true", "yes")


def load(spec: DatasetSpec, found: Found) -> Decoded | None:
    """The cached arrays of this exact copy, memory-mapped (copy-on-write: a caller that writes into them
    gets private pages, the file never changes); None on a miss or a damaged entry."""
    if not enabled():
        return None
    folder = entry_dir(spec, found)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="c", allow_pickle=False) for k in ARRAYS}
    except (OSError, ValueError):
        return None
    if not _plausible(spec, meta, arrays):
        return None
    import torch

    from ablab.data.dataset import Split

    t = {k: torch.from_numpy(a) for k, a in arrays.items()}
    return Decoded(Split(t["train_x"], t["train_y"]), Split(t["test_x"], t["test_y"]), dict(meta["files"]))


def store(spec: DatasetSpec, found: Found, train: Split, test: Split, files: dict[str, dict[str, str]]) -> None:
    """Write a verified read into the cache (best effort: a read-only or full disk only costs speed)."""
    if not enabled():
        return
    folder = entry_dir(spec, found)
    arrays = {"train_x": train.x.numpy(), "train_y": train.y.numpy(), "test_x": test.x.numpy(),
              "test_y": test.y.numpy()}
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            for k, a in arrays.items():
                np.save(tmp / f"{k}.npy", a, allow_pickle=False)
            meta = {"format": FORMAT, "dataset": spec.name, "files": files,
                    "shapes": {k: list(a.shape) for k, a in arrays.items()}}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        pass


def _plausible(spec: DatasetSpec, meta: Any, arrays: dict[str, np.ndarray]) -> bool:
    """The entry matches what the registry says this dataset is (a truncated or foreign entry does not)."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("dataset") != spec.name:
        return False
    n = {"train": spec.n_train, "test": spec.n_test}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.dtype != np.uint8 or x.shape != (n[split], *spec.shape) or y.shape != (n[split],):
            return False
        if int(y.min()) < 0 or int(y.max()) >= len(spec.classes):
            return False
    return isinstance(meta.get("files"), dict)
