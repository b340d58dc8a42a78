"""``measure=True`` (``ablab summary --measure``): run one real training step under the allocator and report
its peak beside the estimate of ``ablab.calc.memory``.

The step is the summary's: zero_grad (gradients set to None) -> forward in train mode -> loss (cross-entropy
against class 0 on a 2-d output, else the mean square) -> backward -> the optimizer's step, on a copy of the
model (the user's weights, gradients and optimizer are untouched). On the CPU the peak is torch.profiler's
(``profile_memory=True``): the most bytes allocated at once during the step, plus the bytes alive before it
(parameters, buffers, the input). On CUDA it is ``torch.cuda.max_memory_allocated``.

The estimate leaves out backend workspaces and the transient gradients of the activations. When the
backend explains a gap, it is named: the step is run again with that backend off (oneDNN on the CPU, cuDNN
on CUDA) and the difference, with the backend's largest allocation, is reported.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ablab.errors import UserError

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that run a step: a spec's summary (and this module) stays torch-free


@dataclass(frozen=True)
class Measured:
    """One training step under the allocator (bytes)."""

    peak_bytes: int  # alive before the step + the most allocated at once during it
    before_bytes: int  # parameters, buffers and inputs alive before the step
    device: str  # "cpu" or "cuda"
    how: str  # "torch.profiler (profile_memory)" or "torch.cuda.max_memory_allocated"
    at: str  # the operator running when the peak was reached (CPU only; "" on CUDA)
    backend: str = ""  # "oneDNN" / "cuDNN" when the step without it peaks lower
    without_backend_bytes: int = 0  # the peak with that backend off
    largest_backend_alloc: tuple[str, int] = ("", 0)  # (operator, bytes): the backend's largest allocation

    def to_dict(self) -> dict[str, Any]:
        return {"peak_bytes": self.peak_bytes, "before_bytes": self.before_bytes, "device": self.device,
                "how": self.how, "at": self.at, "backend": self.backend,
                "without_backend_bytes": self.without_backend_bytes,
                "largest_backend_alloc": list(self.largest_backend_alloc)}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Kineto writes 'profiler_start/stop' lines to the process's stderr and torch warns about TF32 on oneDNN
    when its flags are set: neither is for the user, so stderr is closed for the measured steps."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _optimizer(name: str, params: list) -> torch.optim.Optimizer:
    import torch

    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3)
    return torch.optim.SGD(params, lr=0.01, momentum=0.9 if name == "momentum" else 0.0)


def _step(model: torch.nn.Module, args: tuple, kwargs: dict, opt: torch.optim.Optimizer, batch_dim: int) -> None:
    try:
        _one_step(model, args, kwargs, opt, batch_dim)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's model: one error line, not a traceback
        raise UserError(f"the training step failed: {type(e).__name__}: {e}", key="measure") from e


def _one_step(model: torch.nn.Module, args: tuple, kwargs: dict, opt: torch.optim.Optimizer, batch_dim: int
              ) -> None:
    import torch

    from ablab.calc.trace import tensors_in

    opt.zero_grad(set_to_none=True)  # 1. no gradients alive: they are allocated in the step, as estimated
    out = model(*args, **kwargs)  # 2. forward
    y = next(iter(tensors_in(out)), None)
    if y is None or not y.is_floating_point() or not y.requires_grad:
        raise UserError("the model's output does not depend on a trainable parameter: a training step has no "
                        "gradient to measure", key="measure")
    if y.dim() == 2 and y.is_floating_point() and batch_dim == 0:  # 3. the loss the summary's trace uses
        loss = torch.nn.functional.cross_entropy(y, torch.zeros(y.shape[0], dtype=torch.long, device=y.device))
    else:
        loss = y.float().square().mean()
    loss.backward()  # 4. backward
    opt.step()  # 5. the update (optimizer state made on its first step)


def _cpu_peak(model: torch.nn.Module, args: tuple, kwargs: dict, opt: torch.optim.Optimizer, batch_dim: int
              ) -> tuple[int, str, list[tuple[str, int]]]:
    """(peak bytes allocated during the step, the operator at the peak, (operator, bytes) of every allocation)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _step(model, args, kwargs, opt, batch_dim)
    allocs: list[tuple[int, int, int, str]] = []  # (time, total allocated after it, size, operator)

    def walk(node: Any, op: str) -> None:
        if node.tag == _EventType.Allocation:
            f = node.extra_fields
            allocs.append((node.start_time_ns, f.total_allocated, f.alloc_size, op))
        for child in node.children:
            walk(child, node.name if node.tag == _EventType.TorchOp else op)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root, "")
    if not allocs:
        return 0, "", []
    allocs.sort()
    base = allocs[0][1] - allocs[0][2]  # the allocator's count before the step's first allocation
    top = max(allocs, key=lambda a: a[1])
    return max(top[1] - base, 0), top[3], [(a[3], a[2]) for a in allocs if a[2] > 0]


