"""Devices: choosing, recording, checkpoints across devices, runs per GPU. CPU tests run everywhere;
`gpu` tests run where CUDA is (benchmarks/gpu_check.sh) and are skipped elsewhere."""

from __future__ import annotations

import pytest
import torch

from ablab.data import load_dataset
from ablab.study.executor import InlineExecutor, LocalExecutor, RunSpec, gpu_devices, wants_gpu
from ablab.train import ConfigError, TrainConfig, evaluate_checkpoint, fit, load_checkpoint
from ablab.train.device import DeviceError, resolve_device
from ablab.train.optim import FusedOptimizer, make_optimizer
from ablab.train.trainer import _train_eval_split

DATA = "synthetic:n=400,test=200,shape=1x12x12,classes=4"
NET = "input(1,12,12) conv(4,3) tanh avgpool(2) flatten linear(16) tanh linear(4)"
NET_BN = "input(1,12,12) conv(4,3) relu maxpool(2) flatten linear(16) relu linear(4)"
BASE = TrainConfig(model=NET, dataset=DATA, val_fraction=0.2, epochs=2, batch_size=32, lr=3e-3, threads=1)
HAS_CUDA = torch.cuda.is_available()


def no_times(history):
    return [{k: v for k, v in h.items() if not k.endswith("_time_s")} for h in history]


@pytest.fixture(scope="module")
def ds():
    return load_dataset(DATA, val_fraction=0.2)


# ------------------------------------------------------------------------------- everywhere (CPU)


def test_device_names_are_checked_by_the_config_and_resolved_here():
    with pytest.raises(ConfigError, match="device: expected auto, cpu, cuda, cuda:N or mps, got 'gpu'"):
        TrainConfig(device="gpu")
    assert resolve_device("cpu") == torch.device("cpu")
    if not HAS_CUDA:
        with pytest.raises(DeviceError, match=r"device: 'cuda:1' is not available here \(available: cpu"):
            resolve_device("cuda:1")
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            assert resolve_device("auto") == torch.device("cpu")
            with pytest.raises(DeviceError, match="'mps' is not available"):
                resolve_device("mps")


def test_the_device_is_recorded_with_the_run_and_the_checkpoint(ds, tmp_path):
    events = []
    r = fit(BASE.replace(device="cpu"), dataset=ds, out_dir=tmp_path, callback=lambda e, d: events.append((e, d)))
    assert r.device["device"] == "cpu" and r.device["torch"] == torch.__version__ and r.device["name"]
    assert events[0][1]["device"] == r.device
    _, _, meta = load_checkpoint(tmp_path / "checkpoint")
    assert meta["device"] == r.device
    # default: the device it was trained on; explicit cpu: the same number
    for device in (None, "cpu"):
        ev = evaluate_checkpoint(tmp_path / "checkpoint", device=device)
        assert (ev["test_acc"], ev["test_loss"], ev["device"]) == (r.final["test_acc"], r.final["test_loss"], "cpu")


def test_auto_on_a_cpu_machine_is_the_cpu_path_bit_for_bit(ds):
    if HAS_CUDA:
        pytest.skip("auto is CUDA here")
    a, b = fit(BASE.replace(augment=True, dropout=0.2), dataset=ds), fit(BASE.replace(augment=True, dropout=0.2,
                                                                                      device="cpu"), dataset=ds)
    assert no_times(a.history) == no_times(b.history)


def test_clean_train_pass_on_a_fixed_stratified_subsample(ds):
    config = BASE.replace(train_metrics="clean", train_eval_subsample=100)
    x, y = torch.zeros(320, 1), ds.train.y.to(torch.int64)
    _, sub = _train_eval_split(config, x, y)
    assert sub.shape == (100,)
    full = torch.bincount(y, minlength=4).double() / 320
    assert (torch.bincount(sub, minlength=4).double() / 100 - full).abs().max() <= 0.01 + 1e-9  # stratified
    # fixed across the run seeds (a study compares like with like), another split seed draws another
    assert torch.equal(_train_eval_split(config.replace(seed=7), x, y)[1], sub)
    assert not torch.equal(_train_eval_split(config.replace(split_seed=1), torch.arange(320), y)[0],
                           _train_eval_split(config, torch.arange(320), y)[0])
    r = fit(config, dataset=ds)
    assert r.info["n_train_eval"] == 100
    assert all(round(h["train_acc"] * 100, 9) == int(round(h["train_acc"] * 100)) for h in r.history)
    whole = fit(config.replace(train_eval_subsample=None), dataset=ds)
    assert whole.info["n_train_eval"] == 320
    # the subsample changes only what is measured, never the training
    assert [h["test_acc"] for h in r.history] == [h["test_acc"] for h in whole.history]


