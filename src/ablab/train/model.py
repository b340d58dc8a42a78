"""The model of a run: built from ``config.model`` — a spec (with the config's batch norm / dropout
inserted) or a model reference called with ``config.model_args`` — after the caller seeded torch.

The trainer and the checkpoint loader build through :func:`run_model`, so a checkpoint is rebuilt
exactly the way it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ablab.models.construct import describe, instantiate
from ablab.models.resolve import is_reference, source_file, source_sha256
from ablab.train.config import TrainConfig
from ablab.train.variants import model_spec


@dataclass
class RunModel:
    model: nn.Module
    text: str  # one line for people: the spec string, or the reference with its arguments
    spec: Any = None  # the Spec (None for a model reference)

    @property
    def is_reference(self) -> bool:
        return self.spec is None


def run_model(config: TrainConfig, input_shape: tuple[int, ...], *, reference: str | None = None,
              forbid: str | Path | None = None, fast: bool = True) -> RunModel:
    """A freshly initialized model for ``config`` (seed torch first). ``reference`` overrides the
    config's model reference (``ablab eval --model``); ``forbid``: a folder no code may come from."""
    ref = reference or config.model
    if is_reference(ref):
        model = instantiate(ref, config.model_args, forbid=forbid)
        return RunModel(model, describe(ref, config.model_args))
    from ablab.models import build
    from ablab.train.fast import accelerate

    spec = model_spec(config, input_shape)
    model = build(spec)
    return RunModel(accelerate(model) if fast else model, spec.to_string(), spec)


def model_record(rm: RunModel, config: TrainConfig) -> dict[str, Any]:
    """What a checkpoint stores about a model reference: the reference, its arguments and the SHA-256
    of its source file (so ``eval`` can tell when the code changed since training)."""
    path = source_file(config.model)
    return {"reference": config.model, "args": dict(config.model_args),
            "source": {"path": str(path) if path else None, "sha256": source_sha256(config.model)}}
