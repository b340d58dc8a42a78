"""ablab.train: fit, variants, optimizers, schedules, determinism, checkpoints, divergence — tiny data."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch

from ablab.data import load_dataset
from ablab.models.source import load_spec
from ablab.train import (
    CheckpointError,
    ConfigError,
    TrainConfig,
    apply_variants,
    evaluate_checkpoint,
    fit,
    list_variants,
    load_checkpoint,
    lr_at,
    model_spec,
)
from ablab.train import trainer as trainer_mod
from ablab.train.checkpoint import seal
from ablab.train.fast import accelerate
from ablab.train.variants import insert_batchnorm, insert_dropout

DATA = "synthetic:n=400,test=200,shape=1x12x12,classes=4"
NET = "input(1,12,12) conv(4,3) tanh avgpool(2) flatten linear(16) tanh linear(4)"
# one thread: the suite runs beside other jobs (and under xdist), where 2-thread OpenMP stalls
BASE = TrainConfig(model=NET, dataset=DATA, val_fraction=0.2, epochs=2, batch_size=32, lr=3e-3, threads=1)


def no_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if not k.endswith("_time_s")} for h in history]


@pytest.fixture(scope="module")
def ds():
    return load_dataset(DATA, val_fraction=0.2)


def test_fit_learns_and_reports_sample_accuracies(ds):
    r = fit(BASE.replace(epochs=3), dataset=ds)
    assert r.status == "done" and r.diverged is None
    assert [h["epoch"] for h in r.history] == [1, 2, 3]
    for h in r.history:
        for key in ("train_acc", "val_acc", "test_acc"):
            assert 0 <= h[key] <= 1
        # accuracies are counts over samples: test has 200 samples, val 80, train 320
        assert round(h["test_acc"] * 200, 9) == int(round(h["test_acc"] * 200))
        assert round(h["val_acc"] * 80, 9) == int(round(h["val_acc"] * 80))
        assert h["lr"] == 3e-3 and h["train_time_s"] > 0 and h["eval_time_s"] > 0
    assert r.final == r.history[-1]
    assert r.final["test_acc"] > 0.6  # 4 classes: chance is 0.25
    assert r.best_epoch == max(r.history, key=lambda h: h["val_acc"])["epoch"]
    assert set(r.seeds) == {"init", "data", "dropout"} and r.threads == 1
    assert set(r.versions) == {"python", "torch", "numpy", "ablab"}
    json.dumps(r.to_dict(), allow_nan=False)


def test_fit_loads_the_dataset_itself_and_sends_events_in_order():
    events: list[tuple[str, dict]] = []
    r = fit(BASE.replace(epochs=2), callback=lambda e, d: events.append((e, d)))
    names = [e for e, _ in events if e != "progress"]
    assert names == ["start", "epoch", "epoch", "end"]
    start = events[0][1]
    assert (start["n_train"], start["n_val"], start["n_test"], start["steps_per_epoch"]) == (320, 80, 200, 10)
    assert start["seeds"] == BASE.seeds and start["config"] == BASE.to_dict()
    assert events[-1][1] == r.to_dict()
    assert [d for e, d in events if e == "epoch"] == r.history


def test_no_validation_split(ds):
    r = fit(BASE.replace(val_fraction=0.0, epochs=1))
    assert r.history[0]["val_acc"] is None and r.history[0]["val_loss"] is None and r.best_epoch is None


def test_same_seed_same_metrics_and_seeds_are_separate_streams(ds):
    cfg = apply_variants(BASE, ["dropout=0.3"])
    a, b = fit(cfg, dataset=ds), fit(cfg, dataset=ds)
    assert no_times(a.history) == no_times(b.history)
    # each seed moves the result on its own...
    for key in ("init_seed", "data_seed", "dropout_seed"):
        other = fit(cfg.replace(**{key: 12345}), dataset=ds)
        assert no_times(other.history) != no_times(a.history), key
    # ...and the dropout seed is the only stream dropout reads: without dropout it changes nothing
    plain = fit(BASE, dataset=ds)
    assert no_times(fit(BASE.replace(dropout_seed=777), dataset=ds).history) == no_times(plain.history)
    # fit leaves the caller's global RNG alone
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    fit(BASE.replace(epochs=1), dataset=ds)
    assert torch.equal(torch.rand(3), expected)


@pytest.fixture(scope="module")
def baseline_run(ds):
    return fit(BASE, dataset=ds)


@pytest.mark.parametrize("variant", list_variants())
def test_every_variant_trains_and_changes_training(ds, baseline_run, variant):
    cfg = apply_variants(BASE, [variant])
    r = fit(cfg, dataset=ds)
    assert r.status == "done" and len(r.history) >= 1
    assert r.final["test_acc"] > 0.4
    spec = r.info["spec"]
    assert ("batchnorm" in spec) == (variant == "bn")
    assert ("dropout" in spec) == (variant == "dropout")
    # every variant but the baseline changes what is trained (early stopping: only once it stops, tested
    # below)
    same = no_times(r.history) == no_times(baseline_run.history)
    assert same == (variant in ("baseline", "early-stopping"))
    if variant == "label-smoothing":  # smoothed targets cannot be fit to zero loss: the loss sits higher
        assert r.history[-1]["train_loss"] > baseline_run.history[-1]["train_loss"]


def test_config_level_modules_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from ablab.train import TrainConfig, apply_variants, list_variants; "
            "apply_variants(TrainConfig(), ['bn', 'dropout']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_variant_fields_and_composition():
    cfg = apply_variants(BASE, ["bn", "dropout=0.25", "adamw", "label-smoothing", "augment", "early-stopping=2"])
    assert (cfg.batchnorm, cfg.dropout, cfg.optimizer, cfg.weight_decay) == (True, 0.25, "adamw", 1e-2)
    assert (cfg.label_smoothing, cfg.augment, cfg.early_stopping) == (0.1, True, 2)
    assert apply_variants(BASE, ["dropout", "bn"]) == apply_variants(BASE, ["bn", "dropout"])
    assert apply_variants(BASE, ["l2"]).weight_decay == 5e-4 and apply_variants(BASE, ["l2"]).optimizer == "adam"
    assert apply_variants(BASE, ["l2-penalty"]).l2_penalty == 5e-4
    with pytest.raises(ConfigError, match="unknown variant 'dropuot'; did you mean 'dropout'"):
        apply_variants(BASE, ["dropuot"])
    with pytest.raises(ConfigError, match="variant 'adamw'.*weight_decay is already"):
        apply_variants(BASE, ["l2", "adamw"])
    with pytest.raises(ConfigError, match="variant 'bn' takes no value"):
        apply_variants(BASE, ["bn=2"])
    with pytest.raises(ConfigError, match="dropout: expected a rate in"):
        apply_variants(BASE, ["dropout=1.5"])


def test_spec_transforms_on_lenet5():
    spec = load_spec("lenet5")
    assert insert_batchnorm(spec).to_string().endswith(
        "conv2d(6,5,padding=(2,2)) batchnorm tanh avgpool2d(2) conv2d(16,5) batchnorm tanh avgpool2d(2) flatten "
        "linear(120) batchnorm tanh linear(84) batchnorm tanh linear(10)")
    assert insert_batchnorm(insert_batchnorm(spec)) == insert_batchnorm(spec)
    fc = insert_dropout(spec, 0.5, "fc").to_string()
    assert fc.endswith("linear(120) tanh dropout linear(84) tanh dropout linear(10)")
    conv = insert_dropout(spec, 0.2, "conv").to_string()
    assert "tanh avgpool2d(2) dropout(p=0.2) conv2d(16,5) tanh avgpool2d(2) dropout(p=0.2) flatten" in conv
    both = model_spec(BASE.replace(model="lenet5", batchnorm=True, dropout=0.5, dropout_placement="all"))
    assert both.to_string().count("dropout") == 4 and both.to_string().count("batchnorm") == 4


def test_three_l2_forms_coupled_equals_penalty_decoupled_differs(ds):
    """What the docs claim: with Adam, coupled weight decay and the explicit penalty feed the same
    gradient (same training up to rounding), AdamW's decoupled decay trains differently."""
    lam = 0.05  # large, so a difference would show
    runs = {name: fit(BASE.replace(**kw), dataset=ds) for name, kw in {
        "coupled": {"weight_decay": lam}, "penalty": {"l2_penalty": lam},
        "decoupled": {"optimizer": "adamw", "weight_decay": lam}, "none": {}}.items()}
    loss = {k: r.final["test_loss"] for k, r in runs.items()}
    assert loss["coupled"] == pytest.approx(loss["penalty"], rel=1e-4)
    assert abs(loss["decoupled"] - loss["coupled"]) > 1e-3
    assert abs(loss["none"] - loss["coupled"]) > 1e-3


