"""Readers of the user's own files: ``idx:DIR`` (any IDX quartet) and ``npz:FILE`` — validated, never
SHA-pinned. Each returns ``(x_train, y_train, (x_test, y_test) | None, classes | None, info)`` as
NumPy arrays for ``ablab.data.sources.from_arrays``. ``folder:DIR`` is in ``folder.py``.

IDX file names: the training images are the one file whose name contains ``train`` and ``images`` (or
``idx3``), the labels ``train`` and ``labels`` (or ``idx1``); the test files ``t10k`` or ``test``
instead of ``train``; ``.gz`` or plain. So MNIST's, Fashion-MNIST's, EMNIST's and KMNIST's own file
names all work.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ablab.data.errors import DataError
from ablab.data.idx import check_pair, parse_idx, read_file_bytes

ROLES = {"train_images": (("train",), ("images", "idx3")), "train_labels": (("train",), ("labels", "idx1")),
         "test_images": (("t10k", "test"), ("images", "idx3")), "test_labels": (("t10k", "test"), ("labels", "idx1"))}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


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


def source_files(kind: str, path: Path) -> list[Path]:
    """The files a source reads (for the cache key); DataError when the path is missing or wrong."""
    if kind == "idx":
        _exists(kind, path, True)
        return list(idx_files(path).values())
    if kind == "npz":
        _exists(kind, path, False)
        return [path]
    from ablab.data.folder import image_files

    _exists(kind, path, True)
    return [p for files in image_files(path).values() for _, p in files]


def read_idx_dir(folder: Path) -> tuple[Any, Any, Any, None, dict[str, Any]]:
    """Any IDX quartet: images (N, H, W) uint8, labels (N,) uint8; counts checked pairwise, label range
    checked against the class count (largest label + 1) in ``from_arrays``."""
    files = idx_files(folder)
    arrays = {}
    for role, path in files.items():
        ndim = 3 if role.endswith("images") else 1
        arrays[role] = parse_idx(read_file_bytes(path), path, ndim)
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
