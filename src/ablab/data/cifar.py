"""CIFAR-10 readers: the binary version (preferred: no pickle at all) and the python version through a
restricted unpickler, plus reading either straight out of the published ``.tar.gz``.

Binary format (https://www.cs.toronto.edu/~kriz/cifar.html): each batch file is 10,000 records of
3,073 bytes — 1 label byte, then 3,072 pixel bytes: the 1,024 red values of the 32x32 image row-major,
then green, then blue. That is already (C, H, W) order, so a batch is one ``frombuffer`` + reshape.

The python version is a pickle. Unpickling runs whatever callables the file names (``os.system`` is one
opcode away), so :func:`safe_unpickle` resolves only the few numpy names an array needs and refuses
every other global *before* anything is called.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from ablab.data.errors import DataError
from ablab.data.idx import check_labels

RECORD_BYTES = 1 + 3 * 32 * 32  # label byte + R, G, B planes of 32x32
PICKLE_OVERHEAD = 1 << 20  # bytes a python-version batch may add to its records (dict, keys, file names)
BIN_DIR = "cifar-10-batches-bin"
PY_DIR = "cifar-10-batches-py"


def parse_cifar_bin(buf: bytes, path: str | Path, expected_records: int | None = 10_000,
                    num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch -> (uint8 images (N, 3, 32, 32), int64 labels (N,)), validated."""
    if len(buf) % RECORD_BYTES:
        whole = len(buf) // RECORD_BYTES
        raise DataError(f"{path}: {len(buf):,} bytes is not a whole number of {RECORD_BYTES:,}-byte records "
                        f"(1 label + 3,072 pixels): {whole:,} records and {len(buf) - whole * RECORD_BYTES:,} "
                        "bytes left over — truncated or padded")
    n = len(buf) // RECORD_BYTES
    if expected_records is not None and n != expected_records:
        raise DataError(f"{path}: {n:,} records, expected {expected_records:,}")
    rec = np.frombuffer(buf, dtype=np.uint8).reshape(n, RECORD_BYTES)  # (N, 3073)
    labels = rec[:, 0]
    check_labels(labels, path, num_classes)
    images = rec[:, 1:].reshape(n, 3, 32, 32).copy()  # (N, 3, 32, 32): R, G, B planes, row-major
    return images, labels.astype(np.int64)


# ---------------------------------------------------------------- restricted unpickling

def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The only globals a pickled numpy array needs, under both the numpy 1 and numpy 2 module names."""
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {}
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        if hasattr(numeric, "_frombuffer"):
            allowed[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    allowed[("_codecs", "encode")] = _latin1_encode
    return allowed


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What Python 3 writes for ``bytes`` at pickle protocol <= 2 (``_codecs.encode(s, 'latin1')``),
    restricted to exactly that: a str and the latin-1 codec, no codec lookup by an arbitrary name."""
    if not isinstance(text, str) or encoding.lower().replace("-", "").replace("_", "") not in ("latin1",
                                                                                               "iso88591"):
        raise pickle.UnpicklingError(f"_codecs.encode allowed only as latin-1 of a str, got {encoding!r}")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    """Plain data (dict, list, tuple, str, bytes, int, float, bool, None) and numpy arrays; nothing else.

    Python's ``pickle`` builds plain data with opcodes that call no code; everything else — classes,
    functions, ``__reduce__`` tricks — goes through ``find_class``, which we close except for the numpy
    array reconstruction helpers (those only allocate arrays; their arguments can themselves only be
    plain data or these same helpers).
    """

    def __init__(self, file: io.BytesIO, path: str | Path) -> None:
        super().__init__(file, encoding="bytes")
        self._path = path
        self._allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        raise DataError(f"{self._path}: refused to unpickle: the file asks for '{module}.{name}'; only plain "
                        "data and numpy arrays are allowed (a dataset file must never run code). Use the "
                        "binary CIFAR-10 version instead: ablab data fetch cifar10")

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self._path}: refused to unpickle: persistent ids are not plain data")


