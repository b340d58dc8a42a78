"""The real Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist).

Skipped with a reason when the package is not installed; ``.ci/run`` installs it.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
import torch

from ablab.data import load_dataset, verify_dataset

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz")

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not all((DEBIAN / n).is_file() for n in NAMES),
                       reason=f"real Fashion-MNIST not installed in {DEBIAN} "
                              "(sudo apt-get install dataset-fashion-mnist)"),
]

# SHA-256 of the decompressed files: the same bytes as the official downloads (whose .gz MD5s are
# published by zalandoresearch/fashion-mnist); Debian recompresses, so we pin the content.
CONTENT_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


def test_known_checksums():
    for name, digest in CONTENT_SHA256.items():
        assert hashlib.sha256(gzip.decompress((DEBIAN / name).read_bytes())).hexdigest() == digest, name


def test_counts_and_class_balance(monkeypatch):
    monkeypatch.delenv("ABLAB_DATA", raising=False)
    found, checks, raw = verify_dataset("fashion-mnist", DEBIAN.parent)
    assert found.dir == DEBIAN and all(c.ok for c in checks)
    assert raw.train.x.shape == (60_000, 1, 28, 28) and raw.test.x.shape == (10_000, 1, 28, 28)
    assert torch.bincount(raw.train.y).tolist() == [6_000] * 10
    assert torch.bincount(raw.test.y).tolist() == [1_000] * 10


def test_load_split_and_normalization(monkeypatch):
    monkeypatch.delenv("ABLAB_DATA", raising=False)
    ds = load_dataset("fashion-mnist", data_dir=DEBIAN.parent, stratified=True)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (54_000, 6_000, 10_000)
    assert torch.bincount(ds.val.y).tolist() == [600] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    # the widely quoted full-train constants are 0.2860 / 0.3530; ours are on the 54,000 train images
    assert ds.mean[0] == pytest.approx(0.2860, abs=0.002) and ds.std[0] == pytest.approx(0.3530, abs=0.002)
