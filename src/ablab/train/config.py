"""The training config: one typed dataclass, every field documented, validated on construction.

All hyper-parameters of a run live here (with units in the comments), so a run is fully described by
``config.to_dict()`` — that dict is what checkpoints, the run store and study files hold. Layer and
optimizer names are strings so the config serializes to JSON/TOML unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ablab.data.catalog import list_datasets
from ablab.errors import UserError
from ablab.models.resolve import ModelRefError, is_reference, reference_of, shown
from ablab.registry import did_you_mean

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
DROPOUT_PLACEMENTS = ("fc", "conv", "all")
KERNELS = ("eager", "compiled")
TRAIN_METRICS = ("running", "clean")
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


class ConfigError(UserError, ValueError):
    """A training config with an unknown key, a wrong type or an impossible value."""


Check = tuple[Callable[[Any], bool], str]  # (is the value allowed?, what is expected)
POSITIVE: Check = (lambda v: v >= 1, "a positive integer")
POSITIVE_OR_NONE: Check = (lambda v: v is None or v >= 1, "a positive integer or none")
FRACTION: Check = (lambda v: 0 <= v < 1, "a number in [0, 1)")
NON_NEGATIVE: Check = (lambda v: v >= 0, "a number >= 0")


def _f(default: Any, help: str, *, choices: tuple[str, ...] | None = None, flag: str | None = None,
       check: Check | None = None) -> Any:
    """A config field with its documentation and its rule as metadata: ``help`` (one sentence, units
    included), ``choices`` (the allowed strings), ``flag`` (the CLI option, when not ``--field-name``) and
    ``check`` (the range it must lie in). The ``train`` command's options are generated from these
    (ablab.cli.options) and ``TrainConfig`` validates every field by its ``check``."""
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = choices
    if flag is not None:
        meta["flag"] = flag
    if check is not None:
        meta["check"] = check
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run (besides the code version)."""

    # --- what to train, on what
    model: str = _f("lenet5", "Preset (lenet5, lenet5-modern, cifar-lenet, mlp:H1,...,OUT), spec string or spec "
                    "file, or your own nn.Module: path/file.py:Name or package.module:Name (in Python also the "
                    "class or factory itself).")
    model_args: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False, metadata={
        "help": "Constructor arguments of a model reference, e.g. {use_dropout = true} (TOML/JSON values).",
        "flag": "--model-arg"})
    dataset: str = _f("fashion-mnist", f"Dataset: {', '.join(list_datasets())} (synthetic[:...] takes options); "
                      "your own files: idx:DIR, npz:FILE, folder:DIR (docs/own-data.md).", flag="--data")
    data_dir: str | None = _f(None, "Folder holding the dataset files (default: ABLAB_DATA, cache, system places).")
    val_fraction: float = _f(0.1, "Share of the official training set held out for validation (0.1 = 90/10).",
                             check=(FRACTION[0], "a fraction in [0, 1)"))
    split_seed: int = _f(0, "Seed of the train/validation split (kept fixed across a study's seeds).")
    stratified: bool = _f(False, "Stratify the validation split by class.")
    limit: int | None = _f(None, "Keep N training samples (at most N test, ~N·val/(1-val) val): quick runs.",
                            check=POSITIVE_OR_NONE)

    # --- optimization
    epochs: int = _f(12, "Passes over the training split.", check=POSITIVE)
    batch_size: int = _f(64, "Samples per optimizer step.", check=POSITIVE)
    optimizer: str = _f("adam", "Optimizer.", choices=OPTIMIZERS)
    lr: float = _f(1e-3, "(Peak) learning rate.", check=(lambda v: v > 0, "a positive number"))
    momentum: float = _f(0.0, "SGD momentum (0 = plain SGD).", check=FRACTION)
    nesterov: bool = _f(False, "SGD Nesterov momentum (needs momentum > 0).")
    beta1: float = _f(0.9, "Adam/AdamW first-moment decay.", check=FRACTION)
    beta2: float = _f(0.999, "Adam/AdamW second-moment decay.", check=FRACTION)
    schedule: str = _f("constant", "Learning-rate schedule (cosine and onecycle step per batch, step per epoch).",
                       choices=SCHEDULES)
    step_epochs: int = _f(5, "Step schedule: multiply the lr by step_gamma every step_epochs epochs.",
                           check=POSITIVE)
    step_gamma: float = _f(0.1, "Step schedule: the factor.", check=(lambda v: 0 < v <= 1, "a number in (0, 1]"))
    warmup_fraction: float = _f(0.3, "Onecycle: fraction of the steps spent increasing the lr.",
                                check=(lambda v: 0 < v < 1, "a number in (0, 1)"))

    # --- regularization (see ablab.train.variants for the named transforms)
    weight_decay: float = _f(0.0, "L2 through the optimizer: coupled (grad += wd·w) for sgd/adam, decoupled for "
                             "adamw.", check=NON_NEGATIVE)
    l2_penalty: float = _f(0.0, "L2 as a loss term: loss += l2_penalty/2 · Σw² over the weights.", check=NON_NEGATIVE)
    dropout: float = _f(0.0, "Dropout rate inserted by the transform (0 = none).",
                        check=(FRACTION[0], "a rate in [0, 1)"))
    dropout_placement: str = _f("fc", "Where dropout goes: after hidden linear activations (fc), after conv blocks "
                                "(conv), or both (all).", choices=DROPOUT_PLACEMENTS)
    batchnorm: bool = _f(False, "Insert batch norm after each hidden conv/linear, before its activation.")
    augment: bool = _f(False, "Random crop (pad 4) + horizontal flip of training batches.")
    label_smoothing: float = _f(0.0, "Cross-entropy label smoothing in [0, 1).", check=FRACTION)
    loss: str = _f("cross-entropy", "Training loss: cross-entropy, or your own (logits, targets) -> scalar as "
                   "path/file.py:name or package.module:name (validation/test losses stay cross-entropy).",
                   check=(lambda v: v == "cross-entropy" or ":" in v, "cross-entropy or path/file.py:name"))
    early_stopping: int = _f(0, "Patience in epochs on validation accuracy (0 = off); the best-val weights are kept.",
                              check=(lambda v: v >= 0, "a patience in epochs >= 0"))

    # --- measurement
    train_metrics: str = _f("running", "Train loss/accuracy: running (averaged over the epoch as trained) or clean "
                            "(an extra eval-mode pass).", choices=TRAIN_METRICS)
    eval_batch_size: int = _f(256, "Samples per evaluation batch (256: activations stay in cache on CPU; at least "
                              "8192 on a GPU).", check=POSITIVE)
    train_eval_subsample: int | None = _f(None, "Clean train metrics on a fixed stratified subsample of this many "
                                          "training samples (same for every seed); None = the whole split.",
                                          check=POSITIVE_OR_NONE)

    # --- reproducibility and resources
    seed: int = _f(0, "Master seed; init_seed, data_seed and dropout_seed derive from it when unset.")
    init_seed: int | None = _f(None, "Seed of the weight initialization (default: from seed).")
    data_seed: int | None = _f(None, "Seed of the shuffling order and augmentation (default: from seed).")
    dropout_seed: int | None = _f(None, "Seed of the dropout masks (default: from seed).")
    threads: int | None = _f(None, "torch intra-op threads (default: all cores; 1 per run when runs go in parallel).",
                             check=POSITIVE_OR_NONE)
    device: str = _f("auto", "Where to compute: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.",
                      check=(lambda v: DEVICE_PATTERN.fullmatch(v) is not None, "auto, cpu, cuda, cuda:N or mps"))
    kernels: str = _f("eager", "Training-step kernels: eager (PyTorch's own) or compiled (torch.compile; measured "
                      "not a win for LeNet-5 on a 2-core CPU: docs/train.md#speed). Evaluation always runs eager.",
                      choices=KERNELS)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str):  # a class or factory: stored as its reference string

            try:
                object.__setattr__(self, "model", reference_of(self.model))
            except ModelRefError as e:
                raise ConfigError(str(e)) from None
        _check_types(self)
        _check_model_args(self)
        checks: list[tuple[bool, str, str]] = []
        for k, f in FIELDS.items():  # each field's own rule, written beside the field
            if "choices" in f.metadata:
                choices = f.metadata["choices"]
                checks.append((getattr(self, k) in choices, k, f"one of {', '.join(choices)}"))
            if "check" in f.metadata:
                allowed, expected = f.metadata["check"]
                checks.append((allowed(getattr(self, k)), k, expected))
        checks += [  # rules between fields
            (not self.nesterov or (self.optimizer == "sgd" and self.momentum > 0), "nesterov",
             "only with optimizer = sgd and momentum > 0"),
            (self.early_stopping == 0 or self.val_fraction > 0, "early_stopping",
             "a validation split (val_fraction > 0)"),
            (self.loss == "cross-entropy" or self.label_smoothing == 0, "label_smoothing",
             "0 with a custom loss (smooth the labels inside your loss)"),
        ]
        for ok, key, expected in checks:
            if not ok:
                raise ConfigError(f"expected {expected}, got {getattr(self, key.split('/')[0])!r}", key=key)

    # --- seeds: one master seed, three independent streams that a study can vary one at a time
    @property
    def seeds(self) -> dict[str, int]:
        """The recorded seeds of initialization, data order (and augmentation) and dropout."""
        return {
            "init": self.init_seed if self.init_seed is not None else self.seed,
            "data": self.data_seed if self.data_seed is not None else self.seed + 1_000_003,
            "dropout": self.dropout_seed if self.dropout_seed is not None else self.seed + 2_000_003,
        }

    def replace(self, **changes: Any) -> TrainConfig:
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise ConfigError(_unknown_message(sorted(unknown)[0]))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> TrainConfig:
        """Build from a plain dict; unknown keys and wrong types name the key (prefixed by ``where``)."""
        for k in d:
            if k not in FIELDS:
                raise ConfigError(f"{where}: {_unknown_message(k)}")
        try:
            return cls(**d)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None

    def config_hash(self) -> str:
        """SHA-256 of the canonical JSON of the config: equal configs, equal hashes."""
        d = self.to_dict()
        if not d["model_args"]:  # configs without model arguments hash as they did before the field existed
            del d["model_args"]
        if d["loss"] == "cross-entropy":  # likewise for the default loss
            del d["loss"]
        if d["kernels"] == "eager":  # eager runs keep the identity they had before compiled kernels existed
            del d["kernels"]
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _unknown_message(key: str) -> str:
    return f"unknown key '{key}'{did_you_mean(key, FIELDS)}"


