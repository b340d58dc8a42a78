"""Datasets as whole in-memory tensors: Fashion-MNIST, MNIST, CIFAR-10 (real files, found or fetched and
verified), a synthetic one generated in memory, and your own (tensors, torch datasets, ``idx:DIR``,
``npz:FILE``, ``folder:DIR`` — see ``sources.py``).

    >>> from ablab.data import load_dataset, normalize, augment
    >>> ds = load_dataset("fashion-mnist", split_seed=0)          # 54,000 / 6,000 / 10,000
    >>> x = normalize(ds.train.x[:64], ds.mean, ds.std)             # float32 (64, 1, 28, 28)
    >>> x = augment(x, torch.Generator().manual_seed(0))            # training batches only
"""

import importlib
from typing import TYPE_CHECKING, Any

from ablab.data.catalog import DatasetSpec, get_spec, list_datasets, register_dataset, unregister_dataset
from ablab.data.errors import DataError

# The rest imports torch: loaded on first use, so the registry (and a study's --dry-run) stays torch-free.
_LAZY = {
    "Dataset": "dataset", "Split": "dataset", "channel_stats": "dataset",
    "download_file": "download", "fetch": "download",
    "clear_cache": "load", "load_dataset": "load", "load_dataset_for": "load", "verify_dataset": "load",
    "from_tensors": "dataset", "from_torch": "dataset",
    "is_source": "source_registry", "source_sizes": "source_registry",
    "search_dirs": "locate", "user_cache_dir": "locate",
    "augment": "transforms", "normalize": "transforms",
}

if TYPE_CHECKING:
    from ablab.data.dataset import Dataset, Split, channel_stats, from_tensors, from_torch
    from ablab.data.download import download_file, fetch
    from ablab.data.load import clear_cache, load_dataset, load_dataset_for, verify_dataset
    from ablab.data.locate import search_dirs, user_cache_dir
    from ablab.data.source_registry import is_source, source_sizes
    from ablab.data.transforms import augment, normalize


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"ablab.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ablab.data' has no attribute {name!r}")


__all__ = [
    "DataError", "Dataset", "DatasetSpec", "Split", "augment", "channel_stats", "clear_cache",
    "download_file", "fetch", "from_tensors", "from_torch", "get_spec", "is_source", "list_datasets", "source_sizes",
    "load_dataset", "load_dataset_for", "normalize",
    "register_dataset", "search_dirs", "unregister_dataset", "user_cache_dir", "verify_dataset",
]
