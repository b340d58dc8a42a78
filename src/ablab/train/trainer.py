"""The trainer: ``fit(config) -> RunResult``.

Why it is fast (see benchmarks/train_speed.py for the figures against the course-style loop):

* the whole dataset lives in memory as one float32 tensor, normalized once, contiguous (N, C, H, W);
  a batch is ``index_select`` of a permuted index — no Dataset, no DataLoader, no per-sample Python;
* per step there is no host sync: batch losses and correct counts stay tensors in a list, summed once
  per epoch; divergence is checked every ``CHECK_EVERY`` steps on the stacked losses;
* the optimizer uses the fused CPU kernel (one call for all parameters);
* tanh and tanh + 2x2 average pooling run as cheaper equivalent arithmetic (ablab.train.fast);
* evaluation runs in large batches under ``torch.inference_mode`` with sums accumulated in float64;
* the thread count is set on purpose and recorded (one intra-op thread per run when runs go in parallel).

Determinism: the same config gives identical metrics on CPU. Three seeds drive three streams —
``init`` seeds the weights, ``data`` the shuffling and augmentation (a private generator), ``dropout``
the global stream that dropout masks come from after initialization. The caller's RNG state is
restored afterwards.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ablab.errors import UserError
from ablab.train.config import TrainConfig
from ablab.train.optim import lr_at, make_optimizer

if TYPE_CHECKING:
    from ablab.data.dataset import Dataset, Split

Callback = Callable[[str, dict[str, Any]], None]

CHECK_EVERY = 50  # steps between divergence checks (one host sync each)
METRIC_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
               "train_time_s", "eval_time_s")


@dataclass
class RunResult:
    """What one run measured. Accuracies are fractions of samples in [0, 1]."""

    status: str  # "done" | "diverged"
    history: list[dict[str, Any]]  # one dict per completed epoch, keys METRIC_KEYS (val_* None w/o validation)
    diverged: dict[str, Any] | None  # {"epoch", "step" (global, 1-based), "batch" (in the epoch), "loss"}
    best_epoch: int | None  # by validation accuracy (first of ties); None without validation
    final: dict[str, Any]  # last epoch's metrics; early stopping: the restored best-val epoch's
    seeds: dict[str, int]  # init / data / dropout
    threads: int  # torch intra-op threads used
    versions: dict[str, str]  # python, torch, numpy, ablab
    wall_time_s: float  # whole fit() call, data preparation included
    checkpoint: str | None = None  # checkpoint folder when out_dir was given
    info: dict[str, Any] = field(default_factory=dict)  # spec, params, sample counts, steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (non-finite floats become the strings "nan", "inf", "-inf")."""
        return _jsonable(dataclasses.asdict(self))  # type: ignore[no-any-return]


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


class DataMismatchError(UserError):
    """The model and the dataset do not fit together (classes, input shape)."""


def set_threads(n: int | None) -> int:
    """Set torch's intra-op thread count (None: leave it); returns the previous count.

    Study workers running several runs side by side call ``set_threads(1)``: two runs with one thread
    each use two cores better than two runs fighting over two threads each (oversubscription).
    """
    previous = torch.get_num_threads()
    if n is not None and n != previous:
        torch.set_num_threads(n)
    return previous


def versions() -> dict[str, str]:
    import numpy

    import ablab

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "ablab": ablab.__version__}


# ----------------------------------------------------------------------------------------------- data


