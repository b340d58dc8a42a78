"""Checkpoints: a folder with ``model.safetensors`` (weights and batch-norm buffers) and ``config.json``
(the TrainConfig, the trained spec, the normalization constants, versions and final metrics).

Nothing on the load path can execute code: safetensors holds raw tensors, JSON holds data; ``torch.load``
(pickle) is never used. The model is rebuilt from the stored spec, and every stored tensor is checked
by name and shape against it before any weight is copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ablab.errors import UserError
from ablab.train.config import ConfigError, TrainConfig

FORMAT = "ablab-checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
META = "config.json"


class CheckpointError(UserError):
    """A checkpoint that is missing, malformed, or does not fit the architecture it claims."""


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> Path:
    """Write ``path/model.safetensors`` and ``path/config.json``; returns the folder."""
    from safetensors.torch import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}  # any device
    save_file(state, str(folder / WEIGHTS), metadata={"format": FORMAT})
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    (folder / META).write_text(json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n")
    return folder


def _folder(path: str | Path) -> Path:
    p = Path(path)
    if p.is_file() and p.name in (WEIGHTS, META):
        p = p.parent
    if not p.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint folder (expected a folder with {WEIGHTS} and {META})")
    for name in (WEIGHTS, META):
        if not (p / name).is_file():
            raise CheckpointError(f"{p}: missing {name}")
    return p


def read_meta(path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``config.json``, checked for the keys the loader needs."""
    folder = _folder(path)
    meta_path = folder / META
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{meta_path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not an ablab checkpoint (expected \"format\": \"{FORMAT}\")")
    for key in ("config", "spec", "normalization"):
        if key not in meta:
            raise CheckpointError(f"{meta_path}: missing key '{key}'")
    return meta


def check_state(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Refuse a state whose tensor names or shapes differ from the model's, listing every mismatch."""
    expected = model.state_dict()
    problems: list[str] = []
    for name, t in expected.items():
        if name not in state:
            problems.append(f"{name}: missing from checkpoint (model expects {tuple(t.shape)})")
        elif tuple(state[name].shape) != tuple(t.shape):
            problems.append(f"{name}: checkpoint {tuple(state[name].shape)}, model {tuple(t.shape)}")
        elif state[name].dtype != t.dtype:
            problems.append(f"{name}: checkpoint dtype {state[name].dtype}, model {t.dtype}")
    for name in state:
        if name not in expected:
            problems.append(f"{name}: in checkpoint {tuple(state[name].shape)}, not in the model")
    if problems:
        raise CheckpointError(
            f"{where}: the weights do not match the architecture ({len(problems)} mismatched tensor"
            f"{'s' if len(problems) > 1 else ''}):\n  " + "\n  ".join(problems)
        )


def load_checkpoint(path: str | Path, *, fast: bool = True, device: str | torch.device = "cpu"
                    ) -> tuple[nn.Sequential, TrainConfig, dict[str, Any]]:
    """(model in eval mode on ``device``, its TrainConfig, the whole config.json) from a checkpoint
    folder. The weights are read to the CPU and moved, so a checkpoint trained anywhere loads anywhere.

    ``fast`` (CPU only, as in training): swap in the faster tanh/pooling modules training used
    (ablab.train.fast), so the model computes bit for bit what was evaluated during training; ``False``
    gives the builder's plain modules (same weights, same names; outputs equal to ~1e-7).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ablab.models import build
    from ablab.spec import Spec, SpecError

    folder = _folder(path)
    meta = read_meta(folder)
    try:
        config = TrainConfig.from_dict(meta["config"], where=f"{folder / META}: config")
        spec = Spec.from_dict(meta["spec"], where=f"{folder / META}: spec")
        model = build(spec)
    except (ConfigError, SpecError) as e:
        raise CheckpointError(str(e)) from None
    try:
        state = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{folder / WEIGHTS}: unreadable safetensors file: {e}") from None
    check_state(model, state, str(folder))
    model.load_state_dict(state, strict=True)
    device = torch.device(device)
    if fast and device.type == "cpu":
        from ablab.train.fast import accelerate

        accelerate(model)
    model.to(device)
    model.eval()
    return model, config, meta


def evaluate_checkpoint(path: str | Path, *, data_dir: str | Path | None = None,
                        device: str | None = None) -> dict[str, Any]:
    """Test loss and accuracy of a checkpoint on its dataset's test split: the same normalization
    constants, batch size and evaluation code as training, hence the same number, bit for bit, on the
    device it was trained on. ``device`` (auto, cpu, cuda[:N], mps): default, the recorded training
    device when it is available here, else ``auto``; on another device the number may differ in the
    last digits (other kernels)."""
    from ablab.data.load import load_dataset_for
    from ablab.train.device import DeviceError, device_info, device_settings, eval_batch_size, resolve_device
    from ablab.train.runtime import cpu_settings, evaluate, prepare_split

    meta = read_meta(path)
    if device is None:
        recorded = (meta.get("device") or {}).get("device", "cpu")
        try:
            where = resolve_device(str(recorded))
        except DeviceError:
            where = resolve_device("auto")
    else:
        where = resolve_device(device)
    model, config, meta = load_checkpoint(path, device=where)
    norm = meta["normalization"]
    trained_on = meta.get("dataset") or {}
    if trained_on.get("format") in ("tensors", "torch"):
        raise CheckpointError(f"{path}: trained on in-memory data '{trained_on.get('name')}', which cannot be "
                              "reloaded from its config; evaluate the model on it in Python (ablab.train.evaluate)")
    ds = load_dataset_for(config.replace(data_dir=str(data_dir)) if data_dir else config)
    x, y = prepare_split(ds.test, tuple(norm["mean"]), tuple(norm["std"]), where)
    with cpu_settings(int(meta.get("threads") or torch.get_num_threads())), device_settings(where):  # as trained
        loss, acc = evaluate(model, x, y, eval_batch_size(config.eval_batch_size, where))
    return {"test_loss": loss, "test_acc": acc, "n": int(y.shape[0]), "dataset": ds.source,
            "device": device_info(where)["device"]}
