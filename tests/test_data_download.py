"""Downloading against a local HTTP server on 127.0.0.1 (never the internet): verified atomic writes,
a checksum mismatch, a dropped connection, a missing file, mirror fallback, and the offline error."""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
from pathlib import Path

import pytest
import torch

from ablab.data import DataError, download_file, fetch, load_dataset, unregister_dataset, verify_dataset
from ablab.data.catalog import DatasetSpec, register_dataset
from ablab.data.testing import isolate, tiny_cifar_batches, tiny_cifar_spec, write_cifar_archive, write_tiny_idx


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        mode, _, name = self.path.lstrip("/").partition("/")
        data = self.files.get(name)
        if data is None:
            self.send_error(404, "Not Found")
            return
        if mode == "bad":  # a valid gzip file of the wrong content
            data = gzip.compress(b"\0\0\x08\x01\0\0\0\x01\x07", mtime=0)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "drop":  # the connection dies half-way
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler.files
    httpd.shutdown()
    httpd.server_close()
    _Handler.files = {}


@pytest.fixture
def tiny(monkeypatch, tmp_path, server):
    """A tiny IDX dataset published on the local server; nothing on disk where ablab looks."""
    isolate(monkeypatch, tmp_path)
    spec = write_tiny_idx(tmp_path / "published", name="tiny")
    base, files = server
    for p in (tmp_path / "published").iterdir():
        files[p.name] = p.read_bytes()
    yield spec, base, tmp_path
    unregister_dataset("tiny")
    unregister_dataset("tiny-cifar")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_verify_load(tiny):
    spec, base, tmp = tiny
    found, downloaded = fetch("tiny", tmp / "data", mirror=f"{base}/good", progress=None)
    assert downloaded and found.dir == tmp / "data" / "tiny"
    assert _leftovers(found.dir) == sorted(f.name for f in spec.files.all().values())  # no .part files
    _, checks, raw = verify_dataset("tiny", tmp / "data")
    assert all(c.ok for c in checks) and len(raw.train) == 60
    ds = load_dataset("tiny", data_dir=tmp / "data", val_fraction=0.0)
    published = load_dataset("tiny", data_dir=tmp / "published", val_fraction=0.0)
    assert torch.equal(ds.train.x, published.train.x)
    # already there and verified: nothing is downloaded again (the server could even be gone)
    assert fetch("tiny", tmp / "data", mirror="http://127.0.0.1:9", progress=None)[1] is False


def test_checksum_mismatch_leaves_nothing(tiny):
    _, base, tmp = tiny
    with pytest.raises(DataError, match=r"could not download train-images-idx3-ubyte\.gz: .*/bad/"
                                         r"train-images-idx3-ubyte\.gz: SHA-256 mismatch: the content hashes to"):
        fetch("tiny", tmp / "data", mirror=f"{base}/bad", progress=None)
    assert _leftovers(tmp / "data" / "tiny") == []


def test_dropped_connection_leaves_nothing(tiny):
    _, base, tmp = tiny
    with pytest.raises(DataError, match=r"/drop/train-images-idx3-ubyte\.gz: connection dropped after"):
        fetch("tiny", tmp / "data", mirror=f"{base}/drop", progress=None)
    assert _leftovers(tmp / "data" / "tiny") == []


def test_http_error_and_mirror_fallback(tiny):
    spec, base, tmp = tiny
    with pytest.raises(DataError, match=r"/good/nothing-here/train-images-idx3-ubyte\.gz: HTTP 404 Not Found"):
        fetch("tiny", tmp / "a", mirror=f"{base}/good/nothing-here", progress=None)
    register_dataset(DatasetSpec(**{**spec.__dict__, "mirrors": (f"{base}/drop", f"{base}/bad", f"{base}/good")}))
    found, downloaded = fetch("tiny", tmp / "b", progress=None)
    assert downloaded and len(_leftovers(found.dir)) == 4


def test_download_progress_goes_through_a_callback(tiny, capsys):
    spec, base, tmp = tiny
    f = spec.files.train_labels
    calls: list[tuple[str, int, int | None]] = []
    out = download_file(f"{base}/good/{f.name}", tmp / "x" / f.name, f, progress=lambda *a: calls.append(a))
    data = (tmp / "published" / f.name).read_bytes()
    assert out.read_bytes() == data
    assert calls[0] == (f.name, 0, len(data)) and calls[-1] == (f.name, len(data), len(data))
    assert capsys.readouterr().err == ""  # the library draws nothing itself


def test_fetch_command_draws_the_bar(tiny):
    from click.testing import CliRunner

    from ablab.cli import cli

    spec, base, tmp = tiny
    res = CliRunner().invoke(cli, ["data", "fetch", "tiny", "--data-dir", str(tmp / "cli"), "--mirror", f"{base}/good"])
    assert res.exit_code == 0, res.output
    assert "tiny: downloaded and verified in" in res.output


def test_offline_and_missing_is_one_error(tiny, monkeypatch):
    _, _, tmp = tiny
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("ABLAB_DATA_MIRROR", dead)
    with pytest.raises(DataError) as e:
        load_dataset("tiny")
    msg = str(e.value)
    assert msg.startswith("dataset 'tiny' not found. Looked in, in this order:")
    assert f"{tmp}/user-cache/ablab/tiny  (no such folder)" in msg
    assert f"Download failed: could not download train-images-idx3-ubyte.gz: {dead}/train-images-idx3-ubyte.gz:" in msg
    assert "Connection refused" in msg and "ablab data fetch tiny" in msg


def test_load_downloads_into_user_cache(tiny, monkeypatch):
    _, base, tmp = tiny
    monkeypatch.setenv("ABLAB_DATA_MIRROR", f"{base}/good")
    ds = load_dataset("tiny")
    assert ds.info["source"] == str(tmp / "user-cache" / "ablab" / "tiny") and len(ds.test) == 20


def test_cifar_fetch_extracts_with_manifest(tiny):
    _, base, tmp = tiny
    batches = tiny_cifar_batches()
    digest = write_cifar_archive(tmp / "pub" / "cifar-10-binary.tar.gz", batches)
    _Handler.files["cifar-10-binary.tar.gz"] = (tmp / "pub" / "cifar-10-binary.tar.gz").read_bytes()
    tiny_cifar_spec(archive_sha256=digest)
    found, _ = fetch("tiny-cifar", tmp / "data", mirror=f"{base}/good", progress=None)
    folder = tmp / "data" / "tiny-cifar"
    assert _leftovers(folder) == ["cifar-10-batches-bin"]  # archive removed after extraction
    assert "SHA256SUMS" in _leftovers(folder / "cifar-10-batches-bin") and found.fmt == "cifar-bin"
    ds = load_dataset("tiny-cifar", data_dir=tmp / "data", val_fraction=0.0)
    assert torch.equal(ds.test.x, torch.from_numpy(batches["test_batch"][0]))
    assert all(c.ok and c.detail.startswith("sha256 ") for c in verify_dataset("tiny-cifar", tmp / "data")[1])
    b = folder / "cifar-10-batches-bin" / "data_batch_4.bin"
    data = bytearray(b.read_bytes())
    data[100] ^= 1  # one flipped bit: structurally fine, caught by the manifest
    b.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"data_batch_4\.bin: SHA-256 mismatch: got [0-9a-f]{64}, expected"):
        verify_dataset("tiny-cifar", tmp / "data")
    from ablab.data import clear_cache
    clear_cache()
    with pytest.raises(DataError, match=r"data_batch_4\.bin: SHA-256 mismatch"):
        load_dataset("tiny-cifar", data_dir=tmp / "data")
