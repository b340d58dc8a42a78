"""Regularization variants: named, composable transforms of a :class:`TrainConfig`.

A variant only changes config fields (``batchnorm=True``, ``dropout=0.5``, ``weight_decay=5e-4``...); the
trainer turns those fields into the model and the loss. So ``apply_variants(cfg, ["bn", "dropout"])`` is
a plain config that serializes, hashes and reruns like any other, and the order of the names does not
matter. A variant may take one number: ``"dropout=0.3"`` (or ``"dropout:0.3"``) sets the rate.

The three L2 forms — and why they are not the same thing
---------------------------------------------------------
All three act on the weight tensors of conv/linear layers only (never biases or batch-norm parameters),
so they are comparable.

``l2-penalty`` (explicit loss term)
    loss = CE + λ/2 · Σ w²,  so the gradient gains λ·w.  The penalty is part of what backprop sees.
``l2`` (coupled weight decay, ``torch.optim.Adam(weight_decay=λ)``)
    The optimizer adds λ·w to the gradient before its update. For SGD *and* for Adam this is the same
    arithmetic as the explicit penalty (up to float rounding): both feed g + λ·w into the update.
``adamw`` (decoupled weight decay, Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019)
    w ← w − lr·λ·w applied *beside* the Adam step, not through the gradient.

With plain SGD, coupled and decoupled decay coincide (w ← w − lr·(g + λw)). With Adam they do not: Adam
divides the gradient by √v̂ per parameter, so coupled decay λ·w is divided too — weights with a large
gradient history are barely decayed, weights with tiny gradients are decayed hard (the decay is
"normalized away"). AdamW shrinks every weight by the same factor (1 − lr·λ) per step, independent of
its gradient statistics, which is what "weight decay" means. Because AdamW's decay is multiplied by the
learning rate and not amplified by 1/√v̂, its useful λ is much larger (PyTorch's default 1e-2) than the
coupled/penalty λ (5e-4 here).

What is reported: ``train_loss`` is the data term (cross-entropy) only, never the penalty, so losses are
comparable across the three forms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ablab.models.presets import is_preset
from ablab.models.source import load_spec
from ablab.registry import Registry
from ablab.spec import (
    WEIGHTED,
    Activation,
    BatchNorm,
    Dropout,
    Layer,
    Spec,
    _PoolBase,
)
from ablab.train.config import ConfigError, TrainConfig


@dataclass(frozen=True)
class Variant:
    """A named config transform; ``param`` names the number it takes (``None``: takes none)."""

    name: str
    doc: str
    apply: Callable[[TrainConfig, float | None], TrainConfig]
    param: str | None = None  # what the optional number means, e.g. "rate"
    default: float | None = None  # used when no number is given


VARIANTS: Registry[Variant] = Registry("variant", ConfigError, sort=False)


Transform = Callable[[TrainConfig, float | None], TrainConfig]


def register_variant(
    name: str, *, param: str | None = None, default: float | None = None
) -> Callable[[Transform], Transform]:
    """Register ``fn(config, value) -> config`` under ``name``; its docstring is the variant's doc."""

    def deco(fn: Transform) -> Transform:
        VARIANTS[name] = Variant(name, (fn.__doc__ or "").strip(), fn, param, default)
        return fn

    return deco


def list_variants(pattern: str = "*") -> list[str]:
    """Registered variant names matching a glob pattern, in registration order."""
    return VARIANTS.list(pattern)


def get_variant(name: str) -> Variant:
    return VARIANTS.get(name)


def parse_variant(text: str) -> tuple[Variant, float | None]:
    """``"dropout"`` -> (dropout, None); ``"dropout=0.3"`` / ``"dropout:0.3"`` -> (dropout, 0.3)."""
    name, sep, arg = text.replace(":", "=").partition("=")
    variant = get_variant(name.strip())
    if not sep:
        return variant, None
    if variant.param is None:
        raise ConfigError(f"variant '{variant.name}' takes no value (got '{text}')")
    try:
        return variant, float(arg)
    except ValueError:
        raise ConfigError(f"variant '{text}': expected a number for {variant.param}, got '{arg}'") from None


def apply_variants(config: TrainConfig, names: Iterable[str]) -> TrainConfig:
    """Apply each named variant in turn; conflicting combinations are refused with both names."""
    for text in names:
        variant, value = parse_variant(text)
        try:
            config = variant.apply(config, value if value is not None else variant.default)
        except ConfigError as e:
            raise ConfigError(f"variant '{text}': {e}") from None
    return config


# ------------------------------------------------------------------------------------------- variants


@register_variant("baseline")
def _baseline(cfg: TrainConfig, value: float | None) -> TrainConfig:
    """No regularization beyond what the config already has (the reference point of a study)."""
    return cfg


@register_variant("dropout", param="rate", default=0.5)
def _dropout(cfg: TrainConfig, value: float | None) -> TrainConfig:
    """Dropout (inverted) after the activation of every hidden layer; where is ``dropout_placement``
    (fc: hidden linear layers, the classic placement; conv: after each conv block; all). Rate 0.5."""
    return cfg.replace(dropout=value)


