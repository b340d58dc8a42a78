"""Checkpoints that vouch for themselves: a folder with ``model.safetensors`` (weights and batch-norm
buffers) and ``config.json`` (the TrainConfig, the trained spec *or* the model reference with its
arguments and the SHA-256 of its source, the normalization constants, versions, final metrics).

``config.json`` records the SHA-256 of the weights file and of its own canonical content (sorted keys,
no whitespace, ``meta_sha256`` left out), so an edit to either file is refused by name. Every value
the evaluation depends on is type- and range-checked (finite normalization constants, positive std,
one per input channel), and ``evaluate_checkpoint`` compares the accuracy it measures with the
recorded one: equal, bit for bit, is "reproduced"; anything else is an error.

Nothing on the load path executes code from the checkpoint: safetensors holds raw tensors, JSON holds
data, ``torch.load`` (pickle) is never used. A spec model is rebuilt from the stored spec; a model
reference is imported from the user's project (or ``--model``) — never from the checkpoint's own
folder, and only when the user names the code (``--model FILE.py:Name`` or ``--trust-code``, see
:mod:`ablab.train.reload`). Every stored tensor is checked by name and shape before any weight is copied.

This module writes and checks checkpoints; :mod:`ablab.train.reload` rebuilds and re-evaluates them.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, TypeGuard

import torch
from torch import nn

from ablab.errors import UserError
from ablab.reading import read_utf8
from ablab.writing import save_tensors

FORMAT = "ablab-checkpoint"
FORMAT_VERSION = 2  # 2: weights_sha256 + meta_sha256, model references
WEIGHTS = "model.safetensors"
META = "config.json"
MAX_META_BYTES = 1 << 20  # a config.json is a few KB; refuse anything past 1 MiB before parsing it


class CheckpointError(UserError):
    """A checkpoint that is missing, malformed, tampered with, or does not fit the architecture it claims."""


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def meta_digest(doc: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``doc`` without its ``meta_sha256`` key."""
    body = {k: v for k, v in doc.items() if k != "meta_sha256"}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def seal(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with ``meta_sha256`` set to its canonical digest."""
    return {**doc, "meta_sha256": meta_digest(doc)}


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any]) -> Path:
    """Write ``path/model.safetensors`` and ``path/config.json``; returns the folder."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    # any device, to the CPU; tied weights: safetensors refuses shared storage, so each name gets its own copy
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    save_tensors(state, folder / WEIGHTS, metadata={"format": FORMAT})  # a full disk: an OSError naming the file
    doc = seal({"format": FORMAT, "format_version": FORMAT_VERSION, **meta,
                "weights_sha256": _sha256_file(folder / WEIGHTS)})
    (folder / META).write_text(json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")
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
    """The checkpoint's ``config.json``, parsed and checked (types, ranges, its own digest)."""
    folder = _folder(path)
    meta_path = folder / META
    if meta_path.stat().st_size > MAX_META_BYTES:
        raise CheckpointError(f"{meta_path}: {meta_path.stat().st_size:,} bytes; a checkpoint's {META} is a few "
                              f"KB (limit {MAX_META_BYTES:,})")
    text = read_utf8(meta_path, MAX_META_BYTES, CheckpointError, "was it overwritten?")
    try:
        meta = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{meta_path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    except RecursionError:
        raise CheckpointError(f"{meta_path}: JSON nested too deeply") from None
    except ValueError as e:  # NaN / Infinity literals, huge integers
        raise CheckpointError(f"{meta_path}: invalid JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not an ablab checkpoint (expected \"format\": \"{FORMAT}\")")
    digest = meta.get("meta_sha256")
    if isinstance(digest, str) and meta_digest(meta) != digest:  # the root cause first: an edit
        raise CheckpointError(f"{meta_path}: its content changed since it was written (its SHA-256 no longer "
                              "matches the recorded meta_sha256); refusing to evaluate an edited checkpoint")
    _check_meta(meta, meta_path)
    return meta


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_meta(meta: dict[str, Any], where: Path) -> None:
    """Every value the loader and the evaluation read, checked by key, before anything is built."""
    def bad(key: str, expected: str) -> CheckpointError:
        value = meta
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None  # type: ignore[assignment]
        shown = json.dumps(value)[:80] if value is not None else "missing"
        return CheckpointError(f"{where}: {key}: expected {expected}, got {shown}")

    version = meta.get("format_version")
    if not _is_int(version) or not 1 <= version <= FORMAT_VERSION:
        raise bad("format_version", f"an integer 1..{FORMAT_VERSION} (a newer ablab wrote it?)")
    if not isinstance(meta.get("config"), dict):
        raise bad("config", "a table of TrainConfig fields")
    spec, model = meta.get("spec"), meta.get("model")
    if not isinstance(spec, dict) and not isinstance(model, dict):
        raise bad("spec", "the trained spec (or a \"model\" reference table)")
    if isinstance(model, dict):
        if not isinstance(model.get("reference"), str):
            raise bad("model.reference", "a model reference string")
        if not isinstance(model.get("args", {}), dict):
            raise bad("model.args", "a table of constructor arguments")
        src = model.get("source", {})
        if not isinstance(src, dict) or not all(v is None or isinstance(v, str) for v in src.values()):
            raise bad("model.source", "{path, sha256} strings")
    norm = meta.get("normalization")
    if not isinstance(norm, dict):
        raise bad("normalization", "a table {mean = [...], std = [...]}")
    ds = meta.get("dataset")
    channels = None
    if ds is not None:
        shape = ds.get("input_shape") if isinstance(ds, dict) else None
        if not isinstance(shape, list) or not shape or not all(_is_int(n) and 0 < n < 1 << 31 for n in shape):
            raise bad("dataset.input_shape", "a list of positive integers")
        if not isinstance(ds.get("classes", []), list) or not isinstance(ds.get("name", ""), str):
            raise bad("dataset", "{name, classes, input_shape}")
        channels = shape[0]
    for key in ("mean", "std"):
        v = norm.get(key)
        if not isinstance(v, list) or not v or not all(_is_num(x) and math.isfinite(x) for x in v):
            raise bad(f"normalization.{key}", "a non-empty list of finite numbers, one per input channel")
        if channels is not None and len(v) != channels:
            raise bad(f"normalization.{key}", f"{channels} value(s), one per input channel")
    if any(x <= 0 for x in norm["std"]):
        raise bad("normalization.std", "positive numbers (a std of 0 divides by zero)")
    if len(norm["mean"]) != len(norm["std"]):
        raise bad("normalization.std", f"as many values as normalization.mean ({len(norm['mean'])})")
    threads = meta.get("threads")
    if threads is not None and (not _is_int(threads) or not 1 <= threads <= 4096):
        raise bad("threads", "a positive integer")
    metrics = meta.get("metrics", {})
    if not isinstance(metrics, dict):
        raise bad("metrics", "a table of the final metrics")
    acc = metrics.get("test_acc")
    if acc is not None and not (_is_num(acc) and 0 <= acc <= 1):
        raise bad("metrics.test_acc", "an accuracy in [0, 1]")
    if version >= 2:
        for key in ("weights_sha256", "meta_sha256"):
            v = meta.get(key)
            if not isinstance(v, str) or len(v) != 64:
                raise bad(key, "a SHA-256 hex digest")


def _brief(items: list[Any]) -> str:
    return repr(items) if len(items) <= 6 else repr(items[:5])[:-1] + f", ... ({len(items)} in all)]"


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def verify(folder: Path, meta: dict[str, Any]) -> bool:
    """Check both recorded digests; False for a format-1 checkpoint, which has none."""
    if meta["format_version"] < 2:
        return False
    if meta_digest(meta) != meta["meta_sha256"]:
        raise CheckpointError(f"{folder / META}: its content changed since it was written (its SHA-256 no longer "
                              "matches the recorded meta_sha256); refusing to evaluate an edited checkpoint")
    if _sha256_file(folder / WEIGHTS) != meta["weights_sha256"]:
        raise CheckpointError(f"{folder / WEIGHTS}: the weights file changed since training (its SHA-256 does "
                              f"not match weights_sha256 in {META}); refusing weights from elsewhere")
    return True


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
