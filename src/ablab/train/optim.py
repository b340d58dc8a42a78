"""Optimizers and learning-rate schedules.

Schedules are pure functions of the step (``lr_at``), so they are testable without a model and cost
one dict write per step. ``step`` changes the rate once per epoch; ``cosine`` and ``onecycle`` per batch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ablab.train.config import TrainConfig

ONECYCLE_DIV = 25.0  # onecycle starts at lr/25 (PyTorch OneCycleLR's div_factor)
ONECYCLE_FINAL_DIV = 1e4  # ... and ends at lr/25/1e4 (final_div_factor)


def lr_at(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based, counted over the whole run).

    constant: lr.  step: lr·γ^⌊epoch/step_epochs⌋.  cosine: lr·½(1 + cos(π·t/T)) (Loshchilov & Hutter
    2017, no restarts, down to 0 at the last step).  onecycle (Smith 2018): cosine rise from lr/25 to lr
    over the first ``warmup_fraction`` of the steps, then cosine fall to lr/25/1e4 (as OneCycleLR with
    anneal_strategy="cos"; the momentum is not cycled).
    """
    lr = config.lr
    total = max(config.epochs * steps_per_epoch, 1)
    if config.schedule == "constant":
        return lr
    if config.schedule == "step":
        return lr * config.step_gamma ** ((step // steps_per_epoch) // config.step_epochs)
    if config.schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total - 1) / max(total - 1, 1)))
    # onecycle
    start, end = lr / ONECYCLE_DIV, lr / ONECYCLE_DIV / ONECYCLE_FINAL_DIV
    up = max(int(config.warmup_fraction * total) - 1, 1)
    if step <= up:
        return _cos_interp(start, lr, step / up)
    return _cos_interp(lr, end, min((step - up) / max(total - 1 - up, 1), 1.0))


