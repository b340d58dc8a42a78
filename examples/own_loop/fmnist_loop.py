"""A course-style training loop for LeNet5V1 on Fashion-MNIST, run by ablab as a study (docs/own-loop.md).

Everything here is plain PyTorch: ablab passes `run` (config, seed, device) and records what `run.log`
gets; `run.save_state` / `run.load_state` let a killed study continue from the last finished epoch.
"""

import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from mymodel import LeNet5V1  # tests/models/mymodel.py, copied beside this file or on PYTHONPATH


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(folder, split):
    x = read_idx(Path(folder) / f"{split}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(Path(folder) / f"{split}-labels-idx1-ubyte.gz").astype(np.int64)
    x = (x - 0.2860) / 0.3530  # Fashion-MNIST mean and std
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)  # (N, 1, 28, 28), (N,)


def accuracy(model, loader, device):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / total


def train(run):
    cfg, device = run.config, run.device
    x, y = load(cfg["data"], "train")
    x_test, y_test = load(cfg["data"], "t10k")
    split = torch.Generator().manual_seed(0)  # the same 50k/10k split for every run
    perm = torch.randperm(len(x), generator=split)
    tr, va = perm[:50_000], perm[50_000:]
    train_loader = DataLoader(TensorDataset(x[tr], y[tr]), batch_size=cfg["batch_size"], shuffle=True)
    val_loader = DataLoader(TensorDataset(x[va], y[va]), batch_size=1000)
    test_loader = DataLoader(TensorDataset(x_test, y_test), batch_size=1000)

    model = LeNet5V1(use_batch_norm=cfg["batch_norm"]).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9)
    start = 0
    state = run.load_state()  # None on a fresh run
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]

    for epoch in range(start, cfg["epochs"]):
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        for xb, yb in train_loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(yb)
        run.log(epoch=epoch + 1, loss=total_loss / seen, train_acc=correct / seen,
                val_acc=accuracy(model, val_loader, device), test_acc=accuracy(model, test_loader, device))
        run.save_state({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1})
