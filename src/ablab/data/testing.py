"""Tiny datasets in the real file formats, for tests (ours and other modules'): write a few dozen
images as IDX or CIFAR-10 binary/python/archive files, register them under a test name with their
true SHA-256 sums, and isolate the search path from the machine's real data folders.

    >>> spec = write_tiny_idx(tmp_path / "tiny-mnist")        # files + a registered DatasetSpec
    >>> ds = load_dataset("tiny-mnist", data_dir=tmp_path)
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from ablab.data import locate as _locate
from ablab.data.catalog import CifarFiles, DataFile, DatasetSpec, IdxFiles, register_dataset
from ablab.data.idx import write_idx

IDX_NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


def tiny_arrays(n: int, shape: tuple[int, int, int], classes: int = 10,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random uint8 images (n, C, H, W) with balanced labels (i mod classes, shuffled)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    y = rng.permutation(np.arange(n) % classes).astype(np.uint8)
    return x, y


def isolate(monkeypatch: Any, tmp_path: Path) -> Path:
    """Point the user cache and the system roots into ``tmp_path`` and drop $ABLAB_DATA / the mirror
    variable, so a test sees only the files it wrote. Returns the fake system root."""
    from ablab.data.load import clear_cache

    system = tmp_path / "system-datasets"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.delenv("ABLAB_DATA", raising=False)
    monkeypatch.delenv("ABLAB_DATA_MIRROR", raising=False)
    monkeypatch.setattr(_locate, "SYSTEM_ROOTS", [system])
    clear_cache()
    return system


def write_tiny_idx(folder: Path, name: str | None = None, n_train: int = 60, n_test: int = 20,
                   hw: tuple[int, int] = (28, 28), classes: int = 10, gz: bool = True,
                   seed: int = 0, register: bool = True) -> DatasetSpec:
    """Write the four IDX files of a tiny MNIST-style dataset into ``folder`` and return (and by default
    register) a spec named ``name`` (default: the folder's name) pinning their content SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    name = name or folder.name
    xtr, ytr = tiny_arrays(n_train, (1, *hw), classes, seed)
    xte, yte = tiny_arrays(n_test, (1, *hw), classes, seed + 1)
    arrays = {"train_images": xtr[:, 0], "train_labels": ytr, "test_images": xte[:, 0], "test_labels": yte}
    files = {}
    for role, stem in IDX_NAMES.items():
        fname = stem + ".gz"
        write_idx(folder / (fname if gz else stem), arrays[role], compress=gz)
        raw = write_idx_bytes(arrays[role])
        files[role] = DataFile(fname, hashlib.sha256(raw).hexdigest())
    spec = DatasetSpec(name=name, title=f"tiny test dataset {name}",
                       classes=tuple(str(k) for k in range(classes)), shape=(1, *hw),
                       n_train=n_train, n_test=n_test, files=IdxFiles(**files),
                       mirrors=("http://127.0.0.1:9/",), per_class_train=n_train // classes
                       if n_train % classes == 0 else None)
    if register:
        register_dataset(spec)
    return spec


def write_idx_bytes(array: np.ndarray) -> bytes:
    a = np.ascontiguousarray(array, dtype=np.uint8)
    return bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + a.tobytes()


def cifar_bin_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    """Records of 1 label byte + 3,072 pixel bytes (R, G, B planes)."""
    rec = np.concatenate([y.astype(np.uint8)[:, None], x.reshape(len(x), -1)], axis=1)  # (N, 3073)
    return rec.tobytes()


def cifar_pickle_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    """A python-version batch as the original files have it (protocol 2, bytes keys)."""
    d = {b"batch_label": b"tiny batch", b"labels": [int(v) for v in y],
         b"data": x.reshape(len(x), -1), b"filenames": [f"img{i}.png".encode() for i in range(len(x))]}
    return pickle.dumps(d, protocol=2)


def tiny_cifar_spec(name: str = "tiny-cifar", per_batch: int = 20, register: bool = True,
                    archive_sha256: str = "0" * 64) -> DatasetSpec:
    """A CIFAR-10 spec with ``per_batch`` records per batch (the archive sum is pinned by the caller)."""
    spec = DatasetSpec(name=name, title=f"tiny test dataset {name}",
                       classes=tuple(str(k) for k in range(10)), shape=(3, 32, 32),
                       n_train=5 * per_batch, n_test=per_batch,
                       files=CifarFiles(binary_archive=DataFile("cifar-10-binary.tar.gz", archive_sha256),
                                        python_archive=DataFile("cifar-10-python.tar.gz", archive_sha256),
                                        records_per_batch=per_batch),
                       mirrors=("http://127.0.0.1:9/",))
    if register:
        register_dataset(spec)
    return spec


def tiny_cifar_batches(per_batch: int = 20, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {b: tiny_arrays(per_batch, (3, 32, 32), 10, seed + i) for i, b in enumerate(CIFAR_BATCHES)}


def write_cifar_dir(folder: Path, batches: dict[str, tuple[np.ndarray, np.ndarray]],
                    fmt: str = "bin") -> Path:
    """``folder/cifar-10-batches-bin/*.bin`` (fmt "bin") or ``folder/cifar-10-batches-py/*`` ("py")."""
    sub = folder / ("cifar-10-batches-bin" if fmt == "bin" else "cifar-10-batches-py")
    sub.mkdir(parents=True, exist_ok=True)
    for b, (x, y) in batches.items():
        if fmt == "bin":
            (sub / f"{b}.bin").write_bytes(cifar_bin_bytes(x, y))
        else:
            (sub / b).write_bytes(cifar_pickle_bytes(x, y))
    return sub


def write_cifar_archive(path: Path, batches: dict[str, tuple[np.ndarray, np.ndarray]],
                        fmt: str = "bin") -> str:
    """A ``.tar.gz`` laid out like the official one; returns its SHA-256."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for b, (x, y) in batches.items():
            if fmt == "bin":
                member, data = f"cifar-10-batches-bin/{b}.bin", cifar_bin_bytes(x, y)
            else:
                member, data = f"cifar-10-batches-py/{b}", cifar_pickle_bytes(x, y)
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()
