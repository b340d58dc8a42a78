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

    Where PyTorch has fused kernels for the parameters' device (CPU, CUDA, MPS; one kernel for all
    parameters instead of a handful of ops per tensor: the MLP step is ~40% faster) this is a
    :class:`FusedOptimizer`, which calls those kernels directly: the same arithmetic as
    ``torch.optim.Adam(..., fused=True)``, bit for bit (tested), without constructing a
    ``torch.optim.Optimizer`` — whose first construction imports ``torch._dynamo`` (~3 s of a short
    run's start). Elsewhere, ``torch.optim`` with multi-tensor (foreach) ops.
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
    """SGD / Adam / AdamW steps as PyTorch's fused kernels (``torch._fused_sgd_``, ``_fused_adam_``,
    ``_fused_adamw_``), called as ``torch.optim``'s ``fused=True`` path calls them: same state (Adam's
    ``step`` a float32 scalar tensor, ``exp_avg``, ``exp_avg_sq``; SGD's ``momentum_buffer``), same
    order, same arguments — so the same bits. The interface the trainer uses: ``param_groups`` (each
    with its ``lr``, set per step by schedules), ``zero_grad``, ``step``, ``state_dict`` /
    ``load_state_dict`` (tensors by parameter position, for epoch checkpoints).
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
            params = [p for p in group["params"] if p.grad is not None]
            for ps in _by_device_and_dtype(params):
                self._sgd(group, ps) if self.kind == "sgd" else self._adam(group, ps)

    def _sgd(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        grads = [_grad(p) for p in params]
        bufs: list[torch.Tensor] = []
        first = False
        if self.momentum != 0:
            first = all("momentum_buffer" not in self.state.get(p, {}) for p in params)
            for p, g in zip(params, grads, strict=True):
                st = self.state.setdefault(p, {})
                if first:
                    st["momentum_buffer"] = torch.empty_like(g)
                bufs.append(st["momentum_buffer"])
        torch._fused_sgd_(params, grads, bufs, weight_decay=group["weight_decay"], momentum=self.momentum,
                          lr=group["lr"], dampening=0.0, nesterov=self.nesterov, maximize=False,
                          is_first_step=first, grad_scale=None, found_inf=None)

    def _adam(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        for p in params:
            if p not in self.state:
                self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                 "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        sts = [self.state[p] for p in params]
        steps = [st["step"] for st in sts]
        torch._foreach_add_(steps, 1)
        fn = torch._fused_adam_ if self.kind == "adam" else torch._fused_adamw_
        fn(params, [_grad(p) for p in params], [st["exp_avg"] for st in sts], [st["exp_avg_sq"] for st in sts], [],
           steps, amsgrad=False, lr=group["lr"], beta1=self.betas[0], beta2=self.betas[1],
           weight_decay=group["weight_decay"], eps=ADAM_EPS, maximize=False, grad_scale=None, found_inf=None)

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
