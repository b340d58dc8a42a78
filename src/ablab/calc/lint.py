"""Lint a layer stack: mistakes that cost accuracy or compute (warnings) or make it unable to work (errors).

Errors (the network cannot run: a spatial size reaching zero, a conv on a flat vector, ...) come from
shape inference, which raises a ``SpecError`` naming the layer and the shapes; ``lint_spec`` reports
them as one ``error`` finding. Warnings about one layer come from its kind (``Layer.lint``); the
stack-level ones (collapse, bias before batch norm, softmax before cross-entropy) read the kinds'
flags. Everything here is pure Python on the resolved stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from ablab.calc.shapes import Resolved, fmt_shape, resolve
from ablab.layers.values import Shape, SpecError
from ablab.spec.stack import Spec


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


def input_layout(shape: Shape) -> Finding | None:
    """A C x H x W input whose last axis looks like the channels (<= 4) and whose first does not: most
    likely H x W x C (NumPy / TensorFlow order) given where ablab expects C x H x W."""
    if len(shape) == 3 and shape[2] <= 4 < shape[0]:
        meant = (shape[2], shape[0], shape[1])
        return Finding("warning", "", "input-layout",
                       f"input {fmt_shape(shape)} looks like HxWxC, but ablab reads CxHxW ({shape[0]} channels); "
                       f"did you mean {fmt_shape(meant)}?")
    return None


def lint(layers: list[Resolved]) -> list[Finding]:
    """Warnings for a resolved stack (it can run; these make it worse or wasteful)."""
    out: list[Finding] = []
    layout = input_layout(layers[0].in_shape) if layers else None
    out += [layout] if layout else []
    out += _collapse(layers)
    for i, r in enumerate(layers):
        layer = r.layer
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if layer.weighted and getattr(layer, "bias", False) and nxt is not None and nxt.layer.cancels_bias:
            out.append(Finding("warning", r.name, "bias-before-bn",
                               f"its bias is redundant: {nxt.name} subtracts the per-channel mean right after, "
                               f"cancelling it; use bias=false"))
        out += [Finding("warning", r.name, code, message) for code, message in layer.lint(r)]
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
        if r.layer.weighted:
            if last is not None:
                via = f" (only {', '.join(between)} between)" if between else ""
                out.append(Finding("warning", r.name, "collapse",
                                   f"no nonlinearity between {last.name} and {r.name}{via}: together they are "
                                   f"one affine map, so the extra layer adds parameters but no expressive power"))
            last, between = r, []
        elif r.layer.affine_at_inference:
            between.append(r.name)
        else:  # an activation, max pooling, a per-sample norm, or an unknown module: nonlinear
            last, between = None, []
    return out