@pytest.mark.parametrize("optimizer,extra", [("sgd", {"lr": 0.05}), ("sgd", {"lr": 0.05, "momentum": 0.9}),
                                             ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
                                             ("adam", {}), ("adamw", {"weight_decay": 0.01})])
@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "onecycle"])
def test_every_optimizer_and_schedule(ds, optimizer, extra, schedule):
    cfg = BASE.replace(optimizer=optimizer, schedule=schedule, epochs=3, step_epochs=1, step_gamma=0.5, **extra)
    r = fit(cfg, dataset=ds)
    assert r.status == "done" and r.final["test_acc"] > 0.3
    lrs = [h["lr"] for h in r.history]
    assert lrs == [lr_at(cfg, e * 10, 10) for e in range(3)]
    if schedule == "step":
        assert lrs == [cfg.lr, cfg.lr / 2, cfg.lr / 4]


def test_schedule_shapes():
    cfg = TrainConfig(epochs=10, lr=0.1)
    spe, total = 100, 1000
    cos = cfg.replace(schedule="cosine")
    assert lr_at(cos, 0, spe) == 0.1 and lr_at(cos, total - 1, spe) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(cos, (total - 1) / 2, spe) == pytest.approx(0.05)  # type: ignore[arg-type]
    one = cfg.replace(schedule="onecycle", warmup_fraction=0.3)
    lrs = [lr_at(one, s, spe) for s in range(total)]
    assert lrs[0] == pytest.approx(0.1 / 25) and max(lrs) == pytest.approx(0.1)
    assert lrs.index(max(lrs)) == 299 and lrs[-1] == pytest.approx(0.1 / 25 / 1e4)
    assert all(a <= b for a, b in zip(lrs[:299], lrs[1:300], strict=True))
    step = cfg.replace(schedule="step", step_epochs=3, step_gamma=0.1)
    assert [lr_at(step, e * spe, spe) for e in (0, 2, 3, 6)] == pytest.approx([0.1, 0.1, 0.01, 0.001])


