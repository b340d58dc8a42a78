"""IDX reader (the MNIST / Fashion-MNIST file format), plain or gzip-compressed, with validation.

Format (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"): a 4-byte magic ``00 00 TT DD`` where
``TT`` is the element type (``08`` = unsigned byte) and ``DD`` the number of dimensions; then ``DD``
big-endian uint32 sizes; then the elements, row-major. Images are ``idx3`` (N, rows, cols), labels
``idx1`` (N,). We read the whole file into memory and view it with ``numpy.frombuffer`` — one
decompression and one copy, no per-sample Python — and check every header field against the byte count,
so a truncated or padded file is an error that names the file, never a silently shifted image.

Bounded by construction: :func:`read_idx_bytes` decompresses as a stream, reads the header first, refuses
a header that declares more than the caller's cap (the dataset's known size), and then reads at most the
declared bytes plus a small probe — so a gzip bomb (a small file inflating to gigabytes) costs at most
the dataset's own size in memory, and is an error at the first byte beyond what the header declares.
"""

from __future__ import annotations

import contextlib
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ablab.data.errors import DataError

IDX_UBYTE = 0x08  # element type code of unsigned bytes, the only one MNIST-style files use
_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}


CHUNK = 1 << 24  # bytes per streamed read
ONE_READ = 1 << 26  # reads up to 64 MiB (a whole Fashion-MNIST or CIFAR batch file) are done in one call
TRAIL_PROBE = 1 << 16  # bytes read past the declared end to report how much is trailing


@contextlib.contextmanager
def open_content(path: str | Path, label: str | Path | None = None) -> Iterator[BinaryIO]:
    """The file's content as a stream, decompressed when it is gzip (by magic ``1f 8b``, not by name);
    gzip and I/O errors while reading become DataErrors naming ``label`` (default: the path)."""
    p = Path(path)
    label = label or p
    try:
        f = open(p, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror or e})") from None
    try:
        magic = f.read(2)
        f.seek(0)
        if magic != b"\x1f\x8b":
            if p.suffix == ".gz":
                raise DataError(f"{label}: named .gz but is not a gzip file (starts with "
                                f"{f.read(4).hex(' ') or 'nothing'})")
            yield f
        else:
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                yield g  # type: ignore[misc]
    except EOFError:
        raise DataError(f"{label}: truncated gzip file ({p.stat().st_size:,} bytes; the compressed stream ends "
                        "early) — an interrupted copy or download; fetch it again") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{label}: damaged gzip file ({e}); fetch it again") from None
    except OSError as e:
        raise DataError(f"{label}: cannot read ({e.strerror or e})") from None
    finally:
        f.close()


