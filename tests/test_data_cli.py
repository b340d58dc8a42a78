"""``ablab data list|info|fetch|verify`` through click's CliRunner, on tiny files written here."""

from __future__ import annotations

import http.server
import threading

import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.data import unregister_dataset
from ablab.data.testing import isolate, write_tiny_idx


@pytest.fixture
def env(monkeypatch, tmp_path):
    system = isolate(monkeypatch, tmp_path)
    yield tmp_path, system
    unregister_dataset("tiny")


def run(*args: str):
    return CliRunner().invoke(cli, ["data", *args], catch_exceptions=False)


def test_list_shows_where_each_dataset_is(env):
    tmp, system = env
    write_tiny_idx(system / "tiny")
    out = run("list").output.splitlines()
    assert out[0].split() == ["NAME", "TRAIN", "TEST", "SHAPE", "WHERE"]
    rows = {line.split()[0]: line for line in out[1:]}
    assert rows["tiny"].split()[1:] == ["60", "20", "1x28x28", f"{system}/tiny", "(system,", "idx)",
                                       "files", "present,", "unverified"]
    assert rows["fashion-mnist"].endswith("not found: ablab data fetch fashion-mnist  or  sudo apt-get install "
                                          "dataset-fashion-mnist")
    assert rows["synthetic"].endswith("generated in memory")


def test_info_synthetic_exact(env):
    r = run("info", "synthetic:n=40,shape=1x4x4,classes=2,test=10", "--val-fraction", "0.25")
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].startswith("synthetic:n=40,test=10,shape=1x4x4,classes=2,noise=0.25,seed=0 — synthetic")
    assert lines[2] == "split:   val_fraction 0.25, split_seed 0, not stratified, no limit"
    assert lines[3] == "sizes:   train 30  val 10  test 10  (image 1x4x4 uint8; official 40 / 10)"
    assert lines[6].split() == ["label", "class", "train", "val", "test"]
    # 20 per class in total, 10 held out; test is balanced 5/5
    counts = [list(map(int, line.split()[2:])) for line in lines[7:9]]
    assert [tr + va for tr, va, _ in counts] == [20, 20] and sum(va for _, va, _ in counts) == 10
    assert [te for *_, te in counts] == [5, 5]


def test_info_unknown_and_missing_exit_2(env):
    r = run("info", "cifar-10")
    assert r.exit_code == 2 and "error: unknown dataset 'cifar-10'; did you mean 'cifar10'?" in r.output
    r = run("info", "mnist", "--no-download")
    assert r.exit_code == 2 and "error: dataset 'mnist' not found. Looked in, in this order:" in r.output
    assert "Traceback" not in r.output


def test_verify_ok_and_corrupt(env):
    tmp, _ = env
    spec = write_tiny_idx(tmp / "d" / "tiny")
    r = run("verify", "tiny", "--data-dir", str(tmp / "d"))
    assert r.exit_code == 0, r.output
    assert f"  ok  train-images-idx3-ubyte.gz   sha256 {spec.files.train_images.sha256}" in r.output
    assert "  train class balance: 6 per class" in r.output and r.output.endswith("tiny: verified\n")
    f = tmp / "d" / "tiny" / "t10k-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-8])
    r = run("verify", "tiny", "--data-dir", str(tmp / "d"))
    assert r.exit_code == 2 and "t10k-labels-idx1-ubyte.gz: truncated gzip file" in r.output


def test_fetch_through_mirror(env):
    tmp, _ = env
    write_tiny_idx(tmp / "pub", name="tiny")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: Quiet(*a, directory=str(tmp / "pub"), **k))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        r = run("fetch", "tiny", "--data-dir", str(tmp / "d"), "--mirror", url, "--no-progress")
        assert r.exit_code == 0 and r.output == f"tiny: downloaded and verified in {tmp}/d/tiny\n"
        r = run("fetch", "tiny", "--data-dir", str(tmp / "d"), "--mirror", url)
        assert r.output == f"tiny: already present and verified in {tmp}/d/tiny (--data-dir); nothing to do\n"
    finally:
        httpd.shutdown()
        httpd.server_close()
    r = run("fetch", "synthetic")
    assert r.exit_code == 2 and "'synthetic' is generated in memory; there is nothing to fetch" in r.output


def test_every_command_has_help_with_example():
    from ablab.cli.data import data

    for name in data.commands:
        r = CliRunner().invoke(cli, ["data", name, "--help"])
        assert r.exit_code == 0 and "Example:" in r.output and "--data-dir" in r.output, name
