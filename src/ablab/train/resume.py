"""Epoch-level resume: after every finished epoch the run's whole state goes to ``OUT/resume/epoch-NNNN/``
(written to a temporary folder, then renamed: a killed process never leaves a half-written state; not
fsynced: after a power cut a damaged state is ignored and the run starts over), and older
epochs' states are removed. ``fit(..., out_dir=OUT)`` on a folder holding a state of the *same* config
(its hash) continues after that epoch and ends with exactly the metrics of an uninterrupted run; the
finished run removes the folder (the final checkpoint stays, as always).

What a state holds — everything the next epoch reads:

* ``model.safetensors``: weights and batch-norm buffers;
* ``optimizer.safetensors``: the optimizer's per-parameter state (Adam's step, exp_avg, exp_avg_sq;
  SGD's momentum buffers); the learning-rate schedule is a pure function of the step (ablab.train.optim),
  so the step count is the scheduler's state;
* ``rng.safetensors``: the global CPU generator (dropout masks), the run's data generator (shuffling and
  augmentation) and, on CUDA, the device's generator;
* ``kept.safetensors``: the best-validation weights under early stopping;
* ``state.json``: the config hash, epoch, step, history, best epoch and accuracy.

Nothing is unpickled: safetensors holds tensors, JSON holds data. This module imports torch only in
its functions, so the study runner can look for states without it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ablab.writing import save_tensors

RESUME_DIR = "resume"
FORMAT = 1


def has_state(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds a finished epoch's state (torch-free; the study runner asks)."""
    folder = Path(out_dir) / RESUME_DIR
    return folder.is_dir() and any(p.name.startswith("epoch-") for p in folder.iterdir())


def latest(out_dir: str | Path) -> Path | None:
    folder = Path(out_dir) / RESUME_DIR
    if not folder.is_dir():
        return None
    states = sorted(p for p in folder.iterdir() if p.name.startswith("epoch-") and (p / "state.json").is_file())
    return states[-1] if states else None


def save(out_dir: str | Path, run: Any, state: Any) -> Path:
    """Write the state after epoch ``len(state.history)`` atomically; remove older ones."""
    import torch

    epoch = len(state.history)
    root = Path(out_dir) / RESUME_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"epoch-{epoch:04d}"
    tmp = root / f".epoch-{epoch:04d}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()

    def cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}

    try:  # a full disk: an OSError naming the file (one error line), and no partial state left
        save_tensors(cpu(run.model.state_dict()), tmp / "model.safetensors")
        save_tensors(cpu(run.optimizer.state_dict()), tmp / "optimizer.safetensors")
        rng = {"cpu": torch.get_rng_state(), "data": run.data_gen.get_state()}
        if run.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(run.device)
        save_tensors(cpu(rng), tmp / "rng.safetensors")
        kept = None if state.kept is None else ("file" if run.config.early_stopping else "last")
        if kept == "file":
            save_tensors(cpu(state.kept), tmp / "kept.safetensors")
        doc = {"kept": kept, "format": FORMAT, "config_hash": run.config.config_hash(), "epoch": epoch,
               "step": state.step, "history": state.history, "best_epoch": state.best_epoch,
               "best_acc": state.best_acc, "stopped": bool(state.stopped)}
        (tmp / "state.json").write_text(json.dumps(doc, allow_nan=True) + "\n")
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            e.filename = str(final)  # the state being written, not the temporary file just removed
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in root.iterdir():
        if old != final and (old.name.startswith("epoch-") or old.name.endswith(".tmp")):
            shutil.rmtree(old, ignore_errors=True)
    return final


def restore(out_dir: str | Path, run: Any, state: Any) -> int:
    """Load the latest state of this config into ``run`` / ``state``; returns its epoch (0: none, or
    one of another config, which is left alone and overwritten by this run's first epoch)."""
    import torch
    from safetensors.torch import load_file

    folder = latest(out_dir)
    if folder is None:
        return 0
    try:
        doc = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        return 0
    if doc.get("format") != FORMAT or doc.get("config_hash") != run.config.config_hash():
        return 0
    try:
        tensors = {name: load_file(str(folder / f"{name}.safetensors")) for name in ("model", "optimizer", "rng")}
        if doc.get("kept") == "file":
            tensors["kept"] = load_file(str(folder / "kept.safetensors"))
    except Exception:  # noqa: BLE001 - a truncated or damaged state (e.g. after a power cut): start over
        return 0
    model_state = tensors["model"]
    run.model.load_state_dict({k: v.to(run.device) for k, v in model_state.items()}, strict=True)
    run.optimizer.load_state_dict(tensors["optimizer"])
    rng = tensors["rng"]
    torch.set_rng_state(rng["cpu"])
    run.data_gen.set_state(rng["data"])
    if run.device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], run.device)
    state.history = list(doc["history"])
    state.step = int(doc["step"])
    state.best_epoch = doc["best_epoch"]
    state.best_acc = float(doc["best_acc"])
    state.stopped = bool(doc.get("stopped"))
    if doc.get("kept") == "file":
        state.kept = {k: v.to(run.device) for k, v in tensors["kept"].items()}
    elif doc.get("kept") == "last":  # without early stopping the kept weights are the last epoch's
        state.kept = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    return int(doc["epoch"])


def clear(out_dir: str | Path) -> None:
    """Remove the resume states (the run finished; its final checkpoint is what stays)."""
    shutil.rmtree(Path(out_dir) / RESUME_DIR, ignore_errors=True)


def pack(folder: str | Path) -> dict[str, Any]:
    """A saved state as ``{"name": "epoch-NNNN", "files": {file name: bytes}}``: how an executor carries
    it to another machine (the Ray executor streams each epoch's state to the driver)."""
    folder = Path(folder)
    return {"name": folder.name, "files": {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}}


def pack_latest(out_dir: str | Path) -> dict[str, Any] | None:
    folder = latest(out_dir)
    return pack(folder) if folder is not None else None


def install(out_dir: str | Path, packed: dict[str, Any]) -> Path:
    """Write a :func:`pack` ed state into ``out_dir/resume/`` atomically, replacing older states."""
    name = str(packed["name"])
    if not name.startswith("epoch-") or "/" in name or any("/" in f or f.startswith(".") for f in packed["files"]):
        raise ValueError(f"not a resume state: {name!r}")
    root = Path(out_dir) / RESUME_DIR
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for fname, data in packed["files"].items():
        (tmp / fname).write_bytes(data)
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in root.iterdir():
        if old != final and old.name.startswith("epoch-") and old.name < final.name:
            shutil.rmtree(old, ignore_errors=True)
    return final
