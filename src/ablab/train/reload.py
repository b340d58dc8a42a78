"""Rebuilding a checkpoint's model and re-evaluating it — running only code the user names.

A checkpoint of a preset or spec model rebuilds from the stored spec: data, no code. A checkpoint of your
own model records a *reference* to code (``mymodel.py:LeNet5V1``, its arguments and the SHA-256 of its
source). A folder someone sent you must not be able to run code by naming it, so ablab imports that code
only when you say so:
* ``model_ref`` (``ablab eval CKPT --model mymodel.py:LeNet5V1``): your file, which must have the SHA-256
  recorded at training (a changed file is refused unless ``trust_code`` is also given);
* ``trust_code=True`` (``--trust-code``): import the recorded reference, in the spirit of
  ``trust_remote_code``.

Either way the reference resolves only to an ``nn.Module`` class or a factory function of the user's own
(:mod:`ablab.models.resolve`), and nothing inside the checkpoint's folder is importable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ablab.models.resolve import (
    ModelRefError,
    in_process,
    is_reference,
    parse_reference,
    shown,
    source_file,
    source_sha256,
)
from ablab.spec import Spec, SpecError
from ablab.train.checkpoint import (
    META,
    WEIGHTS,
    CheckpointError,
    _brief,
    _folder,
    check_state,
    read_meta,
    verify,
)
from ablab.train.config import ConfigError, TrainConfig

SPLITS = ("test", "val", "train")


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




def recorded_reference(meta: dict[str, Any]) -> str | None:
    """The model reference to import for a checkpoint: the recorded source file's absolute path when
    there is one (so ``eval`` works from any folder), else the reference as configured."""

    model = meta.get("model")
    if not isinstance(model, dict):
        return None
    ref = model["reference"]
    path = (model.get("source") or {}).get("path")
    if is_reference(ref) and parse_reference(ref).is_file and path:
        return f"{path}:{parse_reference(ref).name}"
    return ref  # type: ignore[no-any-return]


def load_checkpoint(path: str | Path, *, fast: bool = True, model_ref: str | None = None, trust_code: bool = False,
                    notes: list[str] | None = None, device: str | torch.device = "cpu"
                    ) -> tuple[torch.nn.Module, TrainConfig, dict[str, Any]]:
    """(model in eval mode on ``device``, its TrainConfig, the whole config.json) from a checkpoint
    folder. The weights are read to the CPU and moved, so a checkpoint trained anywhere loads anywhere.

    ``fast``: swap in the faster tanh/pooling modules training used (ablab.train.fast), so a spec model
    computes bit for bit what was evaluated during training. ``model_ref``: import this reference
    instead of the recorded one (the model moved); ``trust_code``: import the recorded reference. A
    checkpoint of your own model needs one of the two (see the module docstring). Warnings (unverified old
    format, a changed source imported under ``trust_code``) are appended to ``notes``.
    """
    from safetensors.torch import load_file

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
    if reference is not None:
        _may_import(folder, meta, reference, model_ref, trust_code, notes)
    try:
        with torch.random.fork_rng(devices=[]):  # building draws initial weights: leave the caller's RNG
            if reference is not None:
                rm = run_model(config, (), reference=reference, forbid=folder.resolve())
            else:
                rm = _spec_model(meta["spec"], folder, fast and torch.device(device).type == "cpu")
    except (ConfigError, SpecError, ModelRefError) as e:
        raise CheckpointError(str(e)) from None
    try:
        state = load_file(str(folder / WEIGHTS))
    except Exception as e:  # SafetensorError, OSError, a header that is not what it claims
        raise CheckpointError(f"{folder / WEIGHTS}: unreadable safetensors file: {e}") from None
    check_state(rm.model, state, str(folder))
    try:
        rm.model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError) as e:  # e.g. a state-dict hook that writes keys it does not read
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{folder / WEIGHTS}: {type(rm.model).__name__}.load_state_dict refuses the saved "
                              f"tensors ({' '.join(x.strip() for x in first[:2])}); does a state-dict hook of the "
                              "model add keys it does not load back?") from None
    rm.model.to(device)
    rm.model.eval()
    return rm.model, config, meta


def _may_import(folder: Path, meta: dict[str, Any], reference: str, model_ref: str | None, trust_code: bool,
                notes: list[str]) -> None:
    """Refuse to import a checkpoint's model code unless the user named it (``model_ref``, with the recorded
    source) or trusts the checkpoint (``trust_code``)."""

    if in_process(reference):  # a class this process defined (a notebook's): nothing is imported
        return
    file = source_file(reference)
    if file is not None and file.resolve().is_relative_to(folder.resolve()):
        raise CheckpointError(f"{shown(reference)}: refusing to import code from inside the checkpoint folder "
                              f"{folder}; pass the model's source with --model FILE.py:NAME")
    recorded_ref = (meta.get("model") or {}).get("reference", reference)
    recorded = ((meta.get("model") or {}).get("source") or {}).get("sha256")
    if model_ref is None and not trust_code:
        raise CheckpointError(f"{folder}: the model is your own code ({shown(str(recorded_ref))}); ablab imports "
                              "no code a checkpoint names on its own. Name it: --model FILE.py:NAME (checked against "
                              "the SHA-256 recorded at training), or pass --trust-code to import the recorded "
                              "reference (Python: model_ref= / trust_code=True)")
    now = source_sha256(reference)
    if recorded and now and recorded != now:
        if model_ref is not None and not trust_code:
            raise CheckpointError(f"--model {shown(model_ref)}: its source has SHA-256 {now[:12]}…, not the "
                                  f"{recorded[:12]}… recorded at training: it is not the code these weights were "
                                  "trained with. Pass the file as it was, or add --trust-code to evaluate with it "
                                  "anyway")
        notes.append(f"the source of {shown(reference)} changed since training (SHA-256 {now[:12]}… vs recorded "
                     f"{recorded[:12]}…); the weights may no longer mean what they meant")
    elif model_ref is not None and recorded and now is None:
        raise CheckpointError(f"--model {shown(model_ref)}: its source file cannot be read to check it against the "
                              "SHA-256 recorded at training; name a file (FILE.py:NAME), or pass --trust-code")


def _spec_model(spec_doc: Any, folder: Path, fast: bool) -> Any:
    from ablab.models import build
    from ablab.train.model import RunModel

    spec = Spec.from_dict(spec_doc, where=f"{folder / META}: spec")
    model = build(spec)
    if fast:
        from ablab.train.fast import accelerate

        accelerate(model)
    return RunModel(model, spec.to_string(), spec)


def evaluate_checkpoint(path: str | Path, *, data_dir: str | Path | None = None, device: str | None = None,
                        model_ref: str | None = None, trust_code: bool = False, dataset: Any = None,
                        data: str | None = None, split: str = "test", per_class: bool = False) -> dict[str, Any]:
    """Test loss and accuracy of a checkpoint on its dataset's test split — the same normalization
    constants, batch size, threads and evaluation code as training, hence the same number, bit for bit,
    on the device it was trained on (``device``: default the recorded one when available here, else
    ``auto``) — compared with the recorded accuracy: ``reproduced`` is True on an exact match, None when
    nothing was recorded; a mismatch raises :class:`CheckpointError`. ``notes``: warnings for the user.

    ``dataset``: a :class:`~ablab.data.Dataset` to evaluate on instead of reloading the one in the
    config — needed for a model trained on your own tensors (``Dataset.from_tensors``), which no config
    can reload. Its class names and input shape must match; when its test split is the one trained
    with (same SHA-256 as recorded), the recorded accuracy must be reproduced, otherwise the number is
    reported and ``reproduced`` is None, with a note saying why.

    ``data``: a dataset source (``fashion-mnist``, ``npz:mine.npz``, ``folder:photos/``...) to score the
    checkpoint on instead, loaded with the run's split settings and checked the same way. ``split``:
    ``test`` (default), ``val`` or ``train`` — the recorded accuracy is compared only on the test split it
    was measured on. ``per_class``: add the confusion matrix (``confusion``, ``[true][predicted]`` counts)
    and ``per_class`` (one row per class: n, correct, accuracy)."""
    from ablab.data.load import load_dataset_for
    from ablab.train.device import DeviceError, device_info, device_settings, eval_batch_size, resolve_device
    from ablab.train.runtime import cpu_settings, evaluate_confusion, prepare_split

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
    model, config, meta = load_checkpoint(path, model_ref=model_ref, trust_code=trust_code, notes=notes, device=where)
    folder = _folder(path)
    norm = meta["normalization"]
    trained_on = meta.get("dataset") or {}
    same_test = True  # is the recorded accuracy comparable with this evaluation?
    if split not in SPLITS:
        raise CheckpointError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if dataset is not None and data is not None:
        raise CheckpointError("give the dataset either as data= (a source) or as dataset= (an ablab Dataset)")
    if data is not None:
        dataset = load_dataset_for(config.replace(dataset=data, **({"data_dir": str(data_dir)} if data_dir else {})))
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
    x, y = prepare_split(getattr(ds, split), tuple(norm["mean"]), tuple(norm["std"]), where)
    with cpu_settings(int(meta.get("threads") or torch.get_num_threads())), device_settings(where):  # as trained
        loss, acc, confusion = evaluate_confusion(model, x, y, eval_batch_size(config.eval_batch_size, where),
                                                  len(ds.classes) if per_class else None)
    recorded = (meta.get("metrics") or {}).get("test_acc")
    n = int(y.shape[0])
    reproduced: bool | None = None
    if split != "test" and recorded is not None:
        notes.append(f"scored on the {split} split: the recorded test accuracy is not compared")
    if recorded is not None and acc is not None and same_test and split == "test":
        if acc != recorded:
            raise CheckpointError(
                f"{folder}: test accuracy {acc:.4f} ({round(acc * n)}/{n}) does not reproduce the recorded "
                f"{recorded:.4f} ({round(recorded * n)}/{n}): the weights, the model code, the data or the "
                "software changed since training")
        reproduced = True
    out = {"test_loss": loss, "test_acc": acc, "n": n, "dataset": ds.source, "split": split,
           "device": device_info(where)["device"], "recorded_acc": recorded, "reproduced": reproduced, "notes": notes}
    if per_class:
        out["classes"] = list(ds.classes)
        out["confusion"] = confusion
        out["per_class"] = per_class_rows(list(ds.classes), confusion)
    return out


def per_class_rows(classes: list[str], confusion: list[list[int]] | None) -> list[dict[str, Any]]:
    """One row per class of a confusion matrix: its samples, how many were right, and the accuracy (None
    for a class without samples in the split)."""
    if confusion is None:
        return []
    return [{"class": c, "n": sum(confusion[k]), "correct": confusion[k][k],
             "accuracy": confusion[k][k] / sum(confusion[k]) if sum(confusion[k]) else None}
            for k, c in enumerate(classes)]