def prepare_split(split: Split, mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(x float32 (N, C, H, W) normalized and contiguous, y int64 (N,)): done once per run."""
    from ablab.data import normalize

    x = normalize(split.x, mean, std).contiguous()
    return x, split.y.to(torch.int64).contiguous()


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float | None, float | None]:
    """(mean cross-entropy, accuracy) over all samples, in eval mode; (None, None) for an empty split.

    Batches only change speed, not the result: the sums are accumulated per sample in float64.
    """
    n = int(y.shape[0])
    if n == 0:
        return None, None
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.int64)
    for i in range(0, n, batch_size):
        out = model(x[i:i + batch_size])  # (B, K) logits
        yb = y[i:i + batch_size]
        loss_sum += F.cross_entropy(out, yb, reduction="sum").double()
        correct += (out.argmax(1) == yb).sum()
    model.train(was_training)
    return float(loss_sum) / n, int(correct) / n


# -------------------------------------------------------------------------------------------- fitting


def fit(config: TrainConfig, *, callback: Callback | None = None, out_dir: str | Path | None = None,
        dataset: Dataset | None = None) -> RunResult:
    """Train ``config.model`` on ``config.dataset`` (or the given, already loaded ``dataset``).

    Events sent to ``callback(event, data)``: ``"start"`` {config, seeds, threads, n_train, n_val,
    n_test, steps_per_epoch, spec, params}; ``"progress"`` {epoch, batch, steps_per_epoch} every
    ``CHECK_EVERY`` steps (for progress bars; ignore it otherwise); ``"epoch"`` the epoch's metrics (a
    ``history`` entry); ``"end"`` ``result.to_dict()``. With ``out_dir``: metrics.json, metrics.csv and checkpoint/.
    """
    t_start = time.perf_counter()
    with cpu_settings(config.threads), torch.random.fork_rng(devices=[]):  # caller's RNG left as it was
        return _fit(config, callback or _no_callback, out_dir, dataset, t_start)


@contextmanager
def cpu_settings(threads: int | None) -> Iterator[None]:
    """The CPU state a run computes in, restored afterwards: ``threads`` intra-op threads and
    flush-to-zero for denormal floats (denormals — e.g. Adam's second moments of rarely-used weights,
    gradients through saturated tanh — run ~100x slower on x86; flushing them changes nothing
    measurable). Training and ``evaluate_checkpoint`` use the same settings, hence the same numbers."""
    previous = set_threads(threads)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        set_threads(previous)


def _no_callback(event: str, data: dict[str, Any]) -> None:
    return None


def _fit(config: TrainConfig, callback: Callback, out_dir: str | Path | None, dataset: Dataset | None,
         t_start: float) -> RunResult:
    from ablab.models import build, count_params
    from ablab.train.fast import accelerate
    from ablab.train.variants import model_spec

    if dataset is None:
        from ablab.data import load_dataset

        dataset = load_dataset(config.dataset, data_dir=config.data_dir, val_fraction=config.val_fraction,
                               split_seed=config.split_seed, stratified=config.stratified, limit=config.limit)
    seeds = config.seeds
    threads = torch.get_num_threads()

    # --- model: the spec with the config's batch norm / dropout, weights from the init seed
    spec = model_spec(config, dataset.input_shape)
    torch.manual_seed(seeds["init"])
    model = accelerate(build(spec))
    _check_classes(model, dataset, spec.to_string())
    torch.manual_seed(seeds["dropout"])  # from here on the global stream only feeds dropout masks
    data_gen = torch.Generator().manual_seed(seeds["data"])

    # --- data: normalized once with the training split's constants, kept whole in memory
    x_train, y_train = prepare_split(dataset.train, dataset.mean, dataset.std)
    x_val, y_val = prepare_split(dataset.val, dataset.mean, dataset.std)
    x_test, y_test = prepare_split(dataset.test, dataset.mean, dataset.std)
    n_train = int(y_train.shape[0])
    if n_train == 0:
        raise DataMismatchError(f"dataset {dataset.name}: the training split is empty")
    bs = config.batch_size
    steps_per_epoch = -(-n_train // bs)
    # a last batch of one sample cannot be batch-normalized (variance of one value): drop it then
    drop_single = n_train % bs == 1 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if drop_single:
        steps_per_epoch -= 1
    has_val = int(y_val.shape[0]) > 0

    optimizer = make_optimizer(config, model)
    decay_weights = [p for p in model.parameters() if p.dim() > 1]
    scheduled = config.schedule != "constant"
    info = {"spec": spec.to_string(), "params": count_params(model), "n_train": n_train,
            "n_val": int(y_val.shape[0]), "n_test": int(y_test.shape[0]), "steps_per_epoch": steps_per_epoch}
    callback("start", {"config": config.to_dict(), "seeds": seeds, "threads": threads, **info})

    history: list[dict[str, Any]] = []
    diverged: dict[str, Any] | None = None
    best_epoch: int | None = None
    best_acc = -1.0
    kept: dict[str, torch.Tensor] | None = None  # weights behind `final` (best-val or last good epoch)
    step = 0
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        lr_epoch = lr_at(config, step, steps_per_epoch)
        perm = torch.randperm(n_train, generator=data_gen)
        xs, ys = x_train, y_train
        if config.augment:
            from ablab.data import augment

            xs, ys = augment(x_train[perm], data_gen), y_train[perm]  # whole epoch at once
            perm = torch.arange(n_train)
        losses: list[torch.Tensor] = []  # batch mean losses, summed once per epoch (no per-step sync)
        corrects: list[torch.Tensor] = []
        sizes: list[int] = []
        checked = 0  # losses[:checked] are known finite
        for b in range(steps_per_epoch):
            idx = perm[b * bs:(b + 1) * bs]
            xb, yb = xs.index_select(0, idx), ys.index_select(0, idx)  # (B, C, H, W), (B,)
            if scheduled:
                lr = lr_at(config, step, steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
            # forward: logits and the training objective (data term; + explicit L2 penalty if asked)
            out = model(xb)  # (B, K)
            loss = F.cross_entropy(out, yb, label_smoothing=config.label_smoothing)
            objective = loss
            if config.l2_penalty:
                penalty = torch.stack([w.square().sum() for w in decay_weights]).sum()  # Σ w² over weights
                objective = loss + 0.5 * config.l2_penalty * penalty
            # backward and update
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            step += 1
            # bookkeeping on tensors only
            losses.append(loss.detach())
            corrects.append((out.detach().argmax(1) == yb).sum())
            sizes.append(int(yb.shape[0]))
            if (b + 1) % CHECK_EVERY == 0 or b + 1 == steps_per_epoch:
                diverged = _find_nonfinite(losses, checked, epoch, step - b - 1)
                checked = len(losses)
                if diverged:
                    break
                callback("progress", {"epoch": epoch, "batch": b + 1, "steps_per_epoch": steps_per_epoch})
        train_time = time.perf_counter() - t0
        if diverged:
            break

        # --- measure: train (running or clean), validation, test
        t1 = time.perf_counter()
        if config.train_metrics == "clean":
            train_loss, train_acc = evaluate(model, x_train, y_train, config.eval_batch_size)
        else:
            w = torch.tensor(sizes, dtype=torch.float64)
            train_loss = float((torch.stack(losses).double() * w).sum() / w.sum())
            train_acc = int(torch.stack(corrects).sum()) / int(w.sum())
        val_loss, val_acc = evaluate(model, x_val, y_val, config.eval_batch_size)
        test_loss, test_acc = evaluate(model, x_test, y_test, config.eval_batch_size)
        metrics = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
                   "val_acc": val_acc, "test_loss": test_loss, "test_acc": test_acc, "lr": lr_epoch,
                   "train_time_s": train_time, "eval_time_s": time.perf_counter() - t1}
        history.append(metrics)

        improved = has_val and val_acc is not None and val_acc > best_acc
        if improved:
            best_acc, best_epoch = float(val_acc), epoch  # type: ignore[arg-type]
        if improved or not config.early_stopping:
            kept = {k: v.detach().clone() for k, v in model.state_dict().items()}
        callback("epoch", dict(metrics))
        if config.early_stopping and best_epoch is not None and epoch - best_epoch >= config.early_stopping:
            break

    # --- final: the last epoch, the best-val epoch under early stopping, the last good one if diverged
    final: dict[str, Any] = {}
    if history:
        final_epoch = best_epoch if (config.early_stopping and best_epoch) else history[-1]["epoch"]
        final = dict(history[final_epoch - 1])
    if kept is not None and (diverged or config.early_stopping):
        model.load_state_dict(kept)
    result = RunResult(status="diverged" if diverged else "done", history=history, diverged=diverged,
                       best_epoch=best_epoch, final=final, seeds=seeds, threads=threads, versions=versions(),
                       wall_time_s=0.0, info=info)
    if out_dir is not None:
        result.checkpoint = _write_outputs(Path(out_dir), model, config, spec, dataset, result,
                                           has_weights=bool(history), t_start=t_start)
    result.wall_time_s = time.perf_counter() - t_start
    if out_dir is not None:
        _write_metrics(Path(out_dir), result)
    callback("end", result.to_dict())
    return result


def _find_nonfinite(losses: list[torch.Tensor], first_batch: int, epoch: int, epoch_start_step: int
                    ) -> dict[str, Any] | None:
    """The first non-finite loss among the batches since the last check (one host sync)."""
    recent = torch.stack(losses[first_batch:])
    bad = ~torch.isfinite(recent)
    if not bool(bad.any()):
        return None
    i = first_batch + int(bad.nonzero()[0, 0])
    return {"epoch": epoch, "step": epoch_start_step + i + 1, "batch": i + 1, "loss": float(losses[i])}


def _check_classes(model: nn.Sequential, dataset: Dataset, spec_text: str) -> None:
    from ablab.models import output_shapes

    out = list(output_shapes(model, dataset.input_shape).values())[-1]
    if out != (dataset.num_classes,):
        raise DataMismatchError(
            f"model '{spec_text}' outputs {out} per sample but dataset {dataset.name} has "
            f"{dataset.num_classes} classes: the last layer must be linear({dataset.num_classes})"
        )


def _write_outputs(out: Path, model: nn.Module, config: TrainConfig, spec: Any, dataset: Dataset,
                   result: RunResult, *, has_weights: bool, t_start: float) -> str | None:
    from ablab.train.checkpoint import save_checkpoint

    out.mkdir(parents=True, exist_ok=True)
    if not has_weights:
        return None
    meta = {
        "config": config.to_dict(),
        "spec": spec.to_dict(),
        "spec_string": spec.to_string(),
        "dataset": {"name": dataset.name, "classes": list(dataset.classes), "input_shape": list(dataset.input_shape)},
        "normalization": {"mean": list(dataset.mean), "std": list(dataset.std)},
        "versions": result.versions,
        "seeds": result.seeds,
        "threads": result.threads,
        "status": result.status,
        "metrics": _jsonable(result.final),
    }
    return str(save_checkpoint(out / "checkpoint", model, meta))


def _write_metrics(out: Path, result: RunResult) -> None:
    (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    with open(out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(METRIC_KEYS))
        writer.writeheader()
        for row in result.history:
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in METRIC_KEYS})
