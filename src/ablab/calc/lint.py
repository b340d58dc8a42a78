"""Lint a layer stack: mistakes that cost accuracy or compute (warnings) or make it unable to work (errors).

Errors (the network cannot run: a spatial size reaching zero, a conv on a flat vector, ...) come from
shape inference, which raises a ``SpecError`` naming the layer and the shapes; ``lint_spec`` reports
them as one ``error`` finding. Everything here is pure Python on the resolved stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from ablab.calc.shapes import Resolved, fmt_shape, resolve
from ablab.spec import WEIGHTED, BatchNorm, Shape, Spec, SpecError, _ConvBase, _PoolBase

# layers that are affine maps at inference: a weighted layer followed only by these and another
# weighted layer collapses into one affine map
AFFINE_KINDS = ("flatten", "dropout", "batchnorm", "avgpool2d", "avgpool1d", "pad")


@dataclass(frozen=True)
class Finding:
    severity: str  # "warning" or "error"
    layer: str  # the layer it is about ("" for the whole spec)
    code: str  # short id: collapse, bias-before-bn, kernel-too-large, dropped-pixels, softmax-ce, ...
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "layer": self.layer, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        return f"{self.severity}: {self.layer + ': ' if self.layer else ''}{self.message}"


def lint_spec(spec: Spec, input_shape: Shape | None = None) -> list[Finding]:
    """All findings for a spec; an unresolvable spec gives a single error finding."""
    try:
        layers = resolve(spec, input_shape)
    except SpecError as e:
        return [Finding("error", "", "cannot-run", str(e))]
    return lint(layers)


def lint(layers: list[Resolved]) -> list[Finding]:
    """Warnings for a resolved stack (it can run; these make it worse or wasteful)."""
    out: list[Finding] = []
    out += _collapse(layers)
    for i, r in enumerate(layers):
        layer = r.layer
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if layer.kind in WEIGHTED and getattr(layer, "bias", False) and nxt is not None \
                and isinstance(nxt.layer, BatchNorm):
            out.append(Finding("warning", r.name, "bias-before-bn",
                               f"its bias is redundant: {nxt.name} subtracts the per-channel mean right after, "
                               f"cancelling it; use bias=false"))
        if isinstance(layer, _ConvBase | _PoolBase):
            out += _kernel_and_stride(r)
        if layer.kind == "linear" and len(r.in_shape) > 1:
            out.append(Finding("warning", r.name, "linear-on-map",
                               f"linear on a {fmt_shape(r.in_shape)} input mixes only the last axis; "
                               f"add flatten before it to connect every input"))
    if layers and layers[-1].layer.kind == "softmax":
        out.append(Finding("warning", layers[-1].name, "softmax-ce",
                           "softmax as the last layer: cross-entropy (nn.CrossEntropyLoss, ablab train) applies "
                           "log-softmax itself, so this squashes the logits twice and weakens the gradients; "
                           "output logits and apply softmax only at inference"))
    order = {r.name: i for i, r in enumerate(layers)}
    return sorted(out, key=lambda f: order.get(f.layer, -1))  # in stack order (stable within a layer)


def _collapse(layers: list[Resolved]) -> list[Finding]:
    """Two weighted layers with only affine layers between them compose to one affine map."""
    out = []
    last: Resolved | None = None
    between: list[str] = []
    for r in layers:
        kind = r.layer.kind
        if kind in WEIGHTED:
            if last is not None:
                via = f" (only {', '.join(between)} between)" if between else ""
                out.append(Finding("warning", r.name, "collapse",
                                   f"no nonlinearity between {last.name} and {r.name}{via}: together they are "
                                   f"one affine map, so the extra layer adds parameters but no expressive power"))
            last, between = r, []
        elif kind in AFFINE_KINDS:
            between.append(r.name)
        else:  # an activation, max pooling, or an unknown module: nonlinear
            last, between = None, []
    return out


def _kernel_and_stride(r: Resolved) -> list[Finding]:
    layer = r.layer
    assert isinstance(layer, _ConvBase | _PoolBase)
    out = []
    spatial = r.in_shape[1:]
    dil = layer.dilation if isinstance(layer, _ConvBase) else (1,) * len(spatial)
    eff = tuple(d * (k - 1) + 1 for k, d in zip(layer.kernel_size, dil, strict=True))
    if any(e > n for e, n in zip(eff, spatial, strict=True)):
        out.append(Finding("warning", r.name, "kernel-too-large",
                           f"the kernel {fmt_shape(eff)} is larger than its input {fmt_shape(spatial)}: part of "
                           f"every window only ever sees padding"))
    axes = ("rows", "columns") if len(spatial) == 2 else ("positions",)
    for ax, n, e, s, (a, _), o in zip(axes, spatial, eff, layer.stride, r.padding, r.out_shape[1:], strict=True):
        # the last window ends at padded index (o-1)*s + e - 1; the real input ends at a + n - 1
        dropped = (a + n - 1) - ((o - 1) * s + e - 1)
        if dropped > 0:
            out.append(Finding("warning", r.name, "dropped-pixels",
                               f"stride {s} over {n} {ax} (kernel {e}, padding {a}) leaves the last {dropped} "
                               f"input {ax} unseen; pad the input or use padding=same"))
    return out

