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

A run goes through named phases (``_fit`` reads as their list): ``_setup`` (data, model, seeds,
optimizer), then per epoch ``_train_epoch`` → ``_measure`` → ``_record_epoch``, and ``_finish`` (final
metrics, kept weights, output files).

Determinism: the same config gives identical metrics on CPU. Three seeds drive three streams —
``init`` seeds the weights, ``data`` the shuffling and augmentation (a private generator), ``dropout``
the global stream that dropout masks come from after initialization. The caller's RNG state is
restored afterwards.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ablab.data.split import choose
from ablab.display import RunResultDisplay
from ablab.errors import UserError
from ablab.jsonable import jsonable
from ablab.models.construct import check_output
from ablab.train import resume
from ablab.train.config import TrainConfig
from ablab.train.device import device_info, device_settings, eval_batch_size, resolve_device, rng_devices
from ablab.train.kernels import compiled
from ablab.train.optim import FusedOptimizer, lr_at, make_optimizer
from ablab.train.outputs import METRIC_KEYS, write_metrics, write_outputs
from ablab.train.runtime import cpu_settings, evaluate, evaluate_confusion, prepare_split, set_threads, versions
from ablab.train.userloss import load_loss

__all__ = ["CHECK_EVERY", "METRIC_KEYS", "DataMismatchError", "RunResult", "cpu_settings", "evaluate", "fit",
           "prepare_split", "set_threads", "versions"]

if TYPE_CHECKING:
    from ablab.data.dataset import Dataset

Callback = Callable[[str, dict[str, Any]], None]

CHECK_EVERY = 50  # steps between divergence checks (one host sync each)


