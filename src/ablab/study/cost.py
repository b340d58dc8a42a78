"""The cost of a study before it runs (``ablab study run --dry-run``): samples per split (the splitter's
own rule), forward MACs from the size-up calculus, FLOPs per run, and seconds from a measured rate."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ablab.calc.costs import layer_cost
from ablab.calc.shapes import resolve
from ablab.data.catalog import get_spec
from ablab.data.split import split_sizes
from ablab.models.resolve import is_reference
from ablab.sizeup import summarize_module
from ablab.store import FINISHED, Store
from ablab.study.expand import expand
from ablab.study.ownloop import is_own
from ablab.study.studyfile import Study, StudyError, default_out_dir
from ablab.train.kernels import compiled as compile_model
from ablab.train.variants import model_spec


@dataclass(frozen=True)
class RunCost:
    label: str
    status: str  # in the store, or "new"
    macs: int  # forward multiply-accumulates per sample
    train_flops: float  # whole run: 3 × 2·MACs per training sample (forward + backward ≈ 2× forward) + eval
    seconds: float | None  # estimated (measured rate) or the stored wall time of a finished run


def sample_counts(config: Any) -> tuple[int, int, int, tuple[int, ...]]:
    """(n_train, n_val, n_test, input shape) of a config's dataset as the run will split it (the
    splitter's own :func:`~ablab.data.split.split_sizes`, ``limit`` included), from the data registry
    or the synthetic options — no loading, no torch."""
    from ablab.data.source_registry import is_source, source_sizes

    if is_source(config.dataset):  # your own files: counts and shape from their headers
        n_own, n_own_test, own_shape = source_sizes(config.dataset)
        return (*split_sizes(n_own, n_own_test, val_fraction=config.val_fraction, limit=config.limit), own_shape)
    spec = get_spec(config.dataset)
    n_train, n_test, shape = spec.n_train, spec.n_test, tuple(spec.shape)
    if spec.files is None:  # synthetic: sizes and shape come from its options
        from ablab.data.synthetic import parse_options

        opts = parse_options(config.dataset)
        n_train, n_test, shape = opts.n, opts.test, tuple(opts.shape)
    sizes = split_sizes(n_train, n_test, val_fraction=config.val_fraction, limit=config.limit)
    return (*sizes, shape)


def forward_macs(config: Any, input_shape: tuple[int, ...]) -> int:
    """Forward MACs per sample of the network the config trains: a spec (batch norm/dropout inserted)
    through the size-up calculus, torch-free; a model reference (``file.py:Name``) built with its
    ``model_args`` and traced at the operator level, as ``ablab summary`` does (imports torch)."""

    if is_reference(config.model):
        from ablab.train.model import run_model

        return summarize_module(run_model(config, input_shape).model, input_shape).totals.macs

    spec = model_spec(config, input_shape)
    return sum(layer_cost(r).macs for r in resolve(spec, input_shape))


def measure_rate(config: Any, input_shape: tuple[int, ...], seconds: float = 0.3, compiled: bool = False
                 ) -> tuple[float, float, float]:
    """Measured seconds per training sample and per evaluation sample, one thread, on random inputs, and
    the seconds the compile took when the training step is ``compiled`` (torch.compile, as the trainer
    does; 0 otherwise) (imports torch)."""
    import torch

    from ablab.train.model import run_model
    from ablab.train.optim import make_optimizer

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = run_model(config, input_shape).model  # the trainer's model and optimizer
        opt = make_optimizer(config, model)
        bs = config.batch_size
        x = torch.randn(bs, *input_shape)  # (B, C, H, W)
        model.eval()  # one sample through batch norm: eval mode
        with torch.no_grad():
            classes = int(model(x[:1]).shape[-1])  # labels the model can score (not always 10 classes)
        model.train()
        y = torch.randint(0, max(classes, 1), (bs,))

        step_model = model
        compile_s = 0.0
        if compiled:
            step_model = compile_model(model)

        def train_step() -> None:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(step_model(x), y).backward()
            opt.step()

        if compiled:
            t = time.perf_counter()
            train_step()  # the compile
            compile_s = time.perf_counter() - t

        def eval_step() -> None:
            with torch.no_grad():
                model(x)

        rates = []
        for step in (train_step, eval_step):
            step()  # warm-up
            n, t = 0, time.perf_counter()
            while time.perf_counter() - t < seconds / 2 or n < 2:
                step()
                n += 1
            rates.append((time.perf_counter() - t) / (n * bs))
        return rates[0], rates[1], compile_s
    finally:
        torch.set_num_threads(previous)


def estimate(study: Study, out_dir: str | Path | None = None, *, measure: bool = True) -> list[RunCost]:
    """Cost of every run: FLOPs from the size-up calculus × samples × epochs; seconds from a measured
    single-thread rate (``measure``), or the stored wall time for runs already finished in ``out_dir``.
    Validate the study first (:func:`~ablab.study.validate.validate_study`, as ``ablab study run
    --dry-run`` does) for errors that name the study file's keys."""
    if is_own(study.base):  # ablab knows neither the model nor the data of the user's own loop
        raise StudyError(f"{study.source}: a dry run cannot estimate the cost of your own training loop (ablab "
                         "does not see its model or data); time one run instead, e.g. with [study] seeds = 1")
    out = Path(out_dir) if out_dir is not None else default_out_dir(study)
    stored: dict[str, Any] = {}
    if (out / "study.sqlite").is_file():
        with Store(out, readonly=True) as store:
            stored = {r.config_hash: r for r in store.runs(study.name)}
    cache: dict[str, tuple[int, tuple[float, float, float] | None]] = {}
    costs = []
    compiled_once: set[str] = set()
    for r in expand(study):
        n_train, n_val, n_test, shape = sample_counts(r.config)
        compiled = measure and r.config.kernels == "compiled"
        key = json.dumps([r.config.model, r.config.model_args, r.config.dataset, r.config.batchnorm,
                          r.config.dropout, r.config.dropout_placement, r.config.batch_size, compiled])
        if key not in cache:
            macs = forward_macs(r.config, shape)
            cache[key] = (macs, measure_rate(r.config, shape, compiled=compiled) if measure else None)
        macs, rate = cache[key]
        n_clean = min(n_train, r.config.train_eval_subsample or n_train)  # clean: a pass over (a subsample of) train
        n_eval = n_val + n_test + (n_clean if r.config.train_metrics == "clean" else 0)
        flops = r.config.epochs * (3 * 2 * macs * n_train + 2 * macs * n_eval)
        row = stored.get(r.key)
        seconds = None
        if row is not None and row.status in FINISHED and row.wall_time_s:
            seconds = float(row.wall_time_s)
        elif rate is not None:
            seconds = r.config.epochs * (rate[0] * n_train + rate[1] * n_eval)
            if key not in compiled_once:  # the first compile of a model; later runs read inductor's cache
                seconds += rate[2]
                compiled_once.add(key)
        costs.append(RunCost(r.label, row.status if row is not None else "new", macs, float(flops), seconds))
    return costs