def _alive(model: torch.nn.Module, args: tuple, kwargs: dict) -> int:
    from ablab.calc.trace import tensors_in

    storages = {}
    for t in [*model.parameters(), *model.buffers(), *tensors_in((args, kwargs))]:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
    return sum(storages.values())


def measure_step(model: torch.nn.Module, args: tuple, kwargs: dict, optimizer: str = "sgd", batch_dim: int = 0
                 ) -> Measured:
    """Run one training step of a copy of ``model`` on ``args``/``kwargs`` and measure its peak memory."""
    import torch

    model = copy.deepcopy(model).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise UserError("the model has no trainable parameter: a training step has nothing to measure", key="measure")
    device = next(iter(params)).device if params else torch.device("cpu")
    before = _alive(model, args, kwargs)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), _quiet():
        if device.type == "cuda":
            return _cuda(model, args, kwargs, optimizer, batch_dim, before)
        peak, at, allocs = _cpu_peak(model, args, kwargs, _optimizer(optimizer, params), batch_dim)
        m = Measured(before + peak, before, "cpu", "torch.profiler (profile_memory)", at)
        if not torch.backends.mkldnn.is_available():
            return m
        with torch.backends.mkldnn.flags(enabled=False):
            plain, _, _ = _cpu_peak(model, args, kwargs, _optimizer(optimizer, params), batch_dim)
    onednn = [(op, n) for op, n in allocs if "mkldnn" in op]
    if plain < peak and onednn:
        m = Measured(m.peak_bytes, before, "cpu", m.how, at, "oneDNN", before + plain, max(onednn, key=lambda a: a[1]))
    return m


def _cuda(model: torch.nn.Module, args: tuple, kwargs: dict, optimizer: str, batch_dim: int, before: int
          ) -> Measured:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]

    def peak() -> int:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        _step(model, args, kwargs, _optimizer(optimizer, params), batch_dim)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - start

    with_cudnn = peak()
    with torch.backends.cudnn.flags(enabled=False):
        plain = peak()
    m = Measured(before + with_cudnn, before, "cuda", "torch.cuda.max_memory_allocated", "")
    if plain < with_cudnn:
        m = Measured(m.peak_bytes, before, "cuda", m.how, "", "cuDNN", before + plain)
    return m


def measured_lines(m: Measured, estimate: int) -> list[str]:
    """What ``--measure`` prints under the totals."""
    gap = m.peak_bytes - estimate
    lines = [f"Measured peak (one training step, {m.device}, {m.how}): {m.peak_bytes:,} B = estimate "
             f"{estimate:,} {'+' if gap >= 0 else '-'} {abs(gap):,} B ({gap / max(estimate, 1):+.1%})"
             + (f", at {m.at}" if m.at else "")]
    if m.backend:
        op, size = m.largest_backend_alloc
        lines.append(f"  {m.backend} workspace: with {m.backend} off the peak is {m.without_backend_bytes:,} B "
                     f"({m.peak_bytes - m.without_backend_bytes:,} B less)"
                     + (f"; its largest allocation: {size:,} B in {op} (oneDNN computes in blocked layouts, "
                        "channels padded to a multiple of 8 or 16, and keeps reordered copies)" if size else ""))
    rest = (m.without_backend_bytes if m.backend else m.peak_bytes) - estimate
    if rest > 0:
        lines.append(f"  not in the estimate{' besides' if m.backend else ''}: {rest:,} B — the gradients of the "
                     "activations alive during backward, and the allocator's other temporaries")
    if m.peak_bytes < estimate:
        lines.append("  below the estimate: the estimate holds every tensor kept for backward until the step ends; "
                     "autograd frees each one once its gradient is computed")
    return lines