def test_clean_train_metrics_are_an_eval_pass(ds):
    clean = fit(BASE.replace(train_metrics="clean", epochs=1), dataset=ds, out_dir=None)
    running = fit(BASE.replace(epochs=1), dataset=ds)
    # same training; only the measurement of the train split differs
    assert clean.history[0]["test_acc"] == running.history[0]["test_acc"]
    assert clean.history[0]["train_acc"] != running.history[0]["train_acc"]


def test_early_stopping_restores_best_weights(ds, tmp_path):
    cfg = apply_variants(BASE.replace(lr=1e-7, epochs=10), ["early-stopping=2"])  # nothing improves after 1
    r = fit(cfg, dataset=ds, out_dir=tmp_path)
    assert r.best_epoch == 1 and len(r.history) == 3
    assert r.final == r.history[0]
    ev = evaluate_checkpoint(r.checkpoint)
    assert ev["test_acc"] == r.final["test_acc"] and ev["test_loss"] == r.final["test_loss"]


def test_checkpoint_reproduces_test_accuracy_exactly(tmp_path):
    cfg = apply_variants(BASE, ["bn", "dropout"])
    r = fit(cfg, out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "metrics.csv", "metrics.json"]
    assert sorted(p.name for p in (tmp_path / "checkpoint").iterdir()) == ["config.json", "model.safetensors"]
    ev = evaluate_checkpoint(tmp_path / "checkpoint")
    assert ev.pop("dataset") == load_dataset(DATA).name  # named in the eval header
    assert ev == {"test_loss": r.final["test_loss"], "test_acc": r.final["test_acc"], "n": 200, "split": "test",
                  "device": "cpu",
                  "recorded_acc": r.final["test_acc"], "reproduced": True, "notes": []}
    meta = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert meta["config"] == cfg.to_dict() and meta["metrics"]["test_acc"] == r.final["test_acc"]
    assert meta["normalization"]["mean"][0] == pytest.approx(load_dataset(DATA, val_fraction=0.2).mean[0])
    assert set(meta["versions"]) == {"python", "torch", "numpy", "ablab"}
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["history"] == json.loads(json.dumps(r.history))
    csv_lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc,test_loss,test_acc,lr")
    assert len(csv_lines) == 3
    model, config, _ = load_checkpoint(tmp_path / "checkpoint" / "model.safetensors")
    assert config == cfg and not model.training