def test_executors_place_runs_where_told(ds, tmp_path):
    assert wants_gpu("auto") and wants_gpu("cuda") and not wants_gpu("cpu") and not wants_gpu("mps")
    spec = RunSpec(1, "a", BASE.to_dict(), str(tmp_path / "a"), device="cpu")
    events = list(InlineExecutor(dataset=ds).run([spec]))
    assert events[-1].kind == "end" and events[-1].payload["device"]["device"] == "cpu"
    if not gpu_devices():  # no GPU: runs_per_gpu changes nothing
        ex = LocalExecutor(workers=2, runs_per_gpu=3, gpu=True)
        assert ex.workers == 2 and ex.gpus == []


def test_optimizer_works_wherever_the_parameters_are():
    model = torch.nn.Linear(3, 2)
    assert isinstance(make_optimizer(TrainConfig(), model), FusedOptimizer)


# ----------------------------------------------------------------------------------- CUDA only


@pytest.mark.gpu
def test_training_on_cuda_learns_and_records_the_gpu(ds):
    r = fit(BASE.replace(device="cuda", epochs=3), dataset=ds)
    assert r.device["type"] == "cuda" and r.device["name"] and r.device["cuda"]
    assert r.final["test_acc"] > 0.6


@pytest.mark.gpu
@pytest.mark.parametrize("net", [NET, NET_BN])
def test_same_seed_same_metrics_on_cuda(ds, net):
    config = BASE.replace(model=net, device="cuda", augment=True, dropout=0.2, batchnorm=True, epochs=3)
    a, b = fit(config, dataset=ds), fit(config, dataset=ds)
    assert no_times(a.history) == no_times(b.history)
    c = fit(config.replace(seed=1), dataset=ds)
    assert no_times(c.history) != no_times(a.history)


@pytest.mark.gpu
def test_checkpoints_cross_devices(ds, tmp_path):
    for trained, other in (("cuda", "cpu"), ("cpu", "cuda")):
        out = tmp_path / trained
        r = fit(BASE.replace(device=trained, batchnorm=True), dataset=ds, out_dir=out)
        same = evaluate_checkpoint(out / "checkpoint")  # on the device it was trained on: exact
        assert (same["test_acc"], same["test_loss"]) == (r.final["test_acc"], r.final["test_loss"])
        assert same["device"].startswith(trained)
        moved = evaluate_checkpoint(out / "checkpoint", device=other)
        assert moved["device"].startswith(other)
        assert abs(moved["test_acc"] - r.final["test_acc"]) <= 2 / 200  # other kernels: a sample or two at most
        assert moved["test_loss"] == pytest.approx(r.final["test_loss"], rel=1e-4)


@pytest.mark.gpu
def test_fused_optimizer_on_cuda_equals_torch_optim():
    torch.manual_seed(0)
    a = torch.nn.Linear(20, 5).cuda()
    b = torch.nn.Linear(20, 5).cuda()
    b.load_state_dict(a.state_dict())
    opt_a = make_optimizer(TrainConfig(lr=0.01), a)
    opt_b = torch.optim.Adam(b.parameters(), lr=0.01, fused=True)
    x, y = torch.randn(16, 20, device="cuda"), torch.randint(0, 5, (16,), device="cuda")
    for _ in range(10):
        for m, o in ((a, opt_a), (b, opt_b)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.gpu
def test_k_runs_per_gpu_run_concurrently_with_the_single_run_metrics(ds, tmp_path):
    gpus = gpu_devices()
    ex = LocalExecutor(runs_per_gpu=2, gpu=True)
    assert ex.workers == 2 * len(gpus)
    config = BASE.replace(dataset="synthetic:n=400,test=200,shape=1x12x12,classes=4")
    specs = [RunSpec(i, f"s{i}", config.replace(seed=i).to_dict(), str(tmp_path / f"s{i}")) for i in range(4)]
    with ex:
        ends = {e.run_id: e.payload for e in ex.run(specs) if e.kind == "end"}
    assert sorted(ends) == [0, 1, 2, 3]
    assert all(p["device"]["type"] == "cuda" for p in ends.values())
    alone = fit(config.replace(seed=0, device=ends[0]["device"]["device"], threads=1))
    assert no_times(alone.history) == no_times(ends[0]["history"])
