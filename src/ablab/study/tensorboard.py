"""A live view of a running study in TensorBoard: ``ablab study run --tensorboard`` (or ``[study]
tensorboard = true``) writes one event file per run, ``DIR/tensorboard/<cell>/seed<k>``, as its epochs
finish, so ``tensorboard --logdir DIR/tensorboard`` shows every run's curves while the study runs.

The driver writes them from the same events it records in the store (local workers and Ray alike); each
epoch's metrics are scalars at step = epoch (accuracies as fractions, as everywhere in ablab), and each run
carries its settings — variant, grid point, seed, and the config values the study varies — through the
HParams plugin, with ``val_acc``, ``test_acc`` and ``loss`` (training loss) as its metrics. A run that
starts again (a retry, or a resume that replays its saved epochs) starts its folder afresh. Needs the
``tensorboard`` package (``pip install 'ablab[tensorboard]'``); nothing else of TensorBoard or TensorFlow.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from pathlib import Path
from typing import Any

from ablab.errors import UserError
from ablab.study.expand import PlannedRun

METRICS = ("val_acc", "test_acc", "train_acc", "train_loss", "val_loss", "test_loss", "loss")
HPARAM_METRICS = ("val_acc", "test_acc", "train_loss")


def require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package: pip install 'ablab[tensorboard]' "
                        "(or pip install tensorboard)") from None


def run_folder(root: Path, run: PlannedRun) -> Path:
    """``root/<cell>/seed<k>``, the cell's name made safe for a path (``lr=0.01_width=64``)."""
    cell = re.sub(r"[^A-Za-z0-9_.+=-]+", "_", run.cell).strip("_") or "cell"
    return root / cell / f"seed{run.seed}"


def _hparam(v: Any) -> Any:
    """A value the HParams plugin shows: bool, number or string (anything else as its text)."""
    if isinstance(v, bool | str) or isinstance(v, int | float) and math.isfinite(v):
        return v
    return str(v)


class TensorBoardLog:
    """Turns the study's events into TensorBoard event files (called with every ``on_event``)."""

    def __init__(self, root: Path, runs: dict[int, PlannedRun], varied: list[str]) -> None:
        require_tensorboard()
        self.root = root
        self.runs = runs
        self.varied = varied  # config keys some variant or grid point changes
        self.writers: dict[int, Any] = {}

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        rid = info.get("run_id")
        if kind == "run_start" and rid in self.runs:
            self._open(rid)
        elif kind == "epoch" and rid in self.writers:
            self._scalars(rid, int(info["epoch"]), info.get("metrics") or {})
        elif kind == "run_end" and rid in self.writers:
            self._close(rid, info.get("status") == "done")
        elif kind == "study_end":
            for w in list(self.writers):
                self._close(w, False)

    def _open(self, rid: int) -> None:
        from tensorboard.plugins.hparams import summary_v2 as hp
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        run = self.runs[rid]
        folder = run_folder(self.root, run)
        if folder.exists():  # an earlier attempt: its epochs are replayed or redone
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        writer = EventFileWriter(str(folder), flush_secs=5)
        self.writers[rid] = writer
        config = run.config.to_dict()
        hparams = {"variant": run.variant, "seed": run.seed, **{k: _hparam(v) for k, v in run.point},
                   **{k: _hparam(config[k]) for k in self.varied if k in config and k not in dict(run.point)}}
        config_pb = hp.hparams_config_pb([hp.HParam(k) for k in hparams], [hp.Metric(m) for m in HPARAM_METRICS])
        self._write(writer, config_pb)
        self._write(writer, hp.hparams_pb(hparams, trial_id=run.label, start_time_secs=time.time()))
        writer.flush()

    def _scalars(self, rid: int, epoch: int, metrics: dict[str, Any]) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        values = [Summary.Value(tag=k, simple_value=float(metrics[k])) for k in METRICS
                  if isinstance(metrics.get(k), int | float) and not isinstance(metrics.get(k), bool)]
        values += [Summary.Value(tag=k, simple_value=float(v)) for k, v in metrics.items()
                   if k not in METRICS and k != "epoch" and isinstance(v, int | float) and not isinstance(v, bool)]
        if values:
            self._write(self.writers[rid], Summary(value=values), step=epoch)
            self.writers[rid].flush()

    def _close(self, rid: int, done: bool) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        writer = self.writers.pop(rid)
        end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS if done else api_pb2.STATUS_FAILURE,
                                             end_time_secs=time.time())
        content = plugin_data_pb2.HParamsPluginData(session_end_info=end, version=metadata.PLUGIN_DATA_VERSION)
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString()))
        self._write(writer, Summary(value=[Summary.Value(tag=metadata.SESSION_END_INFO_TAG, metadata=meta)]))
        writer.close()

    @staticmethod
    def _write(writer: Any, summary: Any, step: int = 0) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))