@dataclass
class RunResult(RunResultDisplay):  # RunResultDisplay: _repr_html_ and to_pandas() for notebooks
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
    device: dict[str, Any] = field(default_factory=dict)  # where it ran: device, name, library versions
    info: dict[str, Any] = field(default_factory=dict)  # spec, params, sample counts, steps_per_epoch, classes
    test_confusion: list[list[int]] | None = None  # [true][predicted] test counts of the weights behind `final`

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (non-finite floats become the strings "nan", "inf", "-inf")."""
        return jsonable(dataclasses.asdict(self), nonfinite="string")  # type: ignore[no-any-return]


class RunAbortedError(UserError):
    """User code called sys.exit() during a run: the run failed (the process does not end with exit 0)."""


class DataMismatchError(UserError):
    """The model and the dataset do not fit together (classes, input shape)."""


def fit(config: TrainConfig, *, callback: Callback | None = None, out_dir: str | Path | None = None,
        dataset: Dataset | None = None) -> RunResult:
    """Train ``config.model`` on ``config.dataset`` (or the given, already loaded ``dataset``).

    Events sent to ``callback(event, data)``: ``"start"`` {config, seeds, threads, n_train, n_val,
    n_test, steps_per_epoch, spec, params}; ``"progress"`` {epoch, batch, steps_per_epoch} every
    ``CHECK_EVERY`` steps (for progress bars; ignore it otherwise); ``"epoch"`` the epoch's metrics (a
    ``history`` entry); ``"end"`` ``result.to_dict()``. With ``out_dir``: metrics.json, metrics.csv and checkpoint/,
    and after every epoch its state in ``out_dir/resume/`` (event ``"saved"`` {epoch, path}; removed when
    the run ends): a rerun into the same folder continues after the last saved epoch (event ``"resume"``
    {epoch}, then ``"epoch"`` for each restored epoch) and ends exactly as an uninterrupted run.
    """
    t_start = time.perf_counter()
    device = resolve_device(config.device)
    try:
        with cpu_settings(config.threads), device_settings(device), \
                torch.random.fork_rng(devices=rng_devices(device)):  # the caller's RNG is left as it was
            return _fit(config, callback or _no_callback, out_dir, dataset, t_start, device)
    except SystemExit as e:  # your model (or loss) ended the process: a failed run, said as one, never exit 0
        raise RunAbortedError(f"the run was stopped by sys.exit({e.code!r}) inside your code (the model's "
                              "forward or constructor); nothing was saved") from None


def _no_callback(event: str, data: dict[str, Any]) -> None:
    return None


# ------------------------------------------------------------------------------------ the run's phases


@dataclass
class _Setup:
    """Built once per run (phase 1): everything an epoch reads."""

    config: TrainConfig
    dataset: Dataset
    device: torch.device
    built: Any  # RunModel: the model, its one-line text, its Spec (config's bn/dropout applied; None: own module)
    model: nn.Module
    optimizer: Any
    data_gen: torch.Generator  # shuffling order and augmentation
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]  # train/val/test -> (x normalized, y int64)
    steps_per_epoch: int
    decay_weights: list[torch.Tensor]  # the weights an explicit L2 penalty sums over
    info: dict[str, Any]
    loss_fn: Any = None  # the config's own loss (ablab.train.userloss); None: cross-entropy
    step_model: Any = None  # what full training batches go through: the model, or torch.compile of it


@dataclass
class _State:
    """What changes from epoch to epoch."""

    history: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0  # optimizer steps taken (global, 0-based index of the next one)
    diverged: dict[str, Any] | None = None
    best_epoch: int | None = None  # by validation accuracy, first of ties
    best_acc: float = -1.0
    kept: dict[str, torch.Tensor] | None = None  # weights behind `final` (best-val or last good epoch)
    stopped: bool = False  # early stopping ended the run


@dataclass
class _EpochStats:
    """One epoch of training as it went: per-batch losses and correct counts, kept as tensors."""

    lr: float  # the learning rate at the epoch's first step
    losses: list[torch.Tensor] = field(default_factory=list)  # batch mean losses
    corrects: list[torch.Tensor] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    seconds: float = 0.0


def _fit(config: TrainConfig, callback: Callback, out_dir: str | Path | None, dataset: Dataset | None,
         t_start: float, device: torch.device) -> RunResult:
    run = _setup(config, dataset, device)
    callback("start", {"config": config.to_dict(), "seeds": config.seeds, "threads": torch.get_num_threads(),
                       "device": device_info(device), **run.info})
    state = _State()
    # a folder with a finished epoch's state of this config: continue after it (ablab.train.resume)
    resumable = out_dir is not None and isinstance(run.optimizer, FusedOptimizer)
    first = resume.restore(out_dir, run, state) + 1 if resumable else 1  # type: ignore[arg-type]
    if first > 1:
        callback("resume", {"epoch": first - 1})
        for metrics in state.history:
            callback("epoch", dict(metrics))
    for epoch in range(first, config.epochs + 1):
        if state.stopped:
            break
        stats = _train_epoch(run, state, epoch, callback)
        if state.diverged:
            break
        metrics = _measure(run, epoch, stats)
        state.stopped = _record_epoch(run, state, metrics)
        if resumable:
            callback("saved", {"epoch": epoch, "path": str(resume.save(out_dir, run, state))})  # type: ignore[arg-type]
        callback("epoch", dict(metrics))
    result = _finish(run, state, out_dir, t_start, callback)
    if resumable:
        resume.clear(out_dir)  # type: ignore[arg-type]
    return result


def _setup(config: TrainConfig, dataset: Dataset | None, device: torch.device) -> _Setup:
    """Phase 1: load the data, build the model from the init seed, seed the other streams, normalize
    the splits once (on the device), make the optimizer."""
    from ablab.data.load import load_dataset_for
    from ablab.models import count_params
    from ablab.train.model import run_model

    dataset = load_dataset_for(config, dataset)
    seeds = config.seeds
    # --- model: the spec with the config's batch norm / dropout, or the user's own module called with
    # model_args; built once, after the init seed is set, so its weights come from that seed
    torch.manual_seed(seeds["init"])
    built = run_model(config, dataset.input_shape, fast=device.type == "cpu")  # fast: cheaper CPU tanh/pooling
    model = built.model
    if built.is_reference:
        check_output(model, config.model, dataset.input_shape, dataset.num_classes, dataset.name)
    else:
        _check_classes(model, dataset, built.text)
    model.to(device)
    torch.manual_seed(seeds["dropout"])  # from here on the global stream only feeds dropout masks
    data_gen = torch.Generator().manual_seed(seeds["data"])

    # --- data: normalized once with the training split's constants, kept whole in (device) memory
    splits = {name: prepare_split(getattr(dataset, name), dataset.mean, dataset.std, device)
              for name in ("train", "val", "test")}
    n_train = int(splits["train"][1].shape[0])
    if n_train == 0:
        raise DataMismatchError(f"dataset {dataset.name}: the training split is empty")
    steps_per_epoch = -(-n_train // config.batch_size)
    # a last batch of one sample cannot be batch-normalized (variance of one value): drop it then
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if has_bn and n_train % config.batch_size == 1:
        steps_per_epoch -= 1

    splits["train_eval"] = _train_eval_split(config, *splits["train"])

    optimizer = make_optimizer(config, model)
    info = {"dataset": dataset.name, "dataset_source": dataset.source, "pixel_scale": dataset.scale,
            "spec": built.text, "params": count_params(model), "n_train": n_train,
            "n_val": int(splits["val"][1].shape[0]), "n_test": int(splits["test"][1].shape[0]),
            "steps_per_epoch": steps_per_epoch, "classes": list(dataset.classes)}
    if config.train_metrics == "clean":  # recorded: the size of the clean pass the gap is measured on
        info["n_train_eval"] = int(splits["train_eval"][1].shape[0])
    info["kernels"] = config.kernels
    step_model = compiled(model) if info["kernels"] == "compiled" else model
    return _Setup(config, dataset, device, built, model, optimizer, data_gen, splits, steps_per_epoch,
                  [p for p in model.parameters() if p.dim() > 1], info, load_loss(config.loss, dataset.num_classes),
                  step_model)


TRAIN_EVAL_SEED = 7_000_003  # + split_seed: the clean-pass subsample, fixed across a study's seeds


def _train_eval_split(config: TrainConfig, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples of the clean train pass: the whole training split, or ``train_eval_subsample`` of
    them drawn stratified by class from a generator seeded by the split seed (so every seed of a study
    measures the same subsample)."""
    k = config.train_eval_subsample
    if config.train_metrics != "clean" or k is None or k >= int(y.shape[0]):
        return x, y

    gen = torch.Generator().manual_seed(TRAIN_EVAL_SEED + config.split_seed)
    y_cpu = y.cpu()
    idx = choose(y_cpu, torch.arange(int(y_cpu.shape[0])), k, gen, stratified=True).to(y.device)
    return x.index_select(0, idx), y.index_select(0, idx)


