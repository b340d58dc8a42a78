"""The decoded-dataset cache: same data as a fresh verified read, misses on any change, never trusted blindly."""

from __future__ import annotations

import os

import pytest
import torch

from ablab.data import load as load_mod
from ablab.data import load_dataset, unregister_dataset
from ablab.data.cache import cache_root
from ablab.data.testing import isolate, write_tiny_idx


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    system = isolate(monkeypatch, tmp_path)
    write_tiny_idx(system / "tiny", n_train=60, n_test=20)
    yield system / "tiny"
    unregister_dataset("tiny")


def _no_reads(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("the files were read again")

    monkeypatch.setattr(load_mod, "read_raw", fail)


def test_second_load_maps_the_cache_and_equals_the_fresh_read(tiny, monkeypatch):
    fresh = load_dataset("tiny", val_fraction=0.2)
    entries = list(cache_root().iterdir())
    assert len(entries) == 1 and {p.name for p in entries[0].iterdir()} == {
        "meta.json", "train_x.npy", "train_y.npy", "test_x.npy", "test_y.npy"}
    load_mod.clear_cache()
    _no_reads(monkeypatch)
    cached = load_dataset("tiny", val_fraction=0.2)
    for split in ("train", "val", "test"):
        a, b = getattr(fresh, split), getattr(cached, split)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and a.y.dtype == b.y.dtype
    assert cached.info == fresh.info  # the verified file sums included
    assert (cached.mean, cached.std) == (fresh.mean, fresh.std)


def test_changed_source_or_damaged_entry_is_read_and_verified_again(tiny, monkeypatch):
    load_dataset("tiny")
    entry = next(cache_root().iterdir())
    # a touched source file: another key, so a fresh (verified) read
    f = tiny / "train-labels-idx1-ubyte.gz"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_mod.clear_cache()
    calls = []
    real = load_mod.read_raw
    monkeypatch.setattr(load_mod, "read_raw", lambda *a: calls.append(1) or real(*a))
    load_dataset("tiny")
    assert calls == [1] and len(list(cache_root().iterdir())) == 2
    # a truncated array: ignored and rewritten
    entry = max(cache_root().iterdir(), key=lambda p: p.stat().st_mtime_ns)
    (entry / "train_x.npy").write_bytes((entry / "train_x.npy").read_bytes()[:200])
    load_mod.clear_cache()
    ds = load_dataset("tiny")
    assert calls == [1, 1] and ds.train.x.shape[0] == 54
    load_mod.clear_cache()
    load_dataset("tiny")
    assert calls == [1, 1]  # rewritten, now a hit


def test_cache_can_be_switched_off(tiny, monkeypatch):
    monkeypatch.setenv("ABLAB_NO_DATA_CACHE", "1")
    load_dataset("tiny")
    assert not cache_root().exists()
