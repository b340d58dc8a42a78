"""Readers of the user's own files: ``idx:DIR`` (any IDX quartet) and ``npz:FILE`` — validated, never
SHA-pinned. Each returns ``(x_train, y_train, (x_test, y_test) | None, classes | None, info)`` as
NumPy arrays for ``ablab.data.dataset.from_arrays``. ``folder:DIR`` is in ``folder.py``.

IDX file names: the training images are the one file whose name contains ``train`` and ``images`` (or
``idx3``), the labels ``train`` and ``labels`` (or ``idx1``); the test files ``t10k`` or ``test``
instead of ``train``; ``.gz`` or plain. So MNIST's, Fashion-MNIST's, EMNIST's and KMNIST's own file
names all work.
"""

from __future__ import annotations

import gzip
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ablab.data.budget import MEMORY_SHARE, check_fits, memory_budget
from ablab.data.errors import DataError
from ablab.data.folder import GREY_MODES, image_files
from ablab.data.idx import check_pair, parse_idx, read_idx_bytes

ROLES = {"train_images": (("train",), ("images", "idx3")), "train_labels": (("train",), ("labels", "idx1")),
         "test_images": (("t10k", "test"), ("images", "idx3")), "test_labels": (("t10k", "test"), ("labels", "idx1"))}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def channels_last(shape: tuple[int, ...]) -> bool:
    """(N, H, W, C) with C <= 4 and H > 4: the NumPy/PIL/Keras layout, transposed to (N, C, H, W)."""
    return len(shape) == 4 and shape[1] > 4 and shape[3] <= 4


def _exists(kind: str, path: Path, want_dir: bool) -> None:
    if not path.exists():
        raise DataError(f"{kind}:{path}: no such {'folder' if want_dir else 'file'}")
    if want_dir and not path.is_dir():
        what = "IDX files" if kind == "idx" else "class folders"
        raise DataError(f"{kind}:{path}: not a folder (expected a folder of {what})")
    if not want_dir and not path.is_file():
        raise DataError(f"{kind}:{path}: not a file (expected an .npz file with {', '.join(NPZ_KEYS)})")


def idx_files(folder: Path) -> dict[str, Path]:
    """role -> path of the IDX quartet in ``folder``; DataError naming what is missing or ambiguous."""
    names = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    out: dict[str, Path] = {}
    problems = []
    for role, (splits, kinds) in ROLES.items():
        hits = [p for p in names if any(s in p.name.lower() for s in splits)
                and any(k in p.name.lower() for k in kinds)]
        if role.startswith("train"):
            hits = [p for p in hits if "t10k" not in p.name.lower() and "test" not in p.name.lower()]
        if len(hits) == 1:
            out[role] = hits[0]
        elif not hits:
            problems.append(f"no {role.replace('_', ' ')} file")
        else:
            problems.append(f"{len(hits)} candidates for {role.replace('_', ' ')}: "
                            f"{', '.join(p.name for p in hits)}")
    if problems:
        found = ", ".join(p.name for p in names) or "nothing"
        raise DataError(f"idx:{folder}: {'; '.join(problems)} (expected four IDX files such as "
                        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                        f"t10k-labels-idx1-ubyte, plain or .gz; found: {found})")
    return out


def idx_source_files(path: Path) -> list[Path]:
    """The four files of an ``idx:`` source; DataError when the folder or a file is missing."""
    _exists("idx", path, True)
    return list(idx_files(path).values())


def npz_source_files(path: Path) -> list[Path]:
    _exists("npz", path, False)
    return [path]


def folder_source_files(path: Path) -> list[Path]:
    _exists("folder", path, True)
    return [p for files in image_files(path).values() for _, p in files]


def read_idx_dir(folder: Path) -> tuple[Any, Any, Any, None, dict[str, Any]]:
    """Any IDX quartet: images (N, H, W) uint8, labels (N,) uint8; counts checked pairwise, label range
    checked against the class count (largest label + 1) in ``from_arrays``."""

    files = idx_files(folder)
    arrays = {}
    budget = memory_budget()  # each file's header is checked against it before its data is read
    over = f"allowed ({MEMORY_SHARE:.0%} of the available memory)"
    for role, path in files.items():
        ndim = 3 if role.endswith("images") else 1
        arrays[role] = parse_idx(read_idx_bytes(path, ndim, budget, over), path, ndim)
    check_pair(arrays["train_images"], arrays["train_labels"], files["train_images"], files["train_labels"])
    check_pair(arrays["test_images"], arrays["test_labels"], files["test_images"], files["test_labels"])
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(f"idx:{folder}: training images are {'x'.join(map(str, arrays['train_images'].shape[1:]))}"
                        f" but test images are {'x'.join(map(str, arrays['test_images'].shape[1:]))}")
    info = {"files": {role: {"path": str(p), "sha256": "unpinned (your own files)"} for role, p in files.items()}}
    return (arrays["train_images"], arrays["train_labels"].astype(np.int64),
            (arrays["test_images"], arrays["test_labels"].astype(np.int64)), None, info)


