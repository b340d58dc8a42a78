"""The data-source registry: your own files as a dataset, by prefix (``idx:DIR``, ``npz:FILE``, ``folder:DIR``,
and yours). One table maps a prefix to its reader, the files it reads and its sizes from headers alone;
``load_dataset``, the study's validation, its cost estimate (``--dry-run``) and ``ablab data info`` all read
it, so a new kind of file is one :func:`register_source` call::

    from ablab.data.source_registry import register_source

    def read_csv(path):                      # -> (x_train, y_train, (x_test, y_test) | None, classes | None, info)
        rows = numpy.loadtxt(path, delimiter=",")
        return rows[:, 1:].reshape(-1, 1, 1, rows.shape[1] - 1), rows[:, 0].astype("int64"), None, None, {}

    register_source("csv", read=read_csv, files=lambda p: [p],
                    sizes=lambda p: (sum(1 for _ in open(p)), 0, (1, 1, ...)))
    load_dataset("csv:mydata.csv")           # validated, split, normalized like every source

``sizes`` must read headers only (no pixels): it sizes a study before anything trains. A source name is
``prefix:PATH[?scale=...&test_fraction=...]``; without a test split, ``test_fraction`` of the training
samples (default 0.2) is held out as the test split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ablab.data.errors import DataError
from ablab.data.files import (
    folder_sizes,
    folder_source_files,
    idx_sizes,
    idx_source_files,
    npz_sizes,
    npz_source_files,
    read_idx_dir,
    read_npz,
)
from ablab.data.folder import read_folder
from ablab.data.split import holdout_size
from ablab.registry import Registry

Sizes = tuple[int, int, tuple[int, ...]]  # (training samples, test samples or 0, sample shape)
OPTIONS = ("scale", "test_fraction")


@dataclass(frozen=True)
class SourceKind:
    prefix: str
    read: Callable[[Path], tuple[Any, Any, Any, Any, dict[str, Any]]]  # the arrays, for from_arrays
    files: Callable[[Path], list[Path]]  # the files it reads (the cache key); DataError when missing
    sizes: Callable[[Path], Sizes]  # from headers only, for a study's cost estimate
    help: str = ""


SOURCES: Registry[SourceKind] = Registry("data source", DataError, normalize=str.lower)


def register_source(prefix: str, *, read: Callable[[Path], Any], files: Callable[[Path], list[Path]],
                    sizes: Callable[[Path], Sizes], help: str = "") -> SourceKind:
    """Add the data source ``prefix:PATH`` (see the module docstring)."""
    return SOURCES.register(prefix.lower(), SourceKind(prefix.lower(), read, files, sizes, help))


def list_sources() -> list[str]:
    return SOURCES.list()


def is_source(name: str) -> bool:
    """True for ``prefix:...`` dataset names of a registered source."""
    head, sep, _ = str(name).partition(":")
    return bool(sep) and head.strip().lower() in SOURCES


def parse_source(name: str) -> tuple[str, Path, dict[str, str]]:
    """``kind:PATH[?key=value&...]`` -> (kind, path, options). Options: ``scale``, ``test_fraction``."""
    head, _, rest = str(name).partition(":")
    kind = head.strip().lower()
    SOURCES.get(kind, shown=f"{kind}:")
    path_text, _, query = rest.partition("?")
    if not path_text.strip():
        raise DataError(f"dataset '{name}': expected a path after '{kind}:', e.g. {kind}:mydata/")
    opts: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, eq, val = item.partition("=")
        if not eq or key not in OPTIONS:
            raise DataError(f"dataset '{name}': unknown option '{item}' (known: scale=..., test_fraction=...)")
        opts[key] = val
    if "test_fraction" in opts:
        try:
            tf = float(opts["test_fraction"])
        except ValueError:
            tf = float("nan")
        if not 0 < tf < 1:
            raise DataError(f"dataset '{name}': test_fraction must be a fraction in (0, 1)")
    return kind, Path(path_text.strip()).expanduser(), opts


def source_files(kind: str, path: Path) -> list[Path]:
    """The files a source reads (for the cache key); DataError when the path is missing or wrong."""
    return SOURCES.get(kind).files(path)


def read_source(kind: str, path: Path) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    return SOURCES.get(kind).read(path)


def source_sizes(name: str) -> Sizes:
    """(training samples, test samples, sample shape) of a file source as ``load_source`` will see them —
    from headers only: no pixels read, no torch. For the cost estimate of a study's dry run."""
    kind, path, opts = parse_source(name)
    source_files(kind, path)
    n_train, n_test, shape = SOURCES.get(kind).sizes(path)
    if n_test == 0:
        n_test = holdout_size(n_train, float(opts.get("test_fraction", 0.2)))
        n_train -= n_test
    return n_train, n_test, shape


register_source("idx", read=read_idx_dir, files=idx_source_files, sizes=idx_sizes,
                help="a folder with the four IDX files (train/t10k images and labels, plain or .gz)")
register_source("npz", read=read_npz, files=npz_source_files, sizes=npz_sizes,
                help="an .npz file with x_train, y_train (and optionally x_test, y_test, classes)")
register_source("folder", read=read_folder, files=folder_source_files, sizes=folder_sizes,
                help="a folder of class subfolders of PNG/JPEG images (optionally train/ and test/)")