def read_upto(stream: BinaryIO, n: int) -> bytes:
    """At most ``n`` bytes of ``stream``. Up to ONE_READ bytes in one read (fastest: one buffer); more in
    chunks, so memory grows with the data that actually arrives, never with a ``n`` a header made up."""
    if n <= ONE_READ:
        return stream.read(n)
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(min(CHUNK, n - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def read_file_bytes(path: str | Path, max_bytes: int | None = None) -> bytes:
    """The file's content, decompressed when it is gzip; with ``max_bytes``, a DataError as soon as the
    content goes past that many bytes (nothing beyond it is inflated)."""
    with open_content(path) as f:
        if max_bytes is None:
            return f.read()
        data = read_upto(f, max_bytes + 1)
    if len(data) > max_bytes:
        raise DataError(f"{path}: content is larger than the {max_bytes:,} bytes expected; not read further")
    return data


def read_idx_bytes(path: str | Path, ndim: int, max_data: int | None = None,
                   over: str = "this dataset holds") -> bytes:
    """An IDX file's header and data, read as a bounded stream: the header's dimensions decide how much
    is read (at most ``max_data`` data bytes when given; ``over`` says where that cap comes from);
    :func:`parse_idx` then checks the result."""
    header = 4 + 4 * ndim
    with open_content(path) as f:
        head = read_upto(f, header)
        if len(head) < header or head[:4] != bytes([0, 0, IDX_UBYTE, ndim]):
            return head  # parse_idx names what is wrong with the magic / header
        dims = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
        need = 1
        for d in dims:
            need *= d
        dim_text = " x ".join(f"{d:,}" for d in dims)
        if max_data is not None and need > max_data:
            raise DataError(f"{path}: the header declares {dim_text} = {need:,} data bytes, more than the "
                            f"{max_data:,} {over}; refusing to read it")
        data = read_upto(f, need + TRAIL_PROBE)
    if len(data) == need + TRAIL_PROBE:
        raise DataError(f"{path}: more than {TRAIL_PROBE:,} trailing bytes after the {dim_text} = {need:,} data "
                        "bytes the header declares (stopped reading there)")
    return head + data


def gunzip_if_needed(raw: bytes, label: str | Path, named_gz: bool = False) -> bytes:
    """``raw`` decompressed if it starts with the gzip magic; errors name ``label`` (a path or URL)."""
    if raw[:2] != b"\x1f\x8b":
        if named_gz:
            raise DataError(f"{label}: named .gz but is not a gzip file (starts with {raw[:4].hex(' ') or 'nothing'})")
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(f"{label}: truncated gzip file ({len(raw):,} bytes; the compressed stream ends early) "
                        "— an interrupted copy or download; fetch it again") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataError(f"{label}: damaged gzip file ({e}); fetch it again") from None


def parse_idx(buf: bytes, path: str | Path, ndim: int) -> np.ndarray:
    """View an uncompressed IDX buffer of unsigned bytes with ``ndim`` dimensions, checking the magic
    number, the header length and that the data is exactly as long as the dimensions say."""
    what = f"idx{ndim} ({'images' if ndim == 3 else 'labels' if ndim == 1 else f'{ndim}-d'})"
    if len(buf) < 4:
        raise DataError(f"{path}: not an IDX file: {len(buf)} bytes, too short for the 4-byte magic number")
    magic = int.from_bytes(buf[:4], "big")
    expected = (IDX_UBYTE << 8) | ndim
    if buf[0] != 0 or buf[1] != 0 or magic != expected:
        got_type = _TYPE_NAMES.get(buf[2], f"unknown type 0x{buf[2]:02x}")
        detail = (f"{got_type} with {buf[3]} dimension(s)" if buf[0] == 0 and buf[1] == 0
                  else "not an IDX header")
        raise DataError(f"{path}: wrong magic number 0x{magic:08x} ({detail}); expected 0x{expected:08x} "
                        f"for {what} of uint8")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(f"{path}: truncated IDX header: {len(buf)} bytes, the {ndim} dimension sizes need "
                        f"{header}")
    dims = tuple(int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    need = int(np.prod(dims, dtype=np.int64))
    have = len(buf) - header
    dim_text = " x ".join(f"{d:,}" for d in dims)
    if have < need:
        raise DataError(f"{path}: truncated: the header says {dim_text} = {need:,} data bytes, the file has "
                        f"{have:,} ({need - have:,} missing)")
    if have > need:
        raise DataError(f"{path}: {have - need:,} trailing bytes after the {dim_text} = {need:,} data bytes "
                        "the header declares")
    return np.frombuffer(buf, dtype=np.uint8, count=need, offset=header).reshape(dims)


def parse_images(buf: bytes, path: str | Path, image_hw: tuple[int, int] | None = None) -> np.ndarray:
    """IDX3 images as a uint8 array (N, 1, H, W); ``image_hw`` if given must match the header."""
    arr = parse_idx(buf, path, 3)  # (N, H, W)
    if image_hw is not None and arr.shape[1:] != tuple(image_hw):
        raise DataError(f"{path}: images are {arr.shape[1]}x{arr.shape[2]}, expected "
                        f"{image_hw[0]}x{image_hw[1]}")
    return arr.reshape(arr.shape[0], 1, arr.shape[1], arr.shape[2])  # (N, 1, H, W)


def parse_labels(buf: bytes, path: str | Path, num_classes: int) -> np.ndarray:
    """IDX1 labels as an int64 array (N,), every label checked to lie in 0..num_classes-1."""
    arr = parse_idx(buf, path, 1)  # (N,)
    check_labels(arr, path, num_classes)
    return arr.astype(np.int64)


def check_labels(labels: np.ndarray, path: str | Path, num_classes: int) -> None:
    """Raise naming the first out-of-range label (uint8 labels cannot be negative)."""
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{path}: label {int(labels[i])} at index {i:,} is outside 0..{num_classes - 1} "
                        f"({bad.size:,} label(s) out of range)")


def check_pair(images: np.ndarray, labels: np.ndarray, images_path: str | Path,
               labels_path: str | Path, expected_count: int | None = None) -> None:
    """Images and labels must agree in count (and match the published count when given)."""
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"count mismatch: {images_path} has {images.shape[0]:,} images but {labels_path} has "
                        f"{labels.shape[0]:,} labels")
    if expected_count is not None and images.shape[0] != expected_count:
        raise DataError(f"{images_path}: {images.shape[0]:,} images, expected {expected_count:,}")


def read_idx_pair(images_path: str | Path, labels_path: str | Path, num_classes: int,
                  image_hw: tuple[int, int] | None = None,
                  expected_count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one split: (uint8 images (N, 1, H, W), int64 labels (N,))."""
    x = parse_images(read_idx_bytes(images_path, 3, _cap(expected_count, image_hw)), images_path, image_hw)
    y = parse_labels(read_idx_bytes(labels_path, 1, expected_count), labels_path, num_classes)
    check_pair(x, y, images_path, labels_path, expected_count)
    return x, y


def _cap(count: int | None, hw: tuple[int, int] | None) -> int | None:
    return None if count is None or hw is None else count * hw[0] * hw[1]


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write a uint8 array as IDX (gzip when ``compress`` or the name ends in .gz). Used by tests and by
    anyone exporting a subset in the standard format."""
    p = Path(path)
    a = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, IDX_UBYTE, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    data = header + a.tobytes()
    if compress or (compress is None and p.suffix == ".gz"):
        data = gzip.compress(data, mtime=0)
    p.write_bytes(data)
    return p