def safe_unpickle(buf: bytes, path: str | Path) -> Any:
    """Unpickle ``buf`` allowing only plain data and numpy arrays; DataError for anything else."""
    try:
        return _RestrictedUnpickler(io.BytesIO(buf), path).load()
    except DataError:
        raise
    except Exception as e:  # any malformed stream: UnpicklingError, EOFError, ValueError, TypeError...
        raise DataError(f"{path}: not a readable CIFAR-10 python batch ({type(e).__name__}: {e})") from None


def parse_cifar_pickle(buf: bytes, path: str | Path, expected_records: int | None = 10_000,
                       num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One python-version batch (a dict with ``data`` (N, 3072) uint8 and ``labels``) -> (x, y)."""
    obj = safe_unpickle(buf, path)
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dict with 'data' and 'labels', got {type(obj).__name__}")
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    if "data" not in d or "labels" not in d:
        raise DataError(f"{path}: batch dict lacks 'data'/'labels' (keys: {sorted(map(str, d))})")
    data, labels = d["data"], d["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' must be a uint8 array (N, 3072), got {desc}")
    y = _labels(labels, path, num_classes)
    if y.shape[0] != data.shape[0]:
        raise DataError(f"count mismatch in {path}: {data.shape[0]:,} images but {y.shape[0]:,} labels")
    if expected_records is not None and y.shape[0] != expected_records:
        raise DataError(f"{path}: {y.shape[0]:,} records, expected {expected_records:,}")
    return data.reshape(-1, 3, 32, 32).copy(), y  # (N, 3, 32, 32)


def _labels(labels: Any, path: str | Path, num_classes: int) -> np.ndarray:
    """A python-version ``labels`` entry as int64, each an integer (booleans are not labels) in
    0..num_classes-1 — checked before conversion, so 2**70 is an error, not an OverflowError."""
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DataError(f"{path}: 'labels' must be a 1-d integer array, got {labels.dtype} {labels.shape}")
        values: list[Any] = labels.tolist()
    elif isinstance(labels, list):
        values = labels
    else:
        raise DataError(f"{path}: 'labels' must be a list of integers, got {type(labels).__name__}")
    for i, v in enumerate(values):
        if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
            raise DataError(f"{path}: label at index {i:,} is {type(v).__name__} {str(v)[:40]}, expected an "
                            "integer class index")
        if not 0 <= int(v) < num_classes:
            text = str(int(v)) if abs(int(v)) < 10**30 else f"{str(int(v))[:20]}... ({len(str(int(v)))} digits)"
            raise DataError(f"{path}: label {text} at index {i:,} is outside 0..{num_classes - 1}")
    return np.asarray(values, dtype=np.int64)


def max_batch_bytes(files: Any) -> int:
    """The most bytes one batch file may have (records × 3,073, plus pickle overhead): the cap on what is
    read from a batch file or archive member."""
    return int(files.records_per_batch) * RECORD_BYTES + PICKLE_OVERHEAD


# ---------------------------------------------------------------- archives

def read_archive_members(archive: str | Path, wanted: dict[str, str],
                         max_member_bytes: int | None = None) -> dict[str, bytes]:
    """Read the members named in ``wanted`` (member path inside the tar -> key) from a ``.tar.gz``
    without extracting anything to disk; only regular files are accepted (no links, no devices), and a
    member whose header declares more than ``max_member_bytes`` is refused before it is inflated."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                key = wanted.get(member.name.lstrip("./"))
                if key is None:
                    continue
                if not member.isfile():
                    raise DataError(f"{archive}: member {member.name} is not a regular file")
                if max_member_bytes is not None and member.size > max_member_bytes:
                    raise DataError(f"{archive}: member {member.name} declares {member.size:,} bytes, more than "
                                    f"the {max_member_bytes:,} a batch holds; refusing to inflate it")
                f = tar.extractfile(member)
                assert f is not None  # regular file
                out[key] = f.read()
    except DataError:
        raise
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{archive}: damaged archive ({e}); fetch it again") from None
    missing = [m for m, k in wanted.items() if k not in out]
    if missing:
        raise DataError(f"{archive}: missing member(s) {', '.join(missing)}")
    return out
