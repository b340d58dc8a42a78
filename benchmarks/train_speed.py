"""ablab's trainer beside the course-style training loop, same model / batch / optimizer / data.

The reference is written here the way course solutions do it — the PyTorch "Quickstart" tutorial on
Fashion-MNIST plus the usual ``Normalize``: a per-sample ``Dataset`` whose ``__getitem__`` does what
``torchvision.datasets.FashionMNIST`` + ``transforms.Compose([ToTensor(), Normalize(mean, std)])`` do
(uint8 array -> PIL image -> float tensor / 255 -> normalize; the torchvision code path, reproduced
without torchvision), ``DataLoader(batch_size=64, shuffle=True)``, the textbook loop
(forward, loss, backward, step, zero_grad) with ``torch.optim.Adam(model.parameters(), lr=1e-3)``, and
evaluation through ``DataLoader(test, batch_size=64)`` under ``torch.no_grad()``.

Both sides use the same data (ablab's 90/10 split of the real Fashion-MNIST), the same model built by
ablab's builder from the same init seed, batch 64, Adam 1e-3, and run in this one process.

    python benchmarks/train_speed.py                  # LeNet-5 and MLP 784-1000-10, 1 epoch each
    python benchmarks/train_speed.py --epochs 2 --eval-repeats 3
    python benchmarks/train_speed.py --accuracy       # + 12-epoch LeNet-5 baseline and bn (ablab only)
    python benchmarks/train_speed.py --profile        # + where ablab's training step spends its time

Times are seconds per training epoch (training loop only) and per evaluation pass over the 10,000 test
images (the median of --eval-repeats passes). The machine is shared: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
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
from ablab.data.dataset import Dataset
from ablab.models import create_model
from ablab.train import TrainConfig, apply_variants, fit, load_checkpoint
from ablab.train.trainer import evaluate, prepare_split

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


def reference_train_epoch(model: torch.nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer) -> float:
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    t0 = time.perf_counter()
    for batch, (X, y) in enumerate(loader):
        pred = model(X)
        loss = loss_fn(pred, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch % 100 == 0:
            loss.item()  # the tutorial prints the loss every 100 batches
    return time.perf_counter() - t0


def reference_test(model: torch.nn.Module, loader: DataLoader) -> tuple[float, float, float]:
    loss_fn = torch.nn.CrossEntropyLoss()
    model.eval()
    size, num_batches = len(loader.dataset), len(loader)  # type: ignore[arg-type]
    test_loss, correct = 0.0, 0.0
    t0 = time.perf_counter()
    with torch.no_grad():
        for X, y in loader:
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    return time.perf_counter() - t0, test_loss / num_batches, correct / size


def run_reference(model_name: str, ds: Dataset, epochs: int, seed: int, eval_repeats: int) -> dict[str, Any]:
    mean, std = ds.mean[0], ds.std[0]
    train = CourseFashionMNIST(ds.train.x[:, 0].numpy(), ds.train.y.numpy(), mean, std)
    test = CourseFashionMNIST(ds.test.x[:, 0].numpy(), ds.test.y.numpy(), mean, std)
    torch.manual_seed(seed)
    model = create_model(model_name, ds.input_shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_loader = DataLoader(train, batch_size=64, shuffle=True)
    test_loader = DataLoader(test, batch_size=64)
    epoch_times = [reference_train_epoch(model, train_loader, optimizer) for _ in range(epochs)]
    evals = [reference_test(model, test_loader) for _ in range(eval_repeats)]
    return {"epoch_s": statistics.median(epoch_times), "eval_s": statistics.median(e[0] for e in evals),
            "test_acc": evals[0][2]}


# ---------------------------------------------------------------------------------------------- ablab


def run_ablab(model_name: str, ds: Dataset, epochs: int, seed: int, eval_repeats: int) -> dict[str, Any]:
    config = TrainConfig(model=model_name, dataset=ds.name, epochs=epochs, batch_size=64, optimizer="adam",
                         lr=1e-3, seed=seed, init_seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(config, dataset=ds, out_dir=tmp)
        model, _, meta = load_checkpoint(result.checkpoint or "")
    x, y = prepare_split(ds.test, ds.mean, ds.std)
    times = []
    for _ in range(eval_repeats):
        t0 = time.perf_counter()
        _, acc = evaluate(model, x, y, config.eval_batch_size)
        times.append(time.perf_counter() - t0)
    assert acc == result.final["test_acc"], (acc, result.final["test_acc"])
    return {"epoch_s": statistics.median(h["train_time_s"] for h in result.history), "eval_s": statistics.median(times),
            "test_acc": result.final["test_acc"], "threads": result.threads}


def accuracy_check(ds: Dataset, seed: int) -> None:
    print("\n12 epochs, LeNet-5, Adam 1e-3, batch 64, 90/10 split, seed", seed, "(ablab; n=1 run each)")
    for variant, target in (("baseline", 0.89), ("bn", 0.90)):
        cfg = apply_variants(TrainConfig(model="lenet5", epochs=12, seed=seed), [variant])
        t0 = time.perf_counter()
        r = fit(cfg, dataset=ds)
        best = r.history[(r.best_epoch or 1) - 1]
        print(f"  {variant:<9} test acc {r.final['test_acc']:.4f} (target >= {target:.2f}: "
              f"{'ok' if r.final['test_acc'] >= target else 'MISSED'}); best-val epoch {r.best_epoch} "
              f"test {best['test_acc']:.4f}; {time.perf_counter() - t0:.0f} s")


def profile_step(ds: Dataset, model_name: str, seed: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    small = load_dataset("fashion-mnist", limit=6400)  # 100 steps
    cfg = TrainConfig(model=model_name, epochs=1, seed=seed, val_fraction=0.1)
    fit(cfg, dataset=small)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit(cfg, dataset=small)
    print(f"\nprofile of ablab's fit, {model_name}, 100 training steps + evaluation:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lenet5,mlp:1000,10", help="comma list; 'mlp:1000,10' stays one name")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per side (median epoch time is reported)")
    ap.add_argument("--eval-repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both sides (default: all)")
    ap.add_argument("--accuracy", action="store_true", help="also the 12-epoch LeNet-5 baseline/bn check")
    ap.add_argument("--profile", action="store_true", help="also profile ablab's training step")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [m for m in args.models.replace("mlp:1000,10", "mlp:1000;10").split(",") if m]
    models = [m.replace(";", ",") for m in models]

    ds = load_dataset("fashion-mnist", val_fraction=0.1)
    print(f"Fashion-MNIST {len(ds.train)} train / {len(ds.val)} val / {len(ds.test)} test; batch 64; Adam 1e-3; "
          f"{args.epochs} epoch(s); torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    rows = []
    for name in models:
        ref = run_reference(name, ds, args.epochs, args.seed, args.eval_repeats)
        ours = run_ablab(name, ds, args.epochs, args.seed, args.eval_repeats)
        rows.append((name, ref, ours))
        print(f"\n{name}")
        print(f"  train epoch   reference {ref['epoch_s']:7.2f} s   ablab {ours['epoch_s']:6.2f} s   "
              f"speed-up {ref['epoch_s'] / ours['epoch_s']:5.2f}x")
        print(f"  eval 10,000   reference {ref['eval_s']:7.3f} s   ablab {ours['eval_s']:6.3f} s   "
              f"speed-up {ref['eval_s'] / ours['eval_s']:5.2f}x")
        print(f"  test acc after {args.epochs} epoch(s): reference {ref['test_acc']:.4f}   "
              f"ablab {ours['test_acc']:.4f}")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end (2 = both cores busy with other work)")
    if args.accuracy:
        accuracy_check(ds, args.seed)
    if args.profile:
        profile_step(ds, models[0], args.seed)


if __name__ == "__main__":
    main()