SEED_KEYS = ("seed", "init_seed", "data_seed", "dropout_seed")  # vary between the runs of one cell, by design
MAX_SEED = 2**32 - 1  # seeds: what numpy and every torch generator accept
MAX_INT = 2**31 - 1  # every other integer field (sizes, epochs, threads): far beyond any real run
_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
                                       "dict[str,Any]": (dict,)}


def _check_model_args(cfg: TrainConfig) -> None:
    """model_args only with a model reference, with plain TOML/JSON values; a reference cannot take the
    spec transforms (inserted batch norm / dropout): those are the model's own constructor flags."""

    ref = is_reference(cfg.model)
    object.__setattr__(cfg, "model_args", dict(cfg.model_args))  # the config's own copy
    if cfg.model_args and not ref:
        raise ConfigError(f"model_args: constructor arguments need a model reference (path/file.py:Name or "
                          f"package.module:Name); model {cfg.model!r} is a preset or spec")
    for key, value in cfg.model_args.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(f"model_args: expected argument names, got {key!r}")
        bad = _not_plain(value)
        if bad:
            raise ConfigError(f"model_args: {key}: expected a TOML/JSON value (bool, int, float, string, list, "
                              f"table), got {bad}")
    if ref:
        for key, on in (("batchnorm", cfg.batchnorm), ("dropout", cfg.dropout > 0)):
            if on:
                raise ConfigError(f"{key}: inserting {'batch norm' if key == 'batchnorm' else 'dropout'} is a "
                                  f"spec transform and cannot change your own model {shown(cfg.model)}; make it "
                                  f"a constructor flag and set it with model_args (e.g. model_args = "
                                  f"{{ use_{'batch_norm' if key == 'batchnorm' else 'dropout'} = true }})")