@register_variant("l2", param="lambda", default=5e-4)
def _l2(cfg: TrainConfig, value: float | None) -> TrainConfig:
    """L2 as coupled weight decay: the optimizer adds λ·w to the gradient (Adam's/SGD's
    ``weight_decay``). With Adam the decay is then divided by √v̂ like the gradient. λ = 5e-4."""
    if cfg.optimizer == "adamw":
        raise ConfigError("coupled weight decay needs optimizer sgd or adam, not adamw (use variant 'adamw')")
    if cfg.weight_decay:
        raise ConfigError(f"weight_decay is already {cfg.weight_decay} (two weight-decay variants?)")
    return cfg.replace(weight_decay=value)


@register_variant("adamw", param="lambda", default=1e-2)
def _adamw(cfg: TrainConfig, value: float | None) -> TrainConfig:
    """L2 as decoupled weight decay: AdamW shrinks each weight by (1 − lr·λ) per step, beside the Adam
    update, independent of gradient statistics. λ = 1e-2 (PyTorch's default)."""
    if cfg.weight_decay:
        raise ConfigError(f"weight_decay is already {cfg.weight_decay} (two weight-decay variants?)")
    return cfg.replace(optimizer="adamw", weight_decay=value, momentum=0.0, nesterov=False)


@register_variant("l2-penalty", param="lambda", default=5e-4)
def _l2_penalty(cfg: TrainConfig, value: float | None) -> TrainConfig:
    """L2 as an explicit loss term λ/2·Σw² over conv/linear weights. Same gradient as coupled decay
    (so same training, up to rounding), but costs a forward term; train_loss still reports CE only."""
    return cfg.replace(l2_penalty=value)


@register_variant("bn")
def _bn(cfg: TrainConfig, value: float | None) -> TrainConfig:
    """Batch norm after every hidden conv/linear layer, before its activation (Ioffe & Szegedy 2015)."""
    return cfg.replace(batchnorm=True)


@register_variant("augment")
def _augment(cfg: TrainConfig, value: float | None) -> TrainConfig:
    """Data augmentation of training batches: random crop from a 4-pixel zero-padded image and
    horizontal flip, drawn from the data seed."""
    return cfg.replace(augment=True)


@register_variant("label-smoothing", param="epsilon", default=0.1)
def _label_smoothing(cfg: TrainConfig, value: float | None) -> TrainConfig:
    """Cross-entropy against (1 − ε)·one-hot + ε/K (Szegedy et al. 2016). ε = 0.1. Val/test loss stay
    plain cross-entropy."""
    return cfg.replace(label_smoothing=value)


@register_variant("early-stopping", param="patience", default=3)
def _early_stopping(cfg: TrainConfig, value: float | None) -> TrainConfig:
    """Stop when validation accuracy has not improved for ``patience`` epochs (3) and keep the
    best-validation weights; final metrics and the checkpoint are those weights'."""
    if value is None or value != int(value):
        raise ConfigError(f"patience: expected a whole number of epochs, got {value}")
    return cfg.replace(early_stopping=int(value))


# ------------------------------------------------------------------------------- spec transformations


def _hidden_weighted(layers: tuple[Layer, ...]) -> list[int]:
    """Indices of conv/linear layers except the last one (the output layer)."""
    idx = [i for i, layer in enumerate(layers) if layer.kind in WEIGHTED]
    return idx[:-1]


def insert_batchnorm(spec: Spec) -> Spec:
    """A BatchNorm right after every hidden conv/linear (before its activation); idempotent."""
    layers = list(spec.layers)
    for i in reversed(_hidden_weighted(spec.layers)):
        if i + 1 < len(layers) and isinstance(layers[i + 1], BatchNorm):
            continue
        layers.insert(i + 1, BatchNorm())
    return spec.replace_layers(layers)


def insert_dropout(spec: Spec, p: float, placement: str = "fc") -> Spec:
    """Dropout(p) after each hidden layer's activation; ``conv`` placement goes after the pooling that
    closes a conv block when there is one. ``placement``: fc | conv | all."""
    layers = list(spec.layers)
    targets: list[int] = []  # insert after these indices
    for i in _hidden_weighted(spec.layers):
        is_conv = layers[i].kind.startswith("conv")
        if placement != "all" and (placement == "conv") != is_conv:
            continue
        j = i
        while j + 1 < len(layers) and isinstance(layers[j + 1], BatchNorm):
            j += 1
        if j + 1 < len(layers) and isinstance(layers[j + 1], Activation):
            j += 1
        if is_conv and j + 1 < len(layers) and isinstance(layers[j + 1], _PoolBase):
            j += 1
        targets.append(j)
    for j in reversed(targets):
        if j + 1 < len(layers) and isinstance(layers[j + 1], Dropout):
            continue
        layers.insert(j + 1, Dropout(p))
    return spec.replace_layers(layers)


def model_spec(config: TrainConfig, input_shape: tuple[int, ...] | None = None) -> Spec:
    """The spec a run trains: ``config.model`` with the config's batch norm and dropout inserted."""

    spec = load_spec(config.model)
    if input_shape is not None:
        declared = None if is_preset(config.model) else spec.input_shape  # presets adapt; a spec's input is checked
        if declared is not None and tuple(declared) != tuple(input_shape):
            raise ConfigError(f"model: the spec declares input({','.join(map(str, declared))}) but dataset "
                              f"{config.dataset} gives {'x'.join(map(str, input_shape))} images; drop input(...) "
                              "or train on data of that shape")
        spec = spec.with_input(tuple(input_shape))
    if config.batchnorm:
        spec = insert_batchnorm(spec)
    if config.dropout > 0:
        spec = insert_dropout(spec, config.dropout, config.dropout_placement)
    return spec
