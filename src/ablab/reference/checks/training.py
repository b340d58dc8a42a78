"""Checks of the losses and of the NumPy model trained side by side with ``build(spec)``."""

from __future__ import annotations

import numpy as np

from ablab.reference import losses
from ablab.reference.checks.base import _check, _rng, register
from ablab.reference.gradcheck import CheckResult
from ablab.spec import parse_spec

# -------------------------------------------------------------------------------------- losses


@register("loss", "softmax cross-entropy, 5x4")
def _ce() -> CheckResult:
    import torch.nn.functional as F

    rng = _rng("ce")
    inp = {"logits": rng.normal(0, 3, size=(5, 4)), "target": rng.integers(0, 4, size=5)}
    return _check("ce", losses.softmax_cross_entropy, losses.softmax_cross_entropy_backward,
                  lambda logits, target: F.cross_entropy(logits, target), inp, ["logits"])


@register("loss", "mse, 3x4")
def _mse() -> CheckResult:
    import torch.nn.functional as F

    rng = _rng("mse")
    inp = {"pred": rng.normal(size=(3, 4)), "target": rng.normal(size=(3, 4))}
    return _check("mse", losses.mse, losses.mse_backward, lambda pred, target: F.mse_loss(pred, target), inp, ["pred"])


@register("loss", "bce on probabilities, 6")
def _bce() -> CheckResult:
    import torch.nn.functional as F

    rng = _rng("bce")
    inp = {"prob": rng.uniform(0.05, 0.95, size=6), "target": rng.integers(0, 2, size=6).astype(np.float64)}
    return _check("bce", losses.bce, losses.bce_backward,
                  lambda prob, target: F.binary_cross_entropy(prob, target), inp, ["prob"])


@register("loss", "bce with logits, 2x3")
def _bce_logits() -> CheckResult:
    import torch.nn.functional as F

    rng = _rng("bcel")
    inp = {"logits": rng.normal(0, 3, size=(2, 3)), "target": rng.uniform(0, 1, size=(2, 3))}
    return _check("bcel", losses.bce_with_logits, losses.bce_with_logits_backward,
                  lambda logits, target: F.binary_cross_entropy_with_logits(logits, target), inp, ["logits"])


# ---------------------------------------------------------------------------------- NumPy model

MODEL_SPEC = ("input(2,8,8) conv(4,3,s=2,pad=same) bn relu maxpool(2) conv(6,2,g=2) tanh flatten dropout(0.3) "
              "linear(10) leaky_relu(0.1) linear(5)")


@register("model", "SGD trajectory, 5 steps: " + MODEL_SPEC)
def _model() -> CheckResult:
    """The NumPy model and ``build(spec)`` trained side by side; forward = largest loss difference."""
    from ablab.reference.model import compare_with_torch

    t = compare_with_torch(parse_spec(MODEL_SPEC), steps=5, batch=8, lr=0.5)
    return CheckResult("model", t.max_loss_diff,
                       autograd={"params": t.max_param_diff, "buffers": t.max_buffer_diff}, tol=1e-8)


NORM_SPEC = ("input(2,7,7) conv(6,3,pad=1) groupnorm(3) relu adaptiveavgpool2d(3) conv(4,2) layernorm gelu "
             "adaptiveavgpool2d(1) flatten linear(8) layernorm(affine=false) tanh linear(3)")


@register("model", "SGD trajectory, 5 steps: " + NORM_SPEC)
def _model_norms() -> CheckResult:
    """The same with layer norm, group norm and adaptive pooling: their state-dict names, parameters and
    gradients line up between the builder and the NumPy model."""
    from ablab.reference.model import compare_with_torch

    t = compare_with_torch(parse_spec(NORM_SPEC), steps=5, batch=8, lr=0.5)
    return CheckResult("model", t.max_loss_diff,
                       autograd={"params": t.max_param_diff, "buffers": t.max_buffer_diff}, tol=1e-8)