def _cos_interp(a: float, b: float, t: float) -> float:
    """From a (t=0) to b (t=1) along half a cosine."""
    return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * t))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Weights of conv/linear layers (dim > 1) decay; biases and batch-norm parameters do not.
    Without decay, one group (each group costs the optimizer a Python pass per step)."""
    if not weight_decay:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": 0.0}]
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    other = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    groups: list[dict[str, object]] = [{"params": decay, "weight_decay": weight_decay}]
    if other:
        groups.append({"params": other, "weight_decay": 0.0})
    return groups


def make_optimizer(config: TrainConfig, model: nn.Module) -> Any:
    """SGD (momentum, Nesterov), Adam or AdamW over ``model``.

    For float parameters on CPU, CUDA or MPS this is a :class:`FusedOptimizer` (``torch.optim``'s
    arithmetic in public tensor methods, without importing ``torch._dynamo``). Elsewhere, ``torch.optim``
    with multi-tensor (foreach) ops.
    """
    groups = param_groups(model, config.weight_decay)
    lr = lr_at(config, 0, 1)
    params = [p for g in groups for p in g["params"]]  # type: ignore[attr-defined]
    if params and all(p.device.type in FUSED_DEVICES and p.dtype in FUSED_DTYPES for p in params):
        return FusedOptimizer(config.optimizer, groups, lr=lr, momentum=config.momentum, nesterov=config.nesterov,
                              betas=(config.beta1, config.beta2))
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum,  # type: ignore[arg-type]
                               nesterov=config.nesterov, foreach=True)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=lr, betas=(config.beta1, config.beta2), foreach=True)  # type: ignore[arg-type]


FUSED_DEVICES = ("cpu", "cuda", "mps")
FUSED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
ADAM_EPS = 1e-8  # torch.optim.Adam's default


class FusedOptimizer:
    """SGD / Adam / AdamW written with public tensor methods, operation for operation as ``torch.optim``'s
    single-tensor path (``foreach=False``) computes them, so the same bits (tested against it).

    Why not ``torch.optim`` itself: its first optimizer imports ``torch._dynamo`` (1.1 s measured, about
    three quarters of a short run's start-up beyond ``import torch``), and its fused kernels are reachable
    only through it. The cost of a handful of tensor methods per parameter instead of one fused kernel:
    about 0.17 ms per LeNet-5 step (2% of the step) and 0.06 ms per small-MLP step (benchmarks/optim_step.py).

    The interface the trainer uses: ``param_groups`` (each with its ``lr``, set per step by schedules),
    ``zero_grad``, ``step``, and a flat ``state_dict`` / ``load_state_dict`` (``"{group}.{position}.{name}"``
    -> tensor, so an epoch's optimizer state fits a safetensors file and resumes to the same bits).
    State per parameter as ``torch.optim`` keeps it: Adam's ``step`` (a float32 scalar tensor),
    ``exp_avg``, ``exp_avg_sq``; SGD's ``momentum_buffer``.
    """

    def __init__(self, kind: str, groups: list[dict[str, Any]], *, lr: float, momentum: float = 0.0,
                 nesterov: bool = False, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        if kind not in ("sgd", "adam", "adamw"):
            raise ValueError(f"unknown optimizer {kind!r}")
        self.kind = kind
        self.param_groups: list[dict[str, Any]] = [
            {"params": list(g["params"]), "weight_decay": float(g["weight_decay"]), "lr": lr} for g in groups]
        self.momentum, self.nesterov, self.betas = momentum, nesterov, betas
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is not None:
                    self._sgd(p, p.grad, lr, wd) if self.kind == "sgd" else self._adam(p, p.grad, lr, wd)

    def _sgd(self, p: torch.Tensor, grad: torch.Tensor, lr: float, wd: float) -> None:
        """torch.optim.SGD, one parameter (dampening 0): d = g + wd·p; b = μ·b + d; p -= lr·(d + μ·b | b)."""
        if wd != 0:
            grad = grad.add(p, alpha=wd)
        if self.momentum != 0:
            st = self.state.setdefault(p, {})
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = torch.clone(grad).detach()
            else:
                buf.mul_(self.momentum).add_(grad)
            grad = grad.add(buf, alpha=self.momentum) if self.nesterov else buf
        p.add_(grad, alpha=-lr)

    def _adam(self, p: torch.Tensor, grad: torch.Tensor, lr: float, wd: float) -> None:
        """Adam (Kingma & Ba 2015, Algorithm 1) / AdamW (Loshchilov & Hutter 2019), one parameter, as
        torch.optim computes it: m ← lerp(m, g, 1-β1); v ← β2·v + (1-β2)·g²;
        p ← p - lr/(1-β1^t) · m / (√v/√(1-β2^t) + ε)."""
        st = self.state.get(p)
        if st is None:
            st = self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                  "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                  "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        beta1, beta2 = self.betas
        st["step"] += 1
        if wd != 0:
            if self.kind == "adamw":
                p.mul_(1 - lr * wd)
            else:
                grad = grad.add(p, alpha=wd)
        st["exp_avg"].lerp_(grad, 1 - beta1)
        st["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = st["step"].item()
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        denom = (st["exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
        p.addcdiv_(st["exp_avg"], denom, value=-(lr / (1 - beta1**step)))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``"{group}.{position}.{name}"`` -> tensor (flat, so it fits a safetensors file)."""
        out: dict[str, torch.Tensor] = {}
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                for name, t in self.state.get(p, {}).items():
                    out[f"{gi}.{pi}.{name}"] = t
        return out

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.state = {}
        for key, t in state.items():
            gi, pi, name = key.split(".")
            p = self.param_groups[int(gi)]["params"][int(pi)]
            self.state.setdefault(p, {})[name] = t.to(p.device).clone()


def _by_device_and_dtype(params: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Parameters grouped by (device, dtype), order kept: one fused call per group, as torch.optim."""
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for p in params:
        groups.setdefault((p.device, p.dtype), []).append(p)
    return list(groups.values())


def _grad(p: torch.Tensor) -> torch.Tensor:
    """``p.grad``, which ``step`` has already checked is set."""
    assert p.grad is not None
    return p.grad
