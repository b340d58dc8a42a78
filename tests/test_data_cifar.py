"""CIFAR-10 readers on small files in the real formats, corrupted variants, and the restricted
unpickler against pickles that would run code."""

from __future__ import annotations

import os
import pickle
import subprocess

import numpy as np
import pytest

from ablab.data import DataError, load_dataset, unregister_dataset
from ablab.data.cifar import RECORD_BYTES, parse_cifar_bin, parse_cifar_pickle, safe_unpickle
from ablab.data.testing import (
    cifar_bin_bytes,
    cifar_pickle_bytes,
    isolate,
    tiny_arrays,
    tiny_cifar_batches,
    tiny_cifar_spec,
    write_cifar_archive,
    write_cifar_dir,
)


def test_binary_record_layout():
    """1 label byte, then the R plane, G plane, B plane, each 32x32 row-major -> (3, 32, 32)."""
    rec = np.zeros(RECORD_BYTES, np.uint8)
    rec[0] = 7
    rec[1 + 0 * 1024 + 5 * 32 + 9] = 11  # R at row 5, col 9
    rec[1 + 2 * 1024 + 31 * 32 + 0] = 22  # B at row 31, col 0
    x, y = parse_cifar_bin(rec.tobytes(), "one.bin", expected_records=1)
    assert y.tolist() == [7] and x.shape == (1, 3, 32, 32)
    assert x[0, 0, 5, 9] == 11 and x[0, 2, 31, 0] == 22 and int(x.sum()) == 33


@pytest.mark.parametrize(("write", "parse", "name"), [(cifar_bin_bytes, parse_cifar_bin, "b.bin"),
                                                      (cifar_pickle_bytes, parse_cifar_pickle, "data_batch_1")])
def test_batch_roundtrip(write, parse, name):
    """Both CIFAR-10 formats (binary records, restricted-unpickled dict) give back what was written."""
    x, y = tiny_arrays(20, (3, 32, 32))
    xr, yr = parse(write(x, y), name, expected_records=20)
    np.testing.assert_array_equal(xr, x)
    np.testing.assert_array_equal(yr, y)


def test_binary_truncated():
    x, y = tiny_arrays(20, (3, 32, 32))
    with pytest.raises(DataError, match=r"data_batch_1\.bin: 61,459 bytes is not a whole number of 3,073-byte "
                                         r"records .* 19 records and 3,072 bytes left over"):
        parse_cifar_bin(cifar_bin_bytes(x, y)[:-1], "data_batch_1.bin", expected_records=20)


def test_binary_count_mismatch():
    x, y = tiny_arrays(20, (3, 32, 32))
    with pytest.raises(DataError, match=r"test_batch\.bin: 20 records, expected 10,000"):
        parse_cifar_bin(cifar_bin_bytes(x, y), "test_batch.bin")


def test_binary_label_out_of_range():
    x, y = tiny_arrays(20, (3, 32, 32))
    y[3] = 200
    with pytest.raises(DataError, match=r"b\.bin: label 200 at index 3 is outside 0..9"):
        parse_cifar_bin(cifar_bin_bytes(x, y), "b.bin", expected_records=20)


def test_pickle_label_count_and_range():
    x, y = tiny_arrays(20, (3, 32, 32))
    short = pickle.dumps({b"data": x.reshape(20, -1), b"labels": [int(v) for v in y[:19]]}, protocol=2)
    with pytest.raises(DataError, match=r"count mismatch in data_batch_2: 20 images but 19 labels"):
        parse_cifar_pickle(short, "data_batch_2", expected_records=20)
    bad = pickle.dumps({b"data": x.reshape(20, -1), b"labels": [12] + [0] * 19}, protocol=2)
    with pytest.raises(DataError, match=r"label 12 at index 0 is outside 0..9"):
        parse_cifar_pickle(bad, "data_batch_2", expected_records=20)


class _RunsShell:
    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _RunsSubprocess:
    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        return (subprocess.call, (["sh", "-c", self.cmd],))


class _Evals:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (eval, (self.code,))


