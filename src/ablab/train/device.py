"""Where a run computes: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` | ``mps``.

``auto`` picks CUDA, then Apple's MPS, then the CPU. The choice, the device's name and the library
versions are recorded with every run (``RunResult.device``, the checkpoint's ``device``).

What differs off the CPU (the trainer's code path is otherwise the same):

* the whole dataset is moved to the device once as uint8 and normalized there once; batches are index
  gathers on the device; the shuffling order and augmentation draws come from the run's CPU generator
  (so they are the same on every device) and the augmentation itself runs on the device;
* evaluation runs in batches of at least ``GPU_EVAL_BATCH`` samples;
* CUDA runs with ``torch.use_deterministic_algorithms(True, warn_only=True)``, cuDNN's deterministic
  kernels and no benchmark autotuning, and ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (set when unset, before
  the first CUDA use): the same seed on the same GPU, driver and library versions gives the same
  metrics. Operations without a deterministic CUDA kernel (e.g. ``adaptive_avg_pool2d``'s backward)
  still run, with PyTorch's warning, and may differ in the last bits between runs. MPS offers no such
  switch: runs there are not guaranteed to repeat bit for bit. MPS has no float64, so evaluation sums
  accumulate in float32 there.

The CPU path is exactly the one before devices existed: same tensors, same kernels, same numbers.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ablab.errors import UserError
from ablab.train.config import DEVICE_PATTERN

GPU_EVAL_BATCH = 8192  # evaluation batch on CUDA/MPS: large batches keep the device busy
CUBLAS_WORKSPACE = ":4096:8"  # what deterministic cuBLAS needs (PyTorch's reproducibility notes)


class DeviceError(UserError):
    """A device that is not available here (or a malformed device name)."""


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``; ``auto``: CUDA, else MPS, else CPU. Unavailable devices raise
    :class:`DeviceError` naming what this torch build has."""
    if not DEVICE_PATTERN.fullmatch(name):
        raise DeviceError(f"device: expected auto, cpu, cuda, cuda:N or mps, got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if mps_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not mps_available():
            raise DeviceError(f"device: 'mps' is not available here ({available_text()})")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise DeviceError(f"device: {name!r} is not available here ({available_text()})")
    index = int(name.partition(":")[2] or torch.cuda.current_device())
    if index >= torch.cuda.device_count():
        raise DeviceError(f"device: {name!r} does not exist here ({available_text()})")
    return torch.device("cuda", index)


def available_text() -> str:
    """What this machine's torch can use, for error messages and ``ablab train --help``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if mps_available():
        found.append("mps")
    cuda = torch.version.cuda  # type: ignore[attr-defined]
    build = f"torch {torch.__version__}, " + (f"CUDA {cuda}" if cuda else "built without CUDA")
    return f"available: {', '.join(found)}; {build}"


def device_info(device: torch.device) -> dict[str, Any]:
    """What a run records about where it ran: the device, its name and the library versions that
    decide its numerics."""
    info: dict[str, Any] = {"device": str(device), "type": device.type}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, capability=f"{props.major}.{props.minor}",
                    memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,  # type: ignore[attr-defined]
                    cudnn=torch.backends.cudnn.version(), deterministic=True)
    elif device.type == "mps":
        info.update(name=f"Apple MPS ({platform.machine()})", deterministic=False)
    else:
        info.update(name=platform.processor() or platform.machine(), threads=torch.get_num_threads(),
                    deterministic=True)
    info["torch"] = torch.__version__
    return info


def eval_batch_size(configured: int, device: torch.device) -> int:
    """The evaluation batch: the configured one on CPU (256 keeps activations in cache), at least
    ``GPU_EVAL_BATCH`` on a GPU."""
    return configured if device.type == "cpu" else max(configured, GPU_EVAL_BATCH)


@contextmanager
def device_settings(device: torch.device) -> Iterator[None]:
    """Deterministic kernels while a run computes on CUDA (restored afterwards); nothing elsewhere."""
    if device.type != "cuda":
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        with torch.cuda.device(device):
            yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[2], previous[3]


def rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose RNG state a run forks (dropout masks on the GPU come from them)."""
    return [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
