"""IDX reader on small files in the real format (written here), plus every corruption we detect."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from ablab.data import DataError
from ablab.data.idx import read_file_bytes, read_idx_pair, write_idx
from ablab.data.testing import tiny_arrays, write_idx_bytes


@pytest.fixture
def pair(tmp_path):
    x, y = tiny_arrays(12, (1, 28, 28), 10)
    imgs = write_idx(tmp_path / "train-images-idx3-ubyte.gz", x[:, 0])
    labs = write_idx(tmp_path / "train-labels-idx1-ubyte", y)
    return x, y, imgs, labs


def test_reads_gz_and_plain_exactly(pair):
    x, y, imgs, labs = pair
    xr, yr = read_idx_pair(imgs, labs, num_classes=10, image_hw=(28, 28), expected_count=12)
    assert xr.shape == (12, 1, 28, 28) and xr.dtype == np.uint8
    assert yr.dtype == np.int64
    np.testing.assert_array_equal(xr, x)
    np.testing.assert_array_equal(yr, y)


def test_header_is_big_endian_idx(tmp_path):
    """Byte-level check of the format itself: 00 00 08 03, then N, rows, cols as big-endian uint32."""
    buf = write_idx_bytes(np.zeros((2, 3, 4), np.uint8))
    assert buf[:16].hex() == "00000803" "00000002" "00000003" "00000004"
    assert len(buf) == 16 + 24


def _corrupt(path, data: bytes):
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_wrong_magic_names_file_and_expected(pair):
    _, _, imgs, labs = pair
    raw = bytearray(read_file_bytes(imgs))
    raw[3] = 1  # claims idx1
    _corrupt(imgs, bytes(raw))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: wrong magic number 0x00000801 "
                                         r"\(uint8 with 1 dimension\(s\)\); expected 0x00000803"):
        read_idx_pair(imgs, labs, 10)


def test_not_idx_at_all(pair):
    _, _, imgs, labs = pair
    _corrupt(labs, b"PK\x03\x04 zip file, not idx")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: wrong magic number 0x504b0304 "
                                         r"\(not an IDX header\)"):
        read_idx_pair(imgs, labs, 10)


def test_truncated_data(pair):
    _, _, imgs, labs = pair
    raw = read_file_bytes(imgs)
    _corrupt(imgs, raw[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: truncated: the header says 12 x 28 x 28 "
                                         r"= 9,408 data bytes, the file has 9,308 \(100 missing\)"):
        read_idx_pair(imgs, labs, 10)


def test_trailing_bytes(pair):
    _, _, imgs, labs = pair
    _corrupt(labs, read_file_bytes(labs) + b"\0\0\0")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: 3 trailing bytes after the 12 = 12 data bytes"):
        read_idx_pair(imgs, labs, 10)


def test_truncated_header(pair):
    _, _, imgs, labs = pair
    _corrupt(imgs, read_file_bytes(imgs)[:10])
    with pytest.raises(DataError, match=r"truncated IDX header: 10 bytes, the 3 dimension sizes need 16"):
        read_idx_pair(imgs, labs, 10)


def test_label_out_of_range(pair):
    _, y, imgs, labs = pair
    bad = y.copy()
    bad[7] = 10
    write_idx(labs, bad)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: label 10 at index 7 is outside 0..9 "
                                         r"\(1 label\(s\) out of range\)"):
        read_idx_pair(imgs, labs, 10)


def test_count_mismatch(pair):
    _, y, imgs, labs = pair
    write_idx(labs, y[:11])
    with pytest.raises(DataError, match=r"count mismatch: .*train-images-idx3-ubyte\.gz has 12 images but "
                                         r".*train-labels-idx1-ubyte has 11 labels"):
        read_idx_pair(imgs, labs, 10)


def test_published_count_checked(pair):
    _, _, imgs, labs = pair
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: 12 images, expected 60,000"):
        read_idx_pair(imgs, labs, 10, expected_count=60_000)


def test_wrong_image_size(pair):
    _, _, imgs, labs = pair
    with pytest.raises(DataError, match=r"images are 28x28, expected 32x32"):
        read_idx_pair(imgs, labs, 10, image_hw=(32, 32))


def test_truncated_gzip(pair):
    _, _, imgs, labs = pair
    imgs.write_bytes(imgs.read_bytes()[:200])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: truncated gzip file \(200 bytes"):
        read_idx_pair(imgs, labs, 10)


def test_named_gz_but_not_gzip(pair):
    _, _, imgs, labs = pair
    imgs.write_bytes(b"<html>404</html>")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: named \.gz but is not a gzip file"):
        read_idx_pair(imgs, labs, 10)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope-idx3-ubyte: cannot read"):
        read_file_bytes(tmp_path / "nope-idx3-ubyte")
