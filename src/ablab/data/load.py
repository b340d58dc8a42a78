"""``load_dataset``: locate (or fetch) the files, read and verify them once, split, limit, compute the
normalization constants on the final training split — cached in-process, since a study loads the same
dataset many times.

Two caches, both keyed on each file's (path, size, mtime) so a replaced file is reread:
the raw official splits (uint8 tensors, per dataset), and the finished :class:`Dataset` per argument
set. Cached tensors are shared between callers: treat them as read-only (``normalize`` and ``augment``
return new tensors).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ablab.data import cache as decoded_cache
from ablab.data import synthetic
from ablab.data.catalog import CifarFiles, DatasetSpec, IdxFiles, get_spec
from ablab.data.cifar import max_batch_bytes, parse_cifar_bin, parse_cifar_pickle, read_archive_members
from ablab.data.dataset import Dataset, Split, assemble, check_split_args
from ablab.data.errors import DataError
from ablab.data.idx import check_pair, parse_images, parse_labels, read_file_bytes, read_idx_bytes
from ablab.data.locate import Found, locate, not_found_error
from ablab.data.verify import (
    MANIFEST,
    Check,
    check_content,
    check_file,
    idx_data_bytes,
    manifest_digest,
    sha256_bytes,
    verify_found,
)

RAW_CACHE_SIZE = 4  # official datasets held in memory (Fashion-MNIST: 55 MB as uint8)
DATASET_CACHE_SIZE = 16  # finished Dataset objects (split/limit variants)


@dataclass(frozen=True)
class Raw:
    """The official train and test sets as read from the files, plus what was checked."""

    train: Split
    test: Split
    files: dict[str, dict[str, str]]  # role -> {"path": ..., "sha256": ... or "unpinned"}


_RAW: OrderedDict[tuple[Any, ...], Raw] = OrderedDict()
_DATASETS: OrderedDict[tuple[Any, ...], Dataset] = OrderedDict()


def clear_cache() -> None:
    """Forget every cached dataset (tests; or to free memory)."""
    from ablab.data.sources import clear_cache as clear_sources

    _RAW.clear()
    _DATASETS.clear()
    clear_sources()


def _remember(cache: OrderedDict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def _split(x: np.ndarray, y: np.ndarray) -> Split:
    """Own, writable copies (arrays viewing a file's bytes are read-only)."""
    return Split(torch.from_numpy(np.array(x, copy=True)), torch.from_numpy(np.array(y, copy=True)))


def read_raw(spec: DatasetSpec, found: Found) -> Raw:
    """Read, validate and checksum every file of a located copy (no cache)."""
    files: dict[str, dict[str, str]] = {}
    if isinstance(spec.files, IdxFiles):
        pinned = spec.files.all()
        arrays: dict[str, np.ndarray] = {}
        for role, path in found.files.items():
            hw = (spec.shape[1], spec.shape[2])
            # bounded: at most the registered count of images/labels is ever inflated (gzip bombs)
            images = role.endswith("images")
            buf = read_idx_bytes(path, 3 if images else 1, idx_data_bytes(spec, role))
            files[role] = {"path": str(path), "sha256": check_content(buf, path, pinned[role])}
            arrays[role] = (parse_images(buf, path, hw) if role.endswith("images")
                            else parse_labels(buf, path, len(spec.classes)))
        f = found.files
        check_pair(arrays["train_images"], arrays["train_labels"], f["train_images"], f["train_labels"],
                   spec.n_train)
        check_pair(arrays["test_images"], arrays["test_labels"], f["test_images"], f["test_labels"],
                   spec.n_test)
        return Raw(_split(arrays["train_images"], arrays["train_labels"]),
                   _split(arrays["test_images"], arrays["test_labels"]), files)
    if isinstance(spec.files, CifarFiles):
        c = spec.files
        batches = c.train_batches + c.test_batches
        if found.fmt.endswith("-archive"):
            archive = found.files["archive"]
            is_bin = found.fmt == "cifar-bin-archive"
            digest = check_file(archive, c.binary_archive if is_bin else c.python_archive)
            sub, suffix = ("cifar-10-batches-bin", ".bin") if is_bin else ("cifar-10-batches-py", "")
            blobs = read_archive_members(archive, {f"{sub}/{b}{suffix}": b for b in batches}, max_batch_bytes(c))
            names = {b: f"{archive}:{sub}/{b}{suffix}" for b in batches}
            files["archive"] = {"path": str(archive), "sha256": digest}
        else:
            is_bin = found.fmt == "cifar-bin"
            blobs, names = {}, {}
            for b in batches:
                path = found.files[b]
                blobs[b] = read_file_bytes(path, max_batch_bytes(c))
                names[b] = str(path)
                manifest = manifest_digest(path)
                digest = sha256_bytes(blobs[b])
                if manifest is not None and manifest != digest:
                    raise DataError(f"{path}: SHA-256 mismatch: got {digest}, expected {manifest} (from "
                                    f"{path.parent / MANIFEST}) — delete the folder and run "
                                    f"'ablab data fetch {spec.name}'")
                files[b] = {"path": str(path), "sha256": digest if manifest else "unpinned"}
        parse = parse_cifar_bin if is_bin else parse_cifar_pickle
        parts = {b: parse(blobs[b], names[b], c.records_per_batch, len(spec.classes)) for b in batches}
        xtr = np.concatenate([parts[b][0] for b in c.train_batches])  # (N_train, 3, 32, 32)
        ytr = np.concatenate([parts[b][1] for b in c.train_batches])
        xte = np.concatenate([parts[b][0] for b in c.test_batches])
        yte = np.concatenate([parts[b][1] for b in c.test_batches])
        return Raw(_split(xtr, ytr), _split(xte, yte), files)
    raise DataError(f"'{spec.name}' has no files to read")  # pragma: no cover


def _locate_or_fetch(spec: DatasetSpec, data_dir: str | Path | None, download: bool) -> Found:
    found = locate(spec, data_dir)
    if found is not None:
        return found
    if not download or data_dir is not None:  # --data-dir is a promise: not there -> say so and stop
        raise not_found_error(spec, data_dir)
    from ablab.data.download import fetch

    try:
        found, _ = fetch(spec.name, data_dir)
    except DataError as e:
        raise not_found_error(spec, data_dir, download_error=str(e)) from None
    return found


def load_dataset(name: str, *, data_dir: str | Path | None = None, val_fraction: float = 0.1,
                 split_seed: int = 0, stratified: bool = False, limit: int | None = None,
                 download: bool = True) -> Dataset:
    """Load a registered dataset as whole uint8 tensors, split into train / validation / test.

    Args:
        name: ``fashion-mnist``, ``mnist``, ``cifar10``, ``synthetic`` or ``synthetic:opt=val,...``; or
            your own files: ``idx:DIR``, ``npz:FILE``, ``folder:DIR`` (``ablab.data.sources``; never
            SHA-pinned, validated for shapes, counts and label range).
        data_dir: searched first (as ``data_dir/<name>`` and ``data_dir``); then ``$ABLAB_DATA``, the
            user cache (``~/.cache/ablab/<name>``) and system folders (``/usr/share/datasets/<name>``).
        val_fraction: share of the official training set held out for validation, in [0, 1).
        split_seed: seed of the validation split and of the ``limit`` subsets.
        stratified: keep class proportions in the validation split (and in ``limit`` subsets).
        limit: keep N training samples, ~N*val/(1-val) validation and at most N test samples (the exact
            rules are in ``ablab.data.split``); None keeps everything.
        download: when no copy is found, fetch the official files into the cache (``data_dir/<name>``
            when given) with SHA-256 verification; False raises the not-found error instead.

    Every file is validated (format, counts, label range) and checked against its pinned SHA-256 when
    first read. ``mean``/``std`` are computed on the final training split only. The same arguments
    return the same cached object without rereading files.
    """
    check_split_args(val_fraction, split_seed, limit)
    from ablab.data.source_registry import is_source

    if is_source(name):
        from ablab.data.sources import load_source

        return load_source(name, val_fraction=val_fraction, split_seed=split_seed, stratified=stratified,
                           limit=limit)
    spec = get_spec(name)
    args = (float(val_fraction), int(split_seed), bool(stratified), limit)
    found: Found | None = None
    if spec.files is None:
        opts = synthetic.parse_options(name)
        ds_name = opts.canonical_name()
        identity: tuple[Any, ...] = (ds_name,)
    else:
        ds_name = spec.name
        found = _locate_or_fetch(spec, data_dir, download)
        # the pinned sums are part of the key: re-registering a spec with other sums re-verifies
        identity = (ds_name, repr(spec.files), found.fmt, *found.identity())
    key = (identity, *args)
    if key in _DATASETS:
        _DATASETS.move_to_end(key)
        return _DATASETS[key]

    raw = _RAW.get(identity)
    if raw is None:
        if found is None:
            xtr, ytr, xte, yte = synthetic.generate(opts)
            raw = Raw(_split(xtr, ytr), _split(xte, yte), {})
        else:  # decoded arrays from the on-disk cache (ablab.data.cache), else read, verify and cache them
            hit = decoded_cache.load(spec, found)
            raw = Raw(hit.train, hit.test, hit.files) if hit else read_raw(spec, found)
            if hit is None:
                decoded_cache.store(spec, found, raw.train, raw.test, raw.files)
        _remember(_RAW, identity, raw, RAW_CACHE_SIZE)
    else:
        _RAW.move_to_end(identity)

    classes = (spec.classes if spec.files is not None
               else tuple(f"class{k}" for k in range(synthetic.parse_options(name).classes)))
    info: dict[str, Any] = {
        "source": str(found.dir) if found else "generated in memory",
        "found_via": found.how if found else "generated",
        "format": found.fmt if found else "synthetic",
        "files": raw.files,
    }
    ds = assemble(ds_name, raw.train, raw.test, classes, val_fraction=val_fraction, split_seed=split_seed,
                  stratified=stratified, limit=limit, scale="0-255", info=info)
    _remember(_DATASETS, key, ds, DATASET_CACHE_SIZE)
    return ds


def verify_dataset(name: str, data_dir: str | Path | None = None) -> tuple[Found, list[Check], Raw]:
    """Checksums of every file, then a full read (structure, counts, label range, class balance).

    Returns (where, per-file checks, the data read); raises DataError if a checksum or the structure is
    wrong, or the dataset is not found (no download: verifying must not change anything).
    """
    spec = get_spec(name)
    if spec.files is None:
        raise DataError(f"'{spec.name}' is generated in memory; there are no files to verify")
    found = locate(spec, data_dir)
    if found is None:
        raise not_found_error(spec, data_dir)
    checks = verify_found(spec, found)
    bad = [c for c in checks if not c.ok]
    if bad:
        raise DataError("\n".join(c.detail for c in bad))
    raw = read_raw(spec, found)
    if spec.per_class_train is not None:
        counts = torch.bincount(raw.train.y, minlength=len(spec.classes)).tolist()
        off = {spec.classes[k]: n for k, n in enumerate(counts) if n != spec.per_class_train}
        if off:
            raise DataError(f"{found.dir}: training set class counts {off} differ from the published "
                            f"{spec.per_class_train:,} per class")
    return found, checks, raw


def load_dataset_for(config: Any, given: Any = None) -> Dataset:
    """The dataset a run trains on: ``given`` (an ablab Dataset, or a torch dataset, converted with the
    config's split settings) or else ``config.dataset`` loaded with the config's data_dir / split / limit.
    The one call the trainer, checkpoint evaluation and the study executors share."""
    if given is not None:
        from ablab.data.sources import as_dataset

        return as_dataset(given, config)
    return load_dataset(config.dataset, data_dir=config.data_dir, val_fraction=config.val_fraction,
                        split_seed=config.split_seed, stratified=config.stratified, limit=config.limit)
