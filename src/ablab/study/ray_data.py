"""The data a Ray study ships to its workers: each distinct dataset once, as plain NumPy arrays that
Ray's object store shares zero-copy between the tasks of a node (see ablab.study.ray_executor)."""

from __future__ import annotations

import warnings
from typing import Any

from ablab.train.config import FIELDS, TrainConfig

DATASET_KEYS = ("dataset", "data_dir", "val_fraction", "split_seed", "stratified", "limit")  # load_dataset's


def dataset_key(config: dict[str, Any]) -> tuple[Any, ...]:
    """The ``load_dataset`` arguments of a run's config: runs with equal keys train on the same data."""

    return tuple(config.get(k, FIELDS[k].default) for k in DATASET_KEYS)


def pack_dataset(config: dict[str, Any]) -> dict[str, Any]:
    """Load a config's dataset in the driver, as plain NumPy arrays (which Ray shares zero-copy)."""
    from ablab.data.load import load_dataset_for

    ds = load_dataset_for(TrainConfig.from_dict(config))
    splits = {s: (getattr(ds, s).x.numpy(), getattr(ds, s).y.numpy()) for s in ("train", "val", "test")}
    return {"name": ds.name, "classes": ds.classes, "mean": ds.mean, "std": ds.std, "info": ds.info,
            "scale": ds.scale, "splits": splits}


def unpack_dataset(packed: dict[str, Any]) -> Any:
    """The :class:`ablab.data.Dataset` of :func:`pack_dataset`, viewing the object store's arrays.

    The arrays are read-only (shared memory); the trainer never writes its input tensors (normalizing
    and augmenting make new ones), so torch's warning about non-writable arrays is silenced.
    """

    import torch

    from ablab.data.dataset import Dataset, Split

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        splits = {s: Split(torch.from_numpy(x), torch.from_numpy(y)) for s, (x, y) in packed["splits"].items()}
    return Dataset(packed["name"], splits["train"], splits["val"], splits["test"], tuple(packed["classes"]),
                   tuple(packed["mean"]), tuple(packed["std"]), dict(packed["info"]), packed.get("scale", "0-255"))
