"""Data files and servers an adversary controls: gzip bombs, lying headers, oversized downloads,
impossible CIFAR labels, and a ``--data-dir`` that must be the only place looked (issue 13 items 1, 3,
7, 9). Memory bounds are checked in a subprocess whose address space is capped at 1 GB."""

from __future__ import annotations

import functools
import gzip
import http.server
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.data import DataError
from ablab.data.catalog import get_spec
from ablab.data.cifar import parse_cifar_pickle

GB = 1 << 30
FASHION = Path("/usr/share/datasets/fashion-mnist")
ZEROS_MEMBER = gzip.compress(bytes(1 << 24), compresslevel=9)  # one gzip member: 16 MiB of zeros, ~16 KB


def write_bomb(path: Path, header: bytes, inflated_bytes: int) -> int:
    """An IDX .gz whose content is ``header`` then ``inflated_bytes`` of zeros, written as a stream of
    gzip members (readers inflate members back to back); the file stays a few MB. Returns its size."""
    with open(path, "wb") as f:
        f.write(gzip.compress(header))
        for _ in range(inflated_bytes // (1 << 24)):
            f.write(ZEROS_MEMBER)
    return path.stat().st_size


def idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def run_limited(args: list[str], cwd: Path, address_space: int = GB, timeout: float = 300,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({address_space}, {address_space}))
        from ablab.cli import main
        main(sys.argv[1:])
    """)
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def fashion_dir(root: Path, bomb_role: str, header: bytes, inflated: int) -> Path:
    """``root/fashion-mnist`` with the other three files (the real ones when installed, else empty
    placeholders) and a bomb in place of ``bomb_role``."""
    d = root / "fashion-mnist"
    d.mkdir(parents=True)
    spec = get_spec("fashion-mnist")
    for role, f in spec.files.all().items():  # type: ignore[union-attr]
        if role == bomb_role:
            write_bomb(d / f.name, header, inflated)
        elif (FASHION / f.name).is_file():
            os.symlink(FASHION / f.name, d / f.name)
        else:
            (d / f.name).write_bytes(gzip.compress(b""))
    return d


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
@pytest.mark.parametrize("command", [["data", "info", "fashion-mnist"], ["data", "verify", "fashion-mnist"],
                                     ["train", "mlp:10,10", "--data", "fashion-mnist", "--epochs", "1", "-q"]],
                         ids=["info", "verify", "train"])
def test_gzip_bomb_is_refused_within_1gb(tmp_path, command):
    """4 GiB of zeros behind a truthful 60,000 x 28 x 28 header: at most the dataset's 47 MB is inflated."""
    fashion_dir(tmp_path / "D", "train_images", idx_header(60_000, 28, 28), 4 * GB)
    bomb = tmp_path / "D" / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    assert bomb.stat().st_size < 8_000_000
    res = run_limited([*command, "--data-dir", str(tmp_path / "D")], tmp_path)
    assert res.returncode == 2, res.stderr[-3000:]
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr and "MemoryError" not in res.stderr
    assert str(bomb) in res.stderr
    assert ("trailing bytes after the 60,000 x 28 x 28 = 47,040,000 data bytes" in res.stderr
            or "decompresses to more than the 47,040,016 bytes" in res.stderr), res.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_lying_header_is_refused_before_inflating(tmp_path):
    fashion_dir(tmp_path / "D", "train_labels", idx_header(4_000_000_000), 64 << 20)
    res = run_limited(["data", "info", "fashion-mnist", "--data-dir", str(tmp_path / "D")], tmp_path)
    assert res.returncode == 2, res.stderr[-3000:]
    assert "the header declares 4,000,000,000 = 4,000,000,000 data bytes, more than the 60,000" in res.stderr


# ---------------------------------------------------------------- downloads


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _NoLengthHandler(_Handler):
    """Streams the file without a Content-Length (a server that does not say how much is coming)."""

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        self.send_response(200)
        self.end_headers()
        with open(path, "rb") as f:
            shutil.copyfileobj(f, self.wfile)


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hanging up on an oversized body is the point of these tests


@pytest.fixture(params=[_Handler, _NoLengthHandler], ids=["content-length", "no-length"])
def server(request, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    httpd = _Server(("127.0.0.1", 0), functools.partial(request.param, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_download_is_capped_by_the_registry_size(server, tmp_path):
    """A mirror serving a 20 MB labels file (the real one is 29 KB compressed, 60,008 bytes of content)
    is cut off past the cap; nothing is left in the target folder."""
    from ablab.data.download import download_caps

    root, url = server
    spec = get_spec("fashion-mnist")
    f = spec.files.train_labels  # type: ignore[union-attr]
    max_bytes, max_content = download_caps(spec, f)
    assert max_content == 8 + 60_000 and max_bytes == 60_008 + 6 + 1024
    (root / f.name).write_bytes(os.urandom(20 << 20))
    from ablab.data.download import download_from_mirrors

    with pytest.raises(DataError, match=r"more than the 61,038 bytes train-labels-idx1-ubyte.gz can have; refusing"):
        download_from_mirrors(spec, f, tmp_path / "D" / f.name, mirror=url, progress=False)
    assert not any((tmp_path / "D").rglob("*"))  # no partial download left behind


def test_served_gzip_bomb_inflates_at_most_the_content_size(server, tmp_path):
    """A small download (within the byte cap) that inflates to 32 MiB: the checksum stops inflating at
    the file's known content size."""
    root, url = server
    spec = get_spec("fashion-mnist")
    f = spec.files.train_labels  # type: ignore[union-attr]
    size = write_bomb(root / f.name, idx_header(60_000), 32 << 20)
    assert size < 61_038
    from ablab.data.download import download_from_mirrors

    with pytest.raises(DataError, match=r"decompresses to more than the 60,008 bytes train-labels-idx1-ubyte has"):
        download_from_mirrors(spec, f, tmp_path / f.name, mirror=url, progress=False)
    assert not (tmp_path / f.name).exists() and not list(tmp_path.glob(".*part"))


# ---------------------------------------------------------------- CIFAR labels


@pytest.mark.parametrize("labels, expected", [
    ([2**70] + [0] * 9, r"label 1180591620717411303424 at index 0 is outside 0\.\.9"),
    ([0] * 9 + [-(2**70)], r"label -1180591620717411303424 at index 9 is outside 0\.\.9"),
    ([True] + [0] * 9, r"label at index 0 is bool True, expected an integer class index"),
    (np.ones(10, dtype=bool), r"'labels' must be a 1-d integer array, got bool"),
    ([0.0] * 10, r"label at index 0 is float 0\.0"),
])
def test_cifar_pickle_labels_must_be_class_indices(labels, expected):
    batch = {b"data": np.zeros((10, 3072), dtype=np.uint8), b"labels": labels}
    with pytest.raises(DataError, match=expected):
        parse_cifar_pickle(pickle.dumps(batch, protocol=2), "data_batch_1", expected_records=10)


def test_cifar_archive_member_larger_than_a_batch_is_refused(tmp_path):
    import io
    import tarfile

    from ablab.data.cifar import read_archive_members

    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
        info.size = 64 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(DataError, match=r"declares 67,108,864 bytes, more than the 31,778,576 a batch holds"):
        read_archive_members(archive, {"cifar-10-batches-bin/data_batch_1.bin": "data_batch_1"}, 31_778_576)


# ---------------------------------------------------------------- --data-dir is a promise


@pytest.mark.parametrize("command", [["verify"], ["info", "--no-download"], ["info"]])
def test_data_dir_without_the_data_says_so_and_stops(tmp_path, command):
    """The data is installed system-wide, but --data-dir points elsewhere: no 'verified' from elsewhere."""
    (tmp_path / "D").mkdir()
    res = CliRunner().invoke(cli, ["data", command[0], "fashion-mnist", "--data-dir", str(tmp_path / "D"),
                                   *command[1:]])
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: dataset 'fashion-mnist' not found in --data-dir {tmp_path / 'D'}")
    assert "verified" not in res.output and "/usr/share/datasets" not in res.output.split("Fix it")[0]


def test_data_dir_with_an_incomplete_copy_names_what_is_missing(tmp_path):
    d = tmp_path / "D" / "fashion-mnist"
    d.mkdir(parents=True)
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header(1, 28, 28) + bytes(784)))
    res = CliRunner().invoke(cli, ["data", "verify", "fashion-mnist", "--data-dir", str(tmp_path / "D")])
    assert res.exit_code == 2
    assert "incomplete: found 1 of 4 files; missing train-labels-idx1-ubyte[.gz]" in res.output


def test_zlib_damage_is_one_error(tmp_path):
    d = tmp_path / "D" / "fashion-mnist"
    d.mkdir(parents=True)
    raw = bytearray(gzip.compress(idx_header(60_000, 28, 28) + bytes(1000)))
    raw[-8:-4] = bytes(b ^ 0xFF for b in raw[-8:-4])  # the CRC-32 of the gzip trailer
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (d / name).write_bytes(bytes(raw))
    res = CliRunner().invoke(cli, ["data", "info", "fashion-mnist", "--data-dir", str(tmp_path / "D")])
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: {d / 'train-images-idx3-ubyte.gz'}: damaged gzip file (CRC check failed")


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_own_idx_source_bomb_stops_at_its_header(tmp_path):
    """`idx:DIR` (your own files) has no registered size: the header's dimensions are the cap."""
    d = tmp_path / "mine"
    d.mkdir()
    write_bomb(d / "train-images-idx3-ubyte.gz", idx_header(100, 28, 28), 2 * GB)
    for name, header in (("train-labels-idx1-ubyte.gz", idx_header(100)), ("t10k-images-idx3-ubyte.gz",
                                                                           idx_header(10, 28, 28)),
                         ("t10k-labels-idx1-ubyte.gz", idx_header(10))):
        n = 1
        for i in range(header[3]):
            n *= int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big")
        (d / name).write_bytes(gzip.compress(header + bytes(n)))
    res = run_limited(["data", "info", f"idx:{d}"], tmp_path)
    assert res.returncode == 2, res.stderr[-3000:]
    assert "trailing bytes after the 100 x 28 x 28 = 78,400 data bytes" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_own_idx_header_claiming_more_than_memory_is_refused_before_reading(tmp_path):
    """An idx: folder whose training-image header claims 2^32 - 1 images (3.4 TB): refused against half
    the available memory before one data byte is inflated, under a 1 GiB address space."""
    d = tmp_path / "mine"
    d.mkdir()
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header(2**32 - 1, 28, 28) + bytes(7840)))
    (d / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_header(10) + bytes(10)))
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header(10, 28, 28) + bytes(7840)))
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_header(10) + bytes(10)))
    res = run_limited(["data", "info", f"idx:{d}"], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-3000:]
    line = res.stderr.strip()
    assert line.startswith(f"error: {d / 'train-images-idx3-ubyte.gz'}: the header declares "
                           "4,294,967,295 x 28 x 28 = 3,367,254,359,280 data bytes, more than the "), line
    assert line.endswith(" allowed (50% of the available memory); refusing to read it"), line


def test_own_npz_larger_than_memory_allows_is_refused_from_its_headers(tmp_path, monkeypatch):
    from ablab.data import budget
    from ablab.data.load import load_dataset

    f = tmp_path / "big.npz"
    np.savez_compressed(f, x_train=np.zeros((2000, 28, 28), np.uint8), y_train=np.arange(2000, dtype=np.int64) % 2)
    monkeypatch.setattr(budget, "available_memory", lambda: 2_000_000)  # a budget of 1,000,000 bytes
    with pytest.raises(DataError, match=r"npz:.*big.npz: its arrays \(by their headers\) need 1.5 MiB in memory "
                                        r"\(4.5 MiB while being read\), more than the 1,000,000 bytes allowed "
                                        r"\(50% of the available memory\)"):
        load_dataset(f"npz:{f}")
    monkeypatch.setattr(budget, "available_memory", lambda: 10_000_000)
    assert len(load_dataset(f"npz:{f}").train) == 1440  # 3 x (1,568,000 + 16,000) bytes fit in 5,000,000
