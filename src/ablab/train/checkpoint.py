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
folder. Every stored tensor is checked by name and shape before any weight is copied.
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
from ablab.train.config import ConfigError, TrainConfig

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
    from safetensors.torch import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    # any device, to the CPU; tied weights: safetensors refuses shared storage, so each name gets its own copy
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS), metadata={"format": FORMAT})
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


def _given_dataset_matches(path: str | Path, trained_on: dict[str, Any], ds: Any, notes: list[str]) -> bool:
    """Check a dataset passed to ``evaluate_checkpoint`` against the one recorded at training: the same
    input shape and class names (else CheckpointError); True when its test split is the recorded one
    (same SHA-256), so the recorded accuracy must be reproduced."""
    if not hasattr(ds, "test_sha256") or not hasattr(ds, "input_shape"):
        raise CheckpointError(f"dataset: expected an ablab Dataset, got {type(ds).__name__}; build one with "
                              "ablab.Dataset.from_tensors(x, y)")
    shape = trained_on.get("input_shape")
    if shape is not None and tuple(shape) != tuple(ds.input_shape):
        raise CheckpointError(f"{path}: trained on {'x'.join(map(str, shape))} images, but the dataset given has "
                              f"{'x'.join(map(str, ds.input_shape))}")
    classes = trained_on.get("classes")
    if classes is not None and list(classes) != list(ds.classes):
        raise CheckpointError(f"{path}: trained on the classes {_brief(classes)}, but the dataset given has "
                              f"{_brief(list(ds.classes))}")
    recorded = trained_on.get("test_sha256")
    if recorded is None:
        notes.append("the checkpoint records no digest of its test split: the recorded accuracy is not compared")
        return False
    if recorded != ds.test_sha256():
        notes.append("the dataset given has a different test split from the one trained with: the recorded "
                     "accuracy is not compared")
        return False
    return True


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


def recorded_reference(meta: dict[str, Any]) -> str | None:
    """The model reference to import for a checkpoint: the recorded source file's absolute path when
    there is one (so ``eval`` works from any folder), else the reference as configured."""
    from ablab.models.resolve import is_reference, parse_reference

    model = meta.get("model")
    if not isinstance(model, dict):
        return None
    ref = model["reference"]
    path = (model.get("source") or {}).get("path")
    if is_reference(ref) and parse_reference(ref).is_file and path:
        return f"{path}:{parse_reference(ref).name}"
    return ref  # type: ignore[no-any-return]


def load_checkpoint(path: str | Path, *, fast: bool = True, model_ref: str | None = None,
                    notes: list[str] | None = None, device: str | torch.device = "cpu"
                    ) -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """(model in eval mode on ``device``, its TrainConfig, the whole config.json) from a checkpoint
    folder. The weights are read to the CPU and moved, so a checkpoint trained anywhere loads anywhere.

    ``fast``: swap in the faster tanh/pooling modules training used (ablab.train.fast), so a spec model
    computes bit for bit what was evaluated during training. ``model_ref``: import this reference
    instead of the recorded one (the model moved). Warnings (the source changed since training,
    unverified old format) are appended to ``notes``.
    """
    from safetensors.torch import load_file

    from ablab.models.resolve import ModelRefError, is_reference, source_sha256
    from ablab.spec import SpecError
    from ablab.train.model import run_model

    notes = notes if notes is not None else []
    folder = _folder(path)
    meta = read_meta(folder)
    if not verify(folder, meta):
        notes.append(f"{folder}: a format-1 checkpoint records no SHA-256 of its files; it cannot be verified")
    try:
        config = TrainConfig.from_dict(meta["config"], where=f"{folder / META}: config")
    except (ConfigError, TypeError) as e:
        raise CheckpointError(str(e)) from None
    reference = model_ref or recorded_reference(meta)
    if model_ref is not None and not is_reference(model_ref):
        raise CheckpointError(f"--model {model_ref}: expected a model reference (path/file.py:Name or "
                              "package.module:Name)")
    if reference is None and is_reference(config.model):
        raise CheckpointError(f"{folder / META}: config.model is a model reference but \"model\" is missing")
    try:
        with torch.random.fork_rng(devices=[]):  # building draws initial weights: leave the caller's RNG
            if reference is not None:
                rm = run_model(config, (), reference=reference, forbid=folder.resolve())
            else:
                rm = _spec_model(meta["spec"], folder, fast and torch.device(device).type == "cpu")
    except (ConfigError, SpecError, ModelRefError) as e:
        raise CheckpointError(str(e)) from None
    if reference is not None:
        recorded = (meta["model"].get("source") or {}).get("sha256")
        now = source_sha256(reference)
        if recorded and now and recorded != now:
            notes.append(f"the source of {reference} changed since training (SHA-256 {now[:12]}… vs recorded "
                         f"{recorded[:12]}…); the weights may no longer mean what they meant")
    try:
        state = load_file(str(folder / WEIGHTS))
    except Exception as e:  # SafetensorError, OSError, a header that is not what it claims
        raise CheckpointError(f"{folder / WEIGHTS}: unreadable safetensors file: {e}") from None
    check_state(rm.model, state, str(folder))
    rm.model.load_state_dict(state, strict=True)
    rm.model.to(device)
    rm.model.eval()
    return rm.model, config, meta