def _train_epoch(run: _Setup, state: _State, epoch: int, callback: Callback) -> _EpochStats:
    """Phase 2: one pass over the shuffled (and augmented) training split. Sets ``state.diverged`` and
    stops at the first non-finite loss (checked every CHECK_EVERY steps: one host sync each)."""
    config, model, optimizer = run.config, run.model, run.optimizer
    t0 = time.perf_counter()
    model.train()
    stats = _EpochStats(lr=lr_at(config, state.step, run.steps_per_epoch))
    xs, ys = run.splits["train"]
    n_train, bs = int(ys.shape[0]), config.batch_size
    perm = torch.randperm(n_train, generator=run.data_gen).to(run.device)  # drawn on the CPU: same order anywhere
    if config.augment:
        from ablab.data import augment

        xs, ys = augment(xs[perm], run.data_gen), ys[perm]  # whole epoch at once, on the device
        perm = torch.arange(n_train, device=run.device)
    scheduled = config.schedule != "constant"
    checked = 0  # stats.losses[:checked] are known finite
    for b in range(run.steps_per_epoch):
        idx = perm[b * bs:(b + 1) * bs]
        xb, yb = xs.index_select(0, idx), ys.index_select(0, idx)  # (B, C, H, W), (B,)
        if scheduled:
            lr = lr_at(config, state.step, run.steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
        # forward: logits and the training objective (data term; + explicit L2 penalty if asked); a compiled
        # step takes full batches only (a last, smaller batch would compile a second graph): that one runs eager
        out = (run.step_model if yb.shape[0] == bs else model)(xb)  # (B, K)
        if run.loss_fn is None:
            loss = F.cross_entropy(out, yb, label_smoothing=config.label_smoothing)
        else:
            loss = run.loss_fn(out, yb)  # the config's own loss, checked to give a scalar in setup
        objective = loss
        if config.l2_penalty:
            penalty = torch.stack([w.square().sum() for w in run.decay_weights]).sum()  # Σ w² over weights
            objective = loss + 0.5 * config.l2_penalty * penalty
        # backward and update
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        state.step += 1
        # bookkeeping on tensors only (no host sync)
        stats.losses.append(loss.detach())
        stats.corrects.append((out.detach().argmax(1) == yb).sum())
        stats.sizes.append(int(yb.shape[0]))
        if (b + 1) % CHECK_EVERY == 0 or b + 1 == run.steps_per_epoch:
            state.diverged = _find_nonfinite(stats.losses, checked, epoch, state.step - b - 1)
            checked = len(stats.losses)
            if state.diverged:
                break
            callback("progress", {"epoch": epoch, "batch": b + 1, "steps_per_epoch": run.steps_per_epoch})
    stats.seconds = time.perf_counter() - t0
    return stats


def _measure(run: _Setup, epoch: int, stats: _EpochStats) -> dict[str, Any]:
    """Phase 3: the epoch's metrics — train (running average or a clean pass), validation, test."""
    config, model = run.config, run.model
    t1 = time.perf_counter()
    bs = eval_batch_size(config.eval_batch_size, run.device)
    if config.train_metrics == "clean":
        train_loss, train_acc = evaluate(model, *run.splits["train_eval"], bs)
    else:
        w = torch.tensor(stats.sizes, dtype=torch.float64)
        train_loss = float((torch.stack(stats.losses).cpu().double() * w).sum() / w.sum())
        train_acc = int(torch.stack(stats.corrects).sum()) / int(w.sum())
    val_loss, val_acc = evaluate(model, *run.splits["val"], bs)
    test_loss, test_acc = evaluate(model, *run.splits["test"], bs)
    return {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
            "val_acc": val_acc, "test_loss": test_loss, "test_acc": test_acc, "lr": stats.lr,
            "train_time_s": stats.seconds, "eval_time_s": time.perf_counter() - t1}


def _record_epoch(run: _Setup, state: _State, metrics: dict[str, Any]) -> bool:
    """Phase 4: add the epoch to the history, track the best validation epoch and the weights behind
    ``final``; True when early stopping ends the run."""
    config, epoch = run.config, int(metrics["epoch"])
    state.history.append(metrics)
    val_acc = metrics["val_acc"]
    improved = run.info["n_val"] > 0 and val_acc is not None and val_acc > state.best_acc
    if improved:
        state.best_acc, state.best_epoch = float(val_acc), epoch
    if improved or not config.early_stopping:
        state.kept = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    return bool(config.early_stopping and state.best_epoch is not None
                and epoch - state.best_epoch >= config.early_stopping)


def _finish(run: _Setup, state: _State, out_dir: str | Path | None, t_start: float,
            callback: Callback) -> RunResult:
    """Phase 5: the final metrics (the last epoch; the best-val epoch under early stopping; the last
    good one if diverged), the weights behind them, and the output files."""
    config, model = run.config, run.model
    final: dict[str, Any] = {}
    if state.history:
        final_epoch = state.best_epoch if (config.early_stopping and state.best_epoch) else state.history[-1]["epoch"]
        final = dict(state.history[final_epoch - 1])
    if state.kept is not None and (state.diverged or config.early_stopping):
        model.load_state_dict(state.kept)
    result = RunResult(status="diverged" if state.diverged else "done", history=state.history,
                       diverged=state.diverged, best_epoch=state.best_epoch, final=final, seeds=config.seeds,
                       threads=torch.get_num_threads(), versions=versions(), wall_time_s=0.0, info=run.info,
                       device=device_info(run.device))
    if state.history and not state.diverged and run.info["n_test"] > 0:  # per-class results of those weights
        bs = eval_batch_size(config.eval_batch_size, run.device)
        _, acc, confusion = evaluate_confusion(model, *run.splits["test"], bs, run.dataset.num_classes)
        if acc == final.get("test_acc"):  # same weights, same evaluation: recorded only when it agrees
            result.test_confusion = confusion
    if out_dir is not None:
        result.checkpoint = write_outputs(Path(out_dir), model, config, run.built, run.dataset, result,
                                          has_weights=bool(state.history))
    result.wall_time_s = time.perf_counter() - t_start
    if out_dir is not None:
        write_metrics(Path(out_dir), result)
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


def _check_classes(model: nn.Module, dataset: Dataset, spec_text: str) -> None:
    from ablab.models import output_shapes

    out = list(output_shapes(model, dataset.input_shape).values())[-1]
    if out != (dataset.num_classes,):
        raise DataMismatchError(
            f"model '{spec_text}' outputs {out} per sample but dataset {dataset.name} has "
            f"{dataset.num_classes} classes: the last layer must be linear({dataset.num_classes})"
        )
