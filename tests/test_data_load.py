"""load_dataset on tiny real-format files: locating order, the not-found error, checksums, splits,
limits, normalization constants, caching; and the synthetic dataset."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from ablab.data import DataError, channel_stats, list_datasets, load_dataset, unregister_dataset
from ablab.data.split import TEST_SUBSET_SEED, split_indices
from ablab.data.testing import isolate, write_tiny_idx


@pytest.fixture
def env(monkeypatch, tmp_path):
    system = isolate(monkeypatch, tmp_path)
    yield tmp_path, system
    unregister_dataset("tiny")


def test_registry_names():
    names = list_datasets()
    assert {"cifar10", "fashion-mnist", "mnist", "synthetic"} <= set(names) and names == sorted(names)


def test_unknown_name_suggests():
    with pytest.raises(DataError, match=r"unknown dataset 'fashion_mnist'; did you mean 'fashion-mnist'\?"):
        load_dataset("fashion_mnist")


def test_search_order_data_dir_env_cache_system(env, monkeypatch):
    tmp, system = env
    write_tiny_idx(system / "tiny", seed=1)
    assert load_dataset("tiny").info["found_via"] == "system"
    write_tiny_idx(tmp / "user-cache" / "ablab" / "tiny", seed=1)
    assert load_dataset("tiny").info["found_via"] == "user cache"
    write_tiny_idx(tmp / "env" / "tiny", seed=1)
    monkeypatch.setenv("ABLAB_DATA", str(tmp / "env"))
    assert load_dataset("tiny").info["source"] == str(tmp / "env" / "tiny")
    write_tiny_idx(tmp / "explicit", name="tiny", seed=1)  # files directly in data_dir also count
    ds = load_dataset("tiny", data_dir=tmp / "explicit")
    assert ds.info["found_via"] == "--data-dir" and ds.info["source"] == str(tmp / "explicit")


def test_not_found_lists_every_place_and_fixes(env, monkeypatch):
    tmp, system = env
    spec = write_tiny_idx(tmp / "partial" / "tiny")
    os.remove(tmp / "partial" / "tiny" / "t10k-labels-idx1-ubyte.gz")
    monkeypatch.setenv("ABLAB_DATA", str(tmp / "envdir"))
    with pytest.raises(DataError) as e:
        load_dataset("tiny", download=False)
    msg = str(e.value)
    assert msg.startswith("dataset 'tiny' not found. Looked in, in this order:")
    order = [f"{tmp}/envdir/tiny  (no such folder)", f"{tmp}/user-cache/ablab/tiny  (no such folder)",
             f"{system}/tiny  (no such folder)"]
    positions = [msg.index(o) for o in order]
    assert positions == sorted(positions)
    assert "t10k-labels-idx1-ubyte.gz" in msg and spec.apt_package is None and "apt-get" not in msg
    # --data-dir is a promise: only that folder is searched, an incomplete copy is named, no fallback
    write_tiny_idx(tmp / "envdir" / "tiny")  # a complete copy elsewhere must not be used
    for download in (False, True):
        with pytest.raises(DataError) as e:
            load_dataset("tiny", data_dir=tmp / "partial", download=download)
        msg = str(e.value)
        assert msg.startswith(f"dataset 'tiny' not found in --data-dir {tmp}/partial (with --data-dir no other place "
                              "is searched). Looked in:")
        order = [f"{tmp}/partial/tiny  (incomplete: found 3 of 4 files; missing t10k-labels-idx1-ubyte[.gz])",
                 f"{tmp}/partial  (none of the files)"]
        positions = [msg.index(o) for o in order]
        assert positions == sorted(positions) and "envdir" not in msg and str(system) not in msg
        assert f"ablab data fetch tiny --data-dir {tmp}/partial" in msg


def test_fashion_not_found_suggests_apt(env):
    with pytest.raises(DataError, match=r"sudo apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", download=False)


def test_checksum_mismatch_on_load(env):
    tmp, _ = env
    write_tiny_idx(tmp / "d" / "tiny")
    write_tiny_idx(tmp / "other" / "tiny", seed=5, register=False)  # same format, other pixels
    os.replace(tmp / "other" / "tiny" / "train-images-idx3-ubyte.gz", tmp / "d" / "tiny" / "train-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: SHA-256 mismatch: the content hashes to "
                                         r"[0-9a-f]{64}, expected [0-9a-f]{64} \(train-images-idx3-ubyte\)"):
        load_dataset("tiny", data_dir=tmp / "d")


def test_plain_and_gz_give_same_tensors(env):
    tmp, _ = env
    write_tiny_idx(tmp / "gz" / "tiny", gz=True)
    write_tiny_idx(tmp / "plain" / "tiny", gz=False)
    a = load_dataset("tiny", data_dir=tmp / "gz")
    b = load_dataset("tiny", data_dir=tmp / "plain")
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)


def test_split_sizes_disjoint_deterministic(env):
    tmp, _ = env
    write_tiny_idx(tmp / "tiny", n_train=200, n_test=50)
    ds = load_dataset("tiny", data_dir=tmp)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (180, 20, 50)
    assert ds.train.x.dtype == torch.uint8 and ds.train.y.dtype == torch.int64
    assert ds.train.x.shape == (180, 1, 28, 28)
    # the two splits partition the official training set exactly
    tr, va, _ = split_indices(torch.zeros(200, dtype=torch.int64), 50, val_fraction=0.1, split_seed=0,
                              stratified=False, limit=None)
    assert len(set(tr.tolist()) | set(va.tolist())) == 200 and not set(tr.tolist()) & set(va.tolist())
    again = load_dataset("tiny", data_dir=tmp, split_seed=1)
    assert not torch.equal(again.val.y, ds.val.y) or not torch.equal(again.val.x, ds.val.x)
    from ablab.data import clear_cache
    clear_cache()
    fresh = load_dataset("tiny", data_dir=tmp)
    assert fresh is not ds and torch.equal(fresh.val.x, ds.val.x) and torch.equal(fresh.train.y, ds.train.y)
    assert fresh.info["val_indices_sha256"] == ds.info["val_indices_sha256"]


def test_stratified_split_keeps_class_shares():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    _, va, _ = split_indices(y, 10, val_fraction=0.1, split_seed=3, stratified=True, limit=None)
    assert torch.bincount(y[va]).tolist() == [5, 3, 2]
    _, va7, _ = split_indices(y, 10, val_fraction=0.07, split_seed=3, stratified=True, limit=None)
    # 7 = 3.5 + 2.1 + 1.4 -> floors 3, 2, 1 (=6), the largest remainder (class 0: .5) gets the last one
    assert torch.bincount(y[va7]).tolist() == [4, 2, 1]


def test_limit_rules(env):
    tmp, _ = env
    write_tiny_idx(tmp / "tiny", n_train=200, n_test=50)
    full = load_dataset("tiny", data_dir=tmp)
    ds = load_dataset("tiny", data_dir=tmp, limit=45)
    # train: 45; val: round(45 * 0.1 / 0.9) = 5; test: min(45, 50) = 45
    assert (len(ds.train), len(ds.val), len(ds.test)) == (45, 5, 45)
    rows = {bytes(r) for r in full.train.x.reshape(len(full.train), -1).numpy()}
    assert all(bytes(r) in rows for r in ds.train.x.reshape(45, -1).numpy()), "limited train ⊂ full train"
    vrows = {bytes(r) for r in full.val.x.reshape(len(full.val), -1).numpy()}
    assert all(bytes(r) in vrows for r in ds.val.x.reshape(5, -1).numpy()), "limited val ⊂ full val"
    # the test subset does not depend on the split seed (every seed of a study scores the same images)
    other = load_dataset("tiny", data_dir=tmp, limit=45, split_seed=9)
    assert torch.equal(other.test.x, ds.test.x) and ds.info["test_subset_seed"] == TEST_SUBSET_SEED
    assert len(load_dataset("tiny", data_dir=tmp, limit=1).val) == 1  # never an empty validation split
    assert len(load_dataset("tiny", data_dir=tmp, limit=10_000).train) == 180
    assert len(load_dataset("tiny", data_dir=tmp, limit=5, val_fraction=0.0).val) == 0


def test_mean_std_from_final_train_split_only(env):
    tmp, _ = env
    write_tiny_idx(tmp / "tiny", n_train=200, n_test=50)
    ds = load_dataset("tiny", data_dir=tmp, limit=30)
    xf = ds.train.x.to(torch.float64) / 255
    assert ds.mean[0] == pytest.approx(float(xf.mean()), abs=1e-12)
    assert ds.std[0] == pytest.approx(float(xf.std(unbiased=False)), abs=1e-12)
    assert ds.info["mean"] == list(ds.mean)
    assert channel_stats(ds.val.x) != (ds.mean, ds.std)


def test_channel_stats_matches_float_formula():
    x = torch.randint(0, 256, (50, 3, 5, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mean, std = channel_stats(x)
    xf = x.double() / 255
    np.testing.assert_allclose(mean, xf.mean(dim=(0, 2, 3)).numpy(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(std, xf.std(dim=(0, 2, 3), unbiased=False).numpy(), rtol=0, atol=1e-14)


def test_cache_same_object_and_rereads_replaced_file(env):
    tmp, _ = env
    write_tiny_idx(tmp / "tiny")
    a = load_dataset("tiny", data_dir=tmp)
    assert load_dataset("tiny", data_dir=tmp) is a
    assert load_dataset("tiny", data_dir=tmp, split_seed=1) is not a
    labels = tmp / "tiny" / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(b"garbage")  # replaced file (new size/mtime) -> reread -> error, not stale data
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: named \.gz but is not a gzip file"):
        load_dataset("tiny", data_dir=tmp)


@pytest.mark.parametrize("bad, match", [
    ({"val_fraction": 1.0}, r"val_fraction: expected a fraction in \[0, 1\), got 1.0"),
    ({"limit": 0}, r"limit: expected a positive integer or None, got 0"),
    ({"split_seed": -1}, r"split_seed: expected an integer in 0..4,294,967,295, got -1"),
])
def test_bad_arguments(bad, match):
    with pytest.raises(DataError, match=match):
        load_dataset("synthetic", **bad)


def test_synthetic_defaults_and_options():
    ds = load_dataset("synthetic")
    assert ds.name == "synthetic" and ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1800, 200, 500)
    small = load_dataset("synthetic:n=400,shape=3x8x8,classes=4,test=100,seed=2", val_fraction=0.25)
    assert small.input_shape == (3, 8, 8) and small.classes == ("class0", "class1", "class2", "class3")
    assert (len(small.train), len(small.val), len(small.test)) == (300, 100, 100)
    assert small.name == "synthetic:n=400,test=100,shape=3x8x8,classes=4,noise=0.25,seed=2"
    assert torch.bincount(small.test.y).tolist() == [25, 25, 25, 25]
    from ablab.data import clear_cache
    clear_cache()
    again = load_dataset("synthetic:seed=2,classes=4,n=400,test=100,shape=3x8x8", val_fraction=0.25)
    assert torch.equal(again.train.x, small.train.x), "deterministic for the same options"


def test_synthetic_is_learnable_by_nearest_centroid():
    ds = load_dataset("synthetic:n=1000,shape=1x8x8,classes=4")
    x = ds.train.x.reshape(len(ds.train), -1).double()
    centroids = torch.stack([x[ds.train.y == k].mean(0) for k in range(4)])  # (4, 64)
    xt = ds.test.x.reshape(len(ds.test), -1).double()
    acc = (torch.cdist(xt, centroids).argmin(1) == ds.test.y).double().mean().item()
    assert acc > 0.95
    assert (ds.test.y == 0).double().mean().item() == pytest.approx(0.25)  # chance would be 0.25


@pytest.mark.parametrize("name, match", [
    ("synthetic:n=abc", r"option n='abc' is not valid \(a whole number\)"),
    ("synthetic:shape=1x8", None),
    ("synthetic:shape=8", r"option shape='8' is not valid \(CxHxW like 1x8x8\)"),
    ("synthetic:colour=red", r"unknown option 'colour' \(known: n, test, shape, classes, noise, seed\)"),
    ("synthetic:classes=1", r"option classes must be between 2 and 1000, got 1"),
    ("synthetic:n", r"option 'n' must be key=value"),
])
def test_synthetic_option_errors(name, match):
    if match is None:
        assert load_dataset(name).input_shape == (1, 1, 8)
        return
    with pytest.raises(DataError, match=match):
        load_dataset(name)