def test_mismatched_checkpoint_is_refused_with_the_tensor_list(tmp_path):
    fit(BASE.replace(epochs=1), out_dir=tmp_path)
    meta_path = tmp_path / "checkpoint" / "config.json"
    meta = json.loads(meta_path.read_text())
    meta["spec"] = load_spec(NET.replace("linear(16)", "linear(32)")).to_dict()
    meta_path.write_text(json.dumps(seal(meta)))  # a consistent forgery: the shapes still give it away
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "checkpoint")
    msg = str(e.value)
    assert "3 mismatched tensors" in msg
    assert "linear_1.weight: checkpoint (16, 100), model (32, 100)" in msg
    assert "linear_1.bias: checkpoint (16,), model (32,)" in msg
    assert "linear_2.weight: checkpoint (4, 16), model (4, 32)" in msg


def test_damaged_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_checkpoint(tmp_path / "nope")
    fit(BASE.replace(epochs=1), out_dir=tmp_path)
    weights = tmp_path / "checkpoint" / "model.safetensors"
    weights.write_bytes(b"\x80\x04\x95 not a safetensors file, e.g. a pickle")
    with pytest.raises(CheckpointError, match="model.safetensors: the weights file changed since training"):
        load_checkpoint(tmp_path / "checkpoint")
    meta_path = tmp_path / "checkpoint" / "config.json"
    meta = json.loads(meta_path.read_text())
    meta["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(seal(meta)))  # re-signed: now the file itself must be refused
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        load_checkpoint(tmp_path / "checkpoint")
    (tmp_path / "checkpoint" / "config.json").write_text("{\n  'x': 1\n}")
    with pytest.raises(CheckpointError, match=r"config.json:2:3: invalid JSON"):
        load_checkpoint(tmp_path / "checkpoint")


def test_divergence_stops_cleanly_and_keeps_the_measured_epochs(ds, tmp_path):
    relu_net = NET.replace("tanh", "relu")  # tanh would saturate instead of overflowing
    r = fit(BASE.replace(model=relu_net, optimizer="sgd", lr=1e6, epochs=3), dataset=ds, out_dir=tmp_path)
    assert r.status == "diverged" and r.history == [] and r.final == {}
    assert r.diverged is not None and r.diverged["epoch"] == 1 and r.diverged["step"] >= 1
    assert not math.isfinite(r.diverged["loss"])
    saved = json.loads((tmp_path / "metrics.json").read_text())  # strict JSON: nan/inf as strings
    assert saved["status"] == "diverged" and saved["diverged"]["loss"] in ("nan", "inf")
    assert r.checkpoint is None


def test_injected_inf_gives_exact_step_and_keeps_last_good_weights(ds, tmp_path, monkeypatch):
    real = trainer_mod.F.cross_entropy
    calls = {"n": 0}

    def flaky(out, y, **kw):
        loss = real(out, y, **kw)
        if kw.get("reduction", "mean") == "mean":  # training steps only (eval sums)
            calls["n"] += 1
            if calls["n"] == 14:  # epoch 2 (10 steps per epoch), batch 4
                return loss * float("inf")
        return loss

    monkeypatch.setattr(trainer_mod.F, "cross_entropy", flaky)
    r = fit(BASE.replace(epochs=3), dataset=ds, out_dir=tmp_path)
    monkeypatch.setattr(trainer_mod.F, "cross_entropy", real)
    assert r.status == "diverged"
    assert r.diverged == {"epoch": 2, "step": 14, "batch": 4, "loss": float("inf")}
    assert len(r.history) == 1 and r.final == r.history[0]
    assert evaluate_checkpoint(r.checkpoint)["test_acc"] == r.final["test_acc"]  # epoch 1's weights


def test_threads_are_set_recorded_and_restored(ds):
    before = torch.get_num_threads()
    r = fit(BASE.replace(epochs=1, threads=2), dataset=ds)
    assert r.threads == 2 and torch.get_num_threads() == before


def test_wrong_number_of_classes_is_a_user_error(ds):
    from ablab.errors import UserError

    with pytest.raises(UserError, match=r"outputs \(10,\) per sample but dataset .* has 4 classes"):
        fit(BASE.replace(model=NET.replace("linear(4)", "linear(10)")), dataset=ds)


@pytest.mark.parametrize("model", ["lenet5", "mlp:32,10", "lenet5-modern"])
def test_fast_modules_compute_the_plain_model(model):
    from ablab.models import create_model

    torch.manual_seed(0)
    plain = create_model(model)
    fast = accelerate(create_model(model))
    fast.load_state_dict(plain.state_dict())
    assert list(fast.state_dict()) == list(plain.state_dict())
    x = torch.randn(8, 1, 28, 28)
    y = torch.randint(0, 10, (8,))
    for m in (plain, fast):
        torch.nn.functional.cross_entropy(m(x), y).backward()
    torch.testing.assert_close(fast(x), plain(x), atol=1e-6, rtol=1e-5)
    for p, q in zip(plain.parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.realdata
def test_lenet5_one_epoch_on_real_fashion_mnist():
    try:
        ds = load_dataset("fashion-mnist", download=False)
    except Exception as e:  # noqa: BLE001 - skip when the Debian package is not installed
        pytest.skip(f"Fashion-MNIST not available: {e}")
    r = fit(TrainConfig(model="lenet5", epochs=1), dataset=ds)
    assert r.status == "done"
    assert 0.80 <= r.final["test_acc"] <= 0.92  # one epoch of Adam 1e-3, batch 64: ~0.84
    assert r.info["steps_per_epoch"] == 844 and r.info["n_test"] == 10000


@pytest.mark.parametrize("preset", ["lenet5", "lenet5-modern", "cifar-lenet", "mlp:32,10", "mlp:16,16,10"])
def test_every_preset_trains(preset):
    shape = "3x32x32" if preset == "cifar-lenet" else "1x28x28"
    cfg = TrainConfig(model=preset, dataset=f"synthetic:n=256,test=64,shape={shape},classes=10", epochs=1,
                      batch_size=32, threads=1)
    r = fit(cfg)
    assert r.status == "done" and r.info["n_train"] + r.info["n_val"] == 256
    assert 0 <= r.final["test_acc"] <= 1 and math.isfinite(r.final["test_loss"])


def test_fused_relu_maxpool_is_exact_including_ties():
    from ablab.train.fast import FusedReluMaxPool

    torch.manual_seed(0)
    x0 = torch.randint(-3, 4, (8, 3, 6, 6)).float()  # small integers: many ties, many zeros after relu
    x1, x2 = x0.clone().requires_grad_(), x0.clone().requires_grad_()
    y1 = torch.nn.functional.max_pool2d(torch.relu(x1), 2)
    y2 = FusedReluMaxPool()(x2)
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    assert torch.equal(y1, y2) and torch.equal(x1.grad, x2.grad)  # bit for bit, PyTorch's tie rule