def read_npz(path: Path) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    """``x_train``, ``y_train`` and (optionally, both or neither) ``x_test``, ``y_test``; an optional
    ``classes`` array of names. Loaded without pickle (object arrays are refused)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            missing = [k for k in ("x_train", "y_train") if k not in keys]
            if missing:
                raise DataError(f"npz:{path}: missing {', '.join(missing)} (has: "
                                f"{', '.join(sorted(keys)) or 'nothing'}; expected {', '.join(NPZ_KEYS)})")
            if ("x_test" in keys) != ("y_test" in keys):
                raise DataError(f"npz:{path}: has {'x_test' if 'x_test' in keys else 'y_test'} without "
                                f"{'y_test' if 'x_test' in keys else 'x_test'}")
            _check_npz_size(path)
            arrays = {k: z[k] for k in (*NPZ_KEYS, "classes") if k in keys}
    except DataError:
        raise
    except ValueError as e:  # object arrays need pickle
        raise DataError(f"npz:{path}: cannot read without pickle ({e}); store numbers, not objects") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"npz:{path}: not a readable .npz file ({e})") from None
    test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    classes = [str(c) for c in arrays["classes"].tolist()] if "classes" in arrays else None
    info = {"files": {"npz": {"path": str(path), "sha256": "unpinned (your own file)"}}, "keys": sorted(arrays)}
    return arrays["x_train"], arrays["y_train"], test, classes, info


def _npy_header(zf: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    with zf.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
        return tuple(shape), dtype


def _check_npz_size(path: Path) -> None:
    """The arrays' sizes from their .npy headers, against the memory budget, before any is read (a
    compressed .npz of zeros can inflate to far more than its file size)."""

    with zipfile.ZipFile(path) as zf:
        need = 0
        for name in zf.namelist():
            if name.removesuffix(".npy") in (*NPZ_KEYS, "classes"):
                shape, dtype = _npy_header(zf, name.removesuffix(".npy"))
                need += math.prod(shape) * dtype.itemsize
    check_fits(need, f"npz:{path}: its arrays (by their headers)", "use a smaller file")


def _sample_shape(shape: tuple[int, ...], where: str) -> tuple[int, int, int]:
    if len(shape) == 3:
        return (1, shape[1], shape[2])
    if len(shape) == 4:
        return (shape[3], shape[1], shape[2]) if channels_last(shape) else (shape[1], shape[2], shape[3])
    raise DataError(f"{where}: expected images of shape (N, C, H, W) or (N, H, W), got {shape}")


def idx_sizes(path: Path) -> tuple[int, int, tuple[int, int, int]]:
    """(training samples, test samples, (C, H, W)) of an ``idx:`` folder, from its headers."""
    dims = {}
    for role, p in idx_files(path).items():
        with open(p, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        with (gzip.open(p) if gz else open(p, "rb")) as f:
            head = f.read(16 if role.endswith("images") else 8)
        dims[role] = [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range((len(head) - 4) // 4)]
    return dims["train_images"][0], dims["test_images"][0], (1, dims["train_images"][1], dims["train_images"][2])


def npz_sizes(path: Path) -> tuple[int, int, tuple[int, int, int]]:
    """The same for an ``npz:`` file, from its .npy headers (0 test samples when it has none)."""
    with zipfile.ZipFile(path) as zf:
        names = {n.removesuffix(".npy") for n in zf.namelist()}
        x_shape = _npy_header(zf, "x_train")[0]
        n_test = _npy_header(zf, "x_test")[0][0] if "x_test" in names else 0
        return x_shape[0], n_test, _sample_shape(x_shape, f"npz:{path}")


def folder_sizes(path: Path) -> tuple[int, int, tuple[int, int, int]]:
    """The same for a ``folder:`` of images, from the first image's header."""
    from PIL import Image

    splits = image_files(path)
    with Image.open(splits["train"][0][1]) as im:
        shape = (1 if im.mode in GREY_MODES else 3, im.size[1], im.size[0])
    return len(splits["train"]), len(splits.get("test", [])), shape