@pytest.mark.parametrize("make, refused", [
    (lambda marker: _RunsShell(f"touch {marker}"), "posix.system"),
    (lambda marker: _RunsSubprocess(f"touch {marker}"), "subprocess.call"),
    (lambda marker: _Evals(f"open({str(marker)!r}, 'w')"), "builtins.eval"),
])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, make, refused):
    marker = tmp_path / "pwned"
    # the payload hides inside an otherwise valid-looking batch dict
    payload = pickle.dumps({b"data": make(marker), b"labels": [0]}, protocol=4)
    pickle.loads(pickle.dumps(make(tmp_path / "control"), protocol=4))  # the payload is real:
    assert (tmp_path / "control").exists(), "sanity: plain pickle.loads does run this payload"
    with pytest.raises(DataError, match=rf"evil_batch: refused to unpickle: the file asks for '{refused}'"):
        parse_cifar_pickle(payload, "evil_batch")
    assert not marker.exists()


def test_unpickler_accepts_plain_data_only():
    obj = {"a": [1, 2.5, None, True, b"x", "s", (1, 2)], "arr": np.arange(6, dtype=np.uint8).reshape(2, 3)}
    back = safe_unpickle(pickle.dumps(obj, protocol=2), "f")
    assert back["a"] == obj["a"]
    np.testing.assert_array_equal(back["arr"], obj["arr"])
    with pytest.raises(DataError, match=r"refused to unpickle: the file asks for 'collections.OrderedDict'"):
        safe_unpickle(pickle.dumps(__import__("collections").OrderedDict(a=1)), "f")
    with pytest.raises(DataError, match=r"f: not a readable CIFAR-10 python batch"):
        safe_unpickle(b"\x80\x02}q\x00", "f")  # truncated stream


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)
    yield tmp_path
    unregister_dataset("tiny-cifar")


@pytest.mark.parametrize("fmt", ["bin", "py"])
def test_load_from_extracted_folder(tiny, fmt):
    batches = tiny_cifar_batches()
    write_cifar_dir(tiny / "d" / "tiny-cifar", batches, fmt)
    tiny_cifar_spec()
    ds = load_dataset("tiny-cifar", data_dir=tiny / "d", val_fraction=0.0)
    assert ds.input_shape == (3, 32, 32) and len(ds.train) == 100 and len(ds.test) == 20
    np.testing.assert_array_equal(ds.train.x[20:40].numpy(), batches["data_batch_2"][0])
    np.testing.assert_array_equal(ds.test.y.numpy(), batches["test_batch"][1])
    assert ds.info["format"] == f"cifar-{fmt}"


@pytest.mark.parametrize("fmt", ["bin", "py"])
def test_load_from_archive_checks_its_sha256(tiny, fmt):
    batches = tiny_cifar_batches()
    name = "cifar-10-binary.tar.gz" if fmt == "bin" else "cifar-10-python.tar.gz"
    digest = write_cifar_archive(tiny / "d" / name, batches, fmt)
    tiny_cifar_spec(archive_sha256=digest)
    ds = load_dataset("tiny-cifar", data_dir=tiny / "d", val_fraction=0.0)
    np.testing.assert_array_equal(ds.train.x[:20].numpy(), batches["data_batch_1"][0])
    assert ds.info["files"]["archive"]["sha256"] == digest
    tiny_cifar_spec(archive_sha256="f" * 64)
    with pytest.raises(DataError, match=rf"{name}: SHA-256 mismatch: got {digest}, expected f{{64}}"):
        load_dataset("tiny-cifar", data_dir=tiny / "d", val_fraction=0.0)


def test_corrupt_batch_in_folder_names_it(tiny):
    batches = tiny_cifar_batches()
    sub = write_cifar_dir(tiny / "d", batches, "bin")
    (sub / "data_batch_3.bin").write_bytes((sub / "data_batch_3.bin").read_bytes()[:-5])
    tiny_cifar_spec()
    with pytest.raises(DataError, match=r"data_batch_3\.bin: 61,455 bytes is not a whole number"):
        load_dataset("tiny-cifar", data_dir=tiny / "d")