def _not_plain(v: Any, depth: int = 0) -> str:
    """'' for a plain, finite TOML/JSON value; otherwise what is wrong with it."""
    if depth > 20:
        return "a value nested deeper than 20 levels"
    if v is None or isinstance(v, bool | int | str):
        return ""
    if isinstance(v, float):
        return "" if math.isfinite(v) else f"the non-finite number {v}"
    if isinstance(v, list | tuple):
        return next((b for b in (_not_plain(x, depth + 1) for x in v) if b), "")
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            return "a table with non-string keys"
        return next((b for b in (_not_plain(x, depth + 1) for x in v.values()) if b), "")
    return f"a {type(v).__name__}"


def _check_types(cfg: TrainConfig) -> None:
    """Reject wrong types by name (bools are not ints here; ints are accepted for floats)."""
    for name, f in FIELDS.items():
        v = getattr(cfg, name)
        ann = str(f.type).replace(" ", "")
        optional = ann.endswith("|None")
        base = ann.removesuffix("|None")
        if v is None:
            if not optional:
                raise ConfigError(f"{name}: expected {base}, got none")
            continue
        ok = isinstance(v, _TYPES[base]) and not (base != "bool" and isinstance(v, bool))
        if not ok:
            expected = "a table of arguments" if base.startswith("dict") else base
            raise ConfigError(f"{name}: expected {expected}, got {type(v).__name__} {_short(v)}")
        if base == "int":
            if name.endswith("seed") and not 0 <= v <= MAX_SEED:
                raise ConfigError(f"{name}: expected an integer in 0..{MAX_SEED:,}, got {_short(v)}")
            if abs(v) > MAX_INT:  # the sign is each field's own check (__post_init__)
                raise ConfigError(f"{name}: expected an integer of at most {MAX_INT:,}, got {_short(v)}")
        if base == "float":
            try:
                x = float(v)
            except OverflowError:
                x = math.inf
            if not math.isfinite(x):
                raise ConfigError(f"{name}: expected a finite number, got {_short(v)}")
            object.__setattr__(cfg, name, x)


def _short(v: Any) -> str:
    """``repr(v)``, cut to 60 characters (a 400-digit number should not fill the screen)."""
    r = repr(v)
    return r if len(r) <= 60 else f"{r[:40]}... ({len(r)} characters)"
