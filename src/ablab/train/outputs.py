"""What a finished run leaves in its folder: ``checkpoint/`` (ablab.train.checkpoint), ``metrics.json``
and ``metrics.csv``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from ablab.jsonable import jsonable
from ablab.metrics import EPOCH_METRICS
from ablab.train.config import TrainConfig

if TYPE_CHECKING:
    from ablab.data.dataset import Dataset

METRIC_KEYS = ("epoch", *EPOCH_METRICS)  # the one list: ablab.metrics


def write_outputs(out: Path, model: nn.Module, config: TrainConfig, spec: Any, dataset: Dataset,
                  result: Any, *, has_weights: bool) -> str | None:
    """The final checkpoint (weights + config.json with the config, spec, data, versions, device, metrics)."""
    from ablab.train.checkpoint import save_checkpoint
    from ablab.train.model import model_record

    out.mkdir(parents=True, exist_ok=True)
    if not has_weights:
        return None
    meta = {
        "config": config.to_dict(),
        "spec": None if spec.is_reference else spec.spec.to_dict(),  # ``spec``: the run's RunModel
        "spec_string": spec.text,
        "model": model_record(spec, config) if spec.is_reference else None,
        "dataset": {"name": dataset.name, "source": dataset.source, "pixel_scale": dataset.scale,
                    "format": dataset.info.get("format"),
                    "classes": list(dataset.classes), "input_shape": list(dataset.input_shape),
                    "test_sha256": dataset.test_sha256()},
        "normalization": {"mean": list(dataset.mean), "std": list(dataset.std)},
        "versions": result.versions,
        "seeds": result.seeds,
        "threads": result.threads,
        "device": result.device,
        "status": result.status,
        "metrics": jsonable(result.final, nonfinite="string"),
    }
    return str(save_checkpoint(out / "checkpoint", model, meta))


def write_metrics(out: Path, result: Any) -> None:
    """metrics.json (the whole RunResult) and metrics.csv (one row per epoch)."""
    (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    with open(out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(METRIC_KEYS))
        writer.writeheader()
        for row in result.history:
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in METRIC_KEYS})
