"""Your own data as an ablab :class:`Dataset`: the file sources, and ``fit``'s dataset argument.

    >>> ds = load_dataset("idx:mydata/")      # or npz:file.npz, folder:images/ (CLI: --data idx:mydata/)
    >>> ds = Dataset.from_tensors(x, y)       # tensors and torch datasets: ablab.data.dataset (re-exported here)

A file source is read by ``ablab.data.files`` / ``ablab.data.folder``, checked by ``ablab.data.arrays``
and assembled like the built-in datasets (``ablab.data.dataset.assemble``): the seeded validation split
and ``limit``, normalization from the training split only, the pixel scale detected and recorded. User
data is validated (shapes, counts, label range) but never SHA-pinned: only the built-in names are.
Sources are cached in the process on their files' path, size and mtime.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from ablab.data.dataset import Dataset, from_arrays, from_tensors, from_torch
from ablab.data.errors import DataError
from ablab.data.source_registry import parse_source, read_source, source_files

__all__ = ["as_dataset", "clear_cache", "from_arrays", "from_tensors", "from_torch", "load_source"]

CACHE_SIZE = 8  # file sources kept in memory (keyed on each file's path, size and mtime)

_CACHE: OrderedDict[tuple[Any, ...], Dataset] = OrderedDict()


def as_dataset(given: Any, config: Any) -> Dataset:
    """``fit(config, dataset=...)``'s argument as a Dataset: an ablab Dataset as is; a torch dataset
    read with the config's split settings."""
    if isinstance(given, Dataset):
        return given
    if hasattr(given, "__getitem__") and hasattr(given, "__len__"):
        return from_torch(given, val_fraction=config.val_fraction, split_seed=config.split_seed,
                          stratified=config.stratified, limit=config.limit)
    raise DataError(f"dataset: expected an ablab Dataset or a map-style torch dataset, got {type(given).__name__}; "
                    "build one with ablab.Dataset.from_tensors(x, y) or ablab.Dataset.from_torch(ds)")


# ------------------------------------------------------------------------------ file sources


def _identity(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for p in paths:
        st = p.stat()
        out.append((str(p), st.st_size, st.st_mtime_ns))
    return tuple(out)


def load_source(name: str, *, val_fraction: float = 0.1, split_seed: int = 0, stratified: bool = False,
                limit: int | None = None) -> Dataset:
    """Read a file source (cached on the files' path, size and mtime) and assemble it."""
    kind, path, opts = parse_source(name)
    files = source_files(kind, path)
    test_fraction = float(opts.get("test_fraction", 0.2))
    key = (kind, str(path.resolve()), tuple(sorted(opts.items())), _identity(files), float(val_fraction),
           int(split_seed), bool(stratified), limit)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    x, y, test, classes, info = read_source(kind, path)
    ds = from_arrays(x, y, test, classes=classes, name=name, scale=opts.get("scale", "auto"),
                     test_fraction=test_fraction, val_fraction=val_fraction, split_seed=split_seed,
                     stratified=stratified, limit=limit, where=str(path),
                     info={"format": kind, "source": str(path.resolve()), "found_via": "source", **info})
    _CACHE[key] = ds
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return ds


def clear_cache() -> None:
    _CACHE.clear()