def _spec_model(spec_doc: Any, folder: Path, fast: bool) -> Any:
    from ablab.models import build
    from ablab.spec import Spec
    from ablab.train.model import RunModel

    spec = Spec.from_dict(spec_doc, where=f"{folder / META}: spec")
    model = build(spec)
    if fast:
        from ablab.train.fast import accelerate

        accelerate(model)
    return RunModel(model, spec.to_string(), spec)


def evaluate_checkpoint(path: str | Path, *, data_dir: str | Path | None = None, device: str | None = None,
                        model_ref: str | None = None, dataset: Any = None) -> dict[str, Any]:
    """Test loss and accuracy of a checkpoint on its dataset's test split — the same normalization
    constants, batch size, threads and evaluation code as training, hence the same number, bit for bit,
    on the device it was trained on (``device``: default the recorded one when available here, else
    ``auto``) — compared with the recorded accuracy: ``reproduced`` is True on an exact match, None when
    nothing was recorded; a mismatch raises :class:`CheckpointError`. ``notes``: warnings for the user.

    ``dataset``: a :class:`~ablab.data.Dataset` to evaluate on instead of reloading the one in the
    config — needed for a model trained on your own tensors (``Dataset.from_tensors``), which no config
    can reload. Its class names and input shape must match; when its test split is the one trained
    with (same SHA-256 as recorded), the recorded accuracy must be reproduced, otherwise the number is
    reported and ``reproduced`` is None, with a note saying why."""
    from ablab.data.load import load_dataset_for
    from ablab.train.device import DeviceError, device_info, device_settings, eval_batch_size, resolve_device
    from ablab.train.runtime import cpu_settings, evaluate, prepare_split

    meta = read_meta(path)
    if device is None:
        recorded_dev = (meta.get("device") or {}).get("device", "cpu") if isinstance(meta.get("device"), dict) \
            else "cpu"
        try:
            where = resolve_device(str(recorded_dev))
        except DeviceError:
            where = resolve_device("auto")
    else:
        where = resolve_device(device)
    notes: list[str] = []
    model, config, meta = load_checkpoint(path, model_ref=model_ref, notes=notes, device=where)
    folder = _folder(path)
    norm = meta["normalization"]
    trained_on = meta.get("dataset") or {}
    same_test = True  # is the recorded accuracy comparable with this evaluation?
    if dataset is not None:
        ds = dataset
        same_test = _given_dataset_matches(path, trained_on, ds, notes)
    elif trained_on.get("format") in ("tensors", "torch"):
        raise CheckpointError(f"{path}: trained on in-memory data '{trained_on.get('name')}', which cannot be "
                              "reloaded from its config; pass it: evaluate_checkpoint(path, dataset=ds)")
    else:
        ds = load_dataset_for(config.replace(data_dir=str(data_dir)) if data_dir else config)
        if trained_on and (trained_on.get("name") != ds.name or tuple(trained_on["input_shape"]) != ds.input_shape):
            raise CheckpointError(f"{folder / META}: config.dataset {config.dataset!r} gives {ds.name} "
                                  f"{'x'.join(map(str, ds.input_shape))}, but the model was trained on "
                                  f"{trained_on.get('name')} {'x'.join(map(str, trained_on['input_shape']))}")
    if len(norm["mean"]) != ds.input_shape[0]:
        raise CheckpointError(f"{folder / META}: normalization.mean: expected {ds.input_shape[0]} value(s), one per "
                              f"input channel of {ds.name}, got {len(norm['mean'])}")
    x, y = prepare_split(ds.test, tuple(norm["mean"]), tuple(norm["std"]), where)
    with cpu_settings(int(meta.get("threads") or torch.get_num_threads())), device_settings(where):  # as trained
        loss, acc = evaluate(model, x, y, eval_batch_size(config.eval_batch_size, where))
    recorded = (meta.get("metrics") or {}).get("test_acc")
    n = int(y.shape[0])
    reproduced: bool | None = None
    if recorded is not None and acc is not None and same_test:
        if acc != recorded:
            raise CheckpointError(
                f"{folder}: test accuracy {acc:.4f} ({round(acc * n)}/{n}) does not reproduce the recorded "
                f"{recorded:.4f} ({round(recorded * n)}/{n}): the weights, the model code, the data or the "
                "software changed since training")
        reproduced = True
    return {"test_loss": loss, "test_acc": acc, "n": n, "dataset": ds.source, "device": device_info(where)["device"],
            "recorded_acc": recorded, "reproduced": reproduced, "notes": notes}
