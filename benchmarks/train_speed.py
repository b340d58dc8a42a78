"""ablab's trainer beside the course-style training loop, same model / batch / optimizer / data.

The reference is written here the way course solutions do it — the PyTorch "Quickstart" tutorial on
Fashion-MNIST plus the usual ``Normalize``: a per-sample ``Dataset`` whose ``__getitem__`` does what
``torchvision.datasets.FashionMNIST`` + ``transforms.Compose([ToTensor(), Normalize(mean, std)])`` do
(uint8 array -> PIL image -> float tensor / 255 -> normalize; the torchvision code path, reproduced
without torchvision), ``DataLoader(batch_size=64, shuffle=True)``, the textbook loop
(forward, loss, backward, step, zero_grad) with ``torch.optim.Adam(model.parameters(), lr=1e-3)``, and
evaluation through ``DataLoader(test, batch_size=64)`` under ``torch.no_grad()``.

The second reference is the plain in-memory loop — what a careful PyTorch user writes without ablab: the
split normalized once into one tensor, a ``randperm`` per epoch, ``index_select`` batches, the same model
(PyTorch's own modules, ablab's builder, same init seed) and ``torch.optim.Adam``. ablab runs twice: with
eager kernels and with compiled ones (``kernels = "compiled"``, torch.compile of the training step), the
compile's cost reported apart and amortized over a 12-epoch run.

All sides use the same data (ablab's 90/10 split of the real Fashion-MNIST), batch 64, Adam 1e-3, and run
in this one process, epochs interleaved (ablab epoch, course epoch, plain epoch, ...).

    python benchmarks/train_speed.py                  # LeNet-5 and MLP 784-1000-10, 3 epochs each, 1 thread
    python benchmarks/train_speed.py --threads 2
    python benchmarks/train_speed.py --epochs 2 --eval-repeats 3
    python benchmarks/train_speed.py --accuracy       # + 12-epoch LeNet-5 baseline and bn (ablab only)
    python benchmarks/train_speed.py --levers         # + each kernel lever on ablab's step
    python benchmarks/train_speed.py --placement      # + 2 runs x 1 thread against 1 run x 2 threads
    python benchmarks/train_speed.py --epochs 0 --levers   # only the levers
    python benchmarks/train_speed.py --profile        # + where ablab's training step spends its time
    python benchmarks/train_speed.py --device cuda    # both sides on the GPU (the tutorial's .to(device) loop)

Times are seconds per training epoch (training loop only) and per evaluation pass over the 10,000 test
images (the median of --eval-repeats passes). The machine is shared: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import os
import platform
import statistics
import tempfile
import time
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from ablab.data import load_dataset
from ablab.data.dataset import Dataset, Split
from ablab.models import create_model
from ablab.train import TrainConfig, apply_variants, fit, load_checkpoint
from ablab.train.device import eval_batch_size, resolve_device
from ablab.train.runtime import evaluate, prepare_split

# ----------------------------------------------------------------------- the reference (course style)


class CourseFashionMNIST(TorchDataset):  # type: ignore[type-arg]
    """Per-sample dataset: what torchvision's FashionMNIST + ToTensor + Normalize do for each item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: float, std: float) -> None:
        self.images, self.labels = images, labels  # uint8 (N, 28, 28), int64 (N,)
        self.mean, self.std = [mean], [std]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.images[i], mode="L")  # torchvision.datasets.FashionMNIST.__getitem__
        x = torch.from_numpy(np.array(img, np.uint8, copy=True))  # transforms.ToTensor ...
        x = x.view(img.size[1], img.size[0], 1).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
        x = x.clone()  # transforms.Normalize (torchvision.transforms.functional.normalize, inplace=False)
        mean = torch.as_tensor(self.mean, dtype=x.dtype)
        std = torch.as_tensor(self.std, dtype=x.dtype)
        if (std == 0).any():
            raise ValueError("std evaluated to zero")
        x.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))
        return x, int(self.labels[i])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_train_epoch(model: torch.nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                          device: torch.device) -> float:
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    for batch, (X, y) in enumerate(loader):
        X, y = X.to(device), y.to(device)  # the tutorial's per-batch copy to the GPU
        pred = model(X)
        loss = loss_fn(pred, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch % 100 == 0:
            loss.item()  # the tutorial prints the loss every 100 batches
    _sync(device)
    return time.perf_counter() - t0


def reference_test(model: torch.nn.Module, loader: DataLoader, device: torch.device) -> tuple[float, float, float]:
    loss_fn = torch.nn.CrossEntropyLoss()
    model.eval()
    size, num_batches = len(loader.dataset), len(loader)  # type: ignore[arg-type]
    test_loss, correct = 0.0, 0.0
    t0 = time.perf_counter()
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    return time.perf_counter() - t0, test_loss / num_batches, correct / size


class PlainLoop:
    """The plain in-memory loop: normalized tensors, randperm + index_select batches, torch.optim.Adam."""

    def __init__(self, model_name: str, ds: Dataset, seed: int, device: torch.device) -> None:
        self.x, self.y = prepare_split(ds.train, ds.mean, ds.std, device)
        torch.manual_seed(seed)
        self.model = create_model(model_name, ds.input_shape).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.gen = torch.Generator().manual_seed(seed)
        self.device = device
        self.epoch_s: list[float] = []

    def epoch(self) -> None:
        model, opt, n = self.model, self.optimizer, int(self.y.shape[0])
        model.train()
        _sync(self.device)
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=self.gen).to(self.device)
        for i in range(0, n, 64):
            idx = perm[i:i + 64]
            loss = torch.nn.functional.cross_entropy(model(self.x.index_select(0, idx)), self.y.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(self.device)
        self.epoch_s.append(time.perf_counter() - t0)


class Reference:
    """The course-style run: its own model (same init seed as ablab's), loaders and optimizer."""

    def __init__(self, model_name: str, ds: Dataset, seed: int, device: torch.device) -> None:
        mean, std = ds.mean[0], ds.std[0]
        train = CourseFashionMNIST(ds.train.x[:, 0].numpy(), ds.train.y.numpy(), mean, std)
        test = CourseFashionMNIST(ds.test.x[:, 0].numpy(), ds.test.y.numpy(), mean, std)
        torch.manual_seed(seed)
        self.model = create_model(model_name, ds.input_shape).to(device)
        self.device = device
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.train_loader = DataLoader(train, batch_size=64, shuffle=True)
        self.test_loader = DataLoader(test, batch_size=64)
        self.epoch_s: list[float] = []

    def epoch(self) -> None:
        self.epoch_s.append(reference_train_epoch(self.model, self.train_loader, self.optimizer, self.device))

    def test(self) -> tuple[float, float]:
        seconds, _, acc = reference_test(self.model, self.test_loader, self.device)
        return seconds, acc


def compare(model_name: str, ds: Dataset, epochs: int, seed: int, eval_repeats: int,
            device: torch.device | None = None) -> dict[str, Any]:
    """Epochs and evaluation passes alternate between the sides (ablab epoch k, course epoch, plain epoch,
    ...), so a burst of load from other processes hits all alike; min and median are reported."""
    device = device or torch.device("cpu")
    ref = Reference(model_name, ds, seed, device)
    plain = PlainLoop(model_name, ds, seed, device)
    out: dict[str, Any] = {}
    for kernels in ("eager", "compiled"):
        config = TrainConfig(model=model_name, dataset=ds.name, epochs=epochs, batch_size=64, optimizer="adam",
                             lr=1e-3, seed=seed, init_seed=seed, device=str(device), kernels=kernels)

        def after_each_ablab_epoch(event: str, data: dict[str, Any]) -> None:
            if event == "epoch":
                ref.epoch()
                plain.epoch()

        with tempfile.TemporaryDirectory() as tmp:
            result = fit(config, dataset=ds, out_dir=tmp, callback=after_each_ablab_epoch)
            model, _, _ = load_checkpoint(result.checkpoint or "", device=device)
        epoch_s = [h["train_time_s"] for h in result.history]
        # the first epoch carries the compile; the others are the steady state
        out[kernels] = {"epoch": epoch_s[1:] if epochs > 1 else epoch_s, "first": epoch_s[0],
                        "test_acc": result.final["test_acc"]}
    x, y = prepare_split(ds.test, ds.mean, ds.std, device)
    ref_eval, ours_eval = [], []
    for _ in range(eval_repeats):
        seconds, ref_acc = ref.test()
        ref_eval.append(seconds)
        t0 = time.perf_counter()
        _, acc = evaluate(model, x, y, eval_batch_size(config.eval_batch_size, device))
        ours_eval.append(time.perf_counter() - t0)
    assert acc == result.final["test_acc"], (acc, result.final["test_acc"])  # the checkpoint's number
    out["eager"]["eval"] = out["compiled"]["eval"] = ours_eval
    return {"ref": {"epoch": ref.epoch_s, "eval": ref_eval, "test_acc": ref_acc},
            "plain": {"epoch": plain.epoch_s}, **out}


def _fmt(xs: list[float]) -> str:
    return f"{min(xs):6.3f} / {statistics.median(xs):6.3f}"


def accuracy_check(ds: Dataset, seed: int, model: str) -> None:
    print(f"\n12 epochs, {model}, Adam 1e-3, batch 64, 90/10 split, seed {seed} (ablab; n=1 run each)")
    for variant, target in (("baseline", 0.89), ("bn", 0.90)):
        cfg = apply_variants(TrainConfig(model=model, epochs=12, seed=seed), [variant])
        t0 = time.perf_counter()
        r = fit(cfg, dataset=ds)
        best = r.history[(r.best_epoch or 1) - 1]
        print(f"  {variant:<9} test acc {r.final['test_acc']:.4f} (target >= {target:.2f}: "
              f"{'ok' if r.final['test_acc'] >= target else 'MISSED'}); best-val epoch {r.best_epoch} "
              f"test {best['test_acc']:.4f}; {time.perf_counter() - t0:.0f} s")


def profile_step(ds: Dataset, model_name: str, seed: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    # 200 training steps; validation and test cut to 640 images each so the table is about training
    small = load_dataset("fashion-mnist", limit=12800)
    small = dataclasses.replace(small, val=Split(small.val.x[:640], small.val.y[:640]),
                                test=Split(small.test.x[:640], small.test.y[:640]))
    cfg = TrainConfig(model=model_name, epochs=1, seed=seed, val_fraction=0.1)
    fit(cfg, dataset=small)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        r = fit(cfg, dataset=small)
    print(f"\nprofile of ablab's fit, {model_name}, {r.info['steps_per_epoch']} training steps "
          f"({r.history[0]['train_time_s']:.2f} s under the profiler) + evaluation of 2 x 640 images:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def _step_fn(model_name: str, seed: int, kind: str = "eager") -> Any:
    """ablab's own training step (its model with the fast tanh/pool, its optimizer), batch 64, under a
    lever: "eager", "channels-last", "compiled", "compiled + channels-last"."""
    from ablab.train.kernels import compiled
    from ablab.train.model import run_model
    from ablab.train.optim import make_optimizer

    cfg = TrainConfig(model=model_name, optimizer="adam", lr=1e-3, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64 * 50, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (64 * 50,), generator=gen)
    torch.manual_seed(seed)
    model = run_model(cfg, (1, 28, 28)).model
    if "channels-last" in kind:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = make_optimizer(cfg, model)
    f = compiled(model) if "compiled" in kind else model

    def step(i: int) -> None:
        sl = slice((i % 50) * 64, (i % 50 + 1) * 64)
        loss = torch.nn.functional.cross_entropy(f(x[sl]), y[sl])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def levers(model_name: str, seed: int, rounds: int = 5, steps: int = 100) -> None:
    """Every kernel lever on ablab's own training step, batch 64, interleaved rounds: eager, channels-last,
    compiled, compiled + channels-last; and the evaluation batch size (256, 1024, 4096) on 10,000 images."""
    from ablab.train.model import run_model

    kinds = ["eager", "channels-last", "compiled", "compiled + channels-last"]
    fns, setup = {}, {}
    for k in kinds:
        t0 = time.perf_counter()
        fns[k] = _step_fn(model_name, seed, k)
        for i in range(3):
            fns[k](i)
        setup[k] = time.perf_counter() - t0
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for k in kinds:
            t0 = time.perf_counter()
            for i in range(steps):
                fns[k](i)
            times[k].append((time.perf_counter() - t0) / steps * 1e3)
    print(f"\nlevers, {model_name} training step, batch 64, {torch.get_num_threads()} thread(s) "
          f"(ms per step, min / median of {rounds} x {steps} steps; speed-up against eager)")
    for k in kinds:
        print(f"  {k:<26} {_fmt(times[k])}   {min(times['eager']) / min(times[k]):4.2f}x (min) "
              f"{statistics.median(times['eager']) / statistics.median(times[k]):4.2f}x (median)   "
              f"first steps incl. compile {setup[k]:5.1f} s")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = run_model(TrainConfig(model=model_name, seed=seed), (1, 28, 28)).model.eval()
    xe, ye = torch.randn(10_000, 1, 28, 28, generator=gen), torch.randint(0, 10, (10_000,), generator=gen)
    ev: dict[int, list[float]] = {b: [] for b in (256, 1024, 4096)}
    for _ in range(rounds):
        for b in ev:
            t0 = time.perf_counter()
            evaluate(model, xe, ye, b)
            ev[b].append(time.perf_counter() - t0)
    print("  evaluation of 10,000 images, by batch size: " + "   ".join(
        f"{b}: {_fmt(v)} s ({min(ev[256]) / min(v):4.2f}x)" for b, v in ev.items()))


def _steps_server(conn: Any, model_name: str, seed: int, threads: int) -> None:
    """A process running ablab's eager step with ``threads`` threads: "ready", then N -> runs N steps."""
    torch.set_num_threads(threads)
    step = _step_fn(model_name, seed)
    for i in range(3):
        step(i)
    conn.send("ready")
    while (n := conn.recv()) is not None:
        for i in range(n):
            step(i)
        conn.send(n)


def placement(model_name: str, seed: int, rounds: int = 5, steps: int = 200) -> None:
    """How a 2-core machine is best shared by a study: two runs side by side with one thread each (what
    ``ablab study run`` does) or one run at a time with two threads. Training images per second of
    ablab's eager step, the two placements in alternating rounds (spawned processes)."""
    ctx = mp.get_context("spawn")

    def start(threads: int) -> tuple[Any, Any]:
        conn, child = ctx.Pipe()
        proc = ctx.Process(target=_steps_server, args=(child, model_name, seed, threads), daemon=True)
        proc.start()
        assert conn.recv() == "ready"
        return conn, proc

    pair, one = [start(1), start(1)], start(2)
    rate: dict[str, list[float]] = {"2 runs x 1 thread": [], "1 run x 2 threads": []}
    for _ in range(rounds):
        for name, group in (("2 runs x 1 thread", pair), ("1 run x 2 threads", [one])):
            t0 = time.perf_counter()
            for conn, _ in group:
                conn.send(steps)
            for conn, _ in group:
                conn.recv()
            rate[name].append(len(group) * steps * 64 / (time.perf_counter() - t0))
    for conn, proc in (*pair, one):
        conn.send(None)
        proc.join()
    print(f"\nplacement, {model_name}, 2 cores: training images per second (max / median of {rounds} rounds)")
    base = rate["2 runs x 1 thread"]
    for k, v in rate.items():
        print(f"  {k:<20} {max(v):8.0f} / {statistics.median(v):8.0f}   {max(v) / max(base):4.2f}x (max) "
              f"{statistics.median(v) / statistics.median(base):4.2f}x (median)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lenet5,mlp:1000,10", help="comma list; 'mlp:1000,10' stays one name")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per side (min and median epoch times)")
    ap.add_argument("--eval-repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for every side (a study's worker has 1)")
    ap.add_argument("--accuracy", action="store_true", help="also the 12-epoch LeNet-5 baseline/bn check")
    ap.add_argument("--accuracy-models", default="lenet5", help="models of the accuracy check (comma list)")
    ap.add_argument("--profile", action="store_true", help="also profile ablab's training step")
    ap.add_argument("--levers", action="store_true", help="also time every kernel lever on the training step")
    ap.add_argument("--placement", action="store_true", help="also 2 runs x 1 thread vs 1 run x 2 threads")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps: both sides run there")
    args = ap.parse_args()
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [m for m in args.models.replace("mlp:1000,10", "mlp:1000;10").split(",") if m]
    models = [m.replace(";", ",") for m in models]

    ds = load_dataset("fashion-mnist", val_fraction=0.1)
    print(f"Fashion-MNIST {len(ds.train)} train / {len(ds.val)} val / {len(ds.test)} test; batch 64; Adam 1e-3; "
          f"{args.epochs} epoch(s); torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; device {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    for name in models if args.epochs else []:  # --epochs 0: only the levers / placement / profile asked for
        r = compare(name, ds, args.epochs, args.seed, args.eval_repeats, device)
        ref, plain = r["ref"], r["plain"]
        print(f"\n{name}   (seconds per training epoch, min / median; compiled: epochs after the first)")
        print(f"  course loop (DataLoader) {_fmt(ref['epoch'])}")
        print(f"  plain in-memory loop     {_fmt(plain['epoch'])}")
        for kernels in ("eager", "compiled"):
            ours = r[kernels]["epoch"]
            med = statistics.median
            print(f"  ablab, {kernels:<8} kernels {_fmt(ours)}   vs course "
                  f"{min(ref['epoch']) / min(ours):5.2f}x (min) {med(ref['epoch']) / med(ours):5.2f}x"
                  f" (median)   vs plain {min(plain['epoch']) / min(ours):5.2f}x (min) "
                  f"{statistics.median(plain['epoch']) / statistics.median(ours):5.2f}x (median)")
        comp = r["compiled"]
        steady = statistics.median(comp["epoch"])
        overhead = comp["first"] - steady
        twelve = 12 * statistics.median(ref["epoch"]) / (overhead + 12 * steady)
        print(f"  compile: first epoch {comp['first']:.2f} s = {overhead:+.2f} s over the steady epoch; over a "
              f"12-epoch run, compile included: {twelve:.2f}x the course loop "
              f"(eager: {statistics.median(ref['epoch']) / statistics.median(r['eager']['epoch']):.2f}x)")
        print(f"  eval 10,000: course {_fmt(ref['eval'])}   ablab {_fmt(r['eager']['eval'])}   speed-up "
              f"{min(ref['eval']) / min(r['eager']['eval']):5.2f}x (min)")
        print(f"  test acc after {args.epochs} epoch(s): course {ref['test_acc']:.4f}   ablab eager "
              f"{r['eager']['test_acc']:.4f}   compiled {comp['test_acc']:.4f}")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end (2 = both cores busy with other work)")
    if args.accuracy:
        for model in args.accuracy_models.split(","):
            accuracy_check(ds, args.seed, model)
    if args.levers:
        for name in models:
            levers(name, args.seed)
    if args.placement:
        for name in models:
            placement(name, args.seed)
    if args.profile:
        profile_step(ds, models[0], args.seed)


if __name__ == "__main__":
    main()
