"""Checking a whole study before its first run: every model builds for its dataset's input shape, every
dataset is known, well-formed and present, the deciding metric can be measured — so a study that could
only fail does so at once, with one error naming the key and its line, and never after writing a report
of failures.

What :func:`validate_study` checks, for every distinct configuration the study expands to:
- ``model``: parses (preset, spec string or file) and its shapes resolve for the dataset's input
  (``ablab.calc.shapes.resolve``), with the variant's batch norm and dropout inserted; a model
  reference (``file.py:Name``) is imported and built once per distinct ``model_args`` and a zero batch
  run through it, which must give one logit per class of the dataset (this imports torch);
- ``dataset``: a registered name with valid options (``synthetic:n=abc`` is refused) whose files are
  present in ``data_dir`` (when given) or the usual search places — fetch it first otherwise;
- ``metric``: the validation-based metrics need a validation split (``val_fraction > 0``).

Variant names, seeds, split seeds and value ranges are checked when the study file is parsed
(:mod:`ablab.study.studyfile`, :class:`ablab.train.config.TrainConfig`). Nothing here imports torch
unless the study trains a model reference.
"""

from __future__ import annotations

from typing import Any

from ablab.calc.shapes import resolve
from ablab.data.catalog import get_spec
from ablab.errors import UserError
from ablab.models.construct import check_output, instantiate
from ablab.models.resolve import ModelRefError, check_reference, is_reference, load_reference
from ablab.study.cost import sample_counts
from ablab.study.expand import expand
from ablab.study.ownloop import is_own, load_train, placeholders
from ablab.study.studyfile import Study, StudyError
from ablab.study.tomlpos import find_line
from ablab.train.userloss import load_loss
from ablab.train.variants import model_spec

VAL_METRICS = ("val_acc", "best_val_acc", "test_acc_at_best_val")  # need a validation split


def key_path(study: Study, variant: str, key: str) -> tuple[str, ...]:
    """Where ``key`` of a run of ``variant`` is set: a grid axis, the variant's overrides, or [base]."""
    if any(k == key for k, _ in study.grid):
        return ("grid", key)
    if key in study.variant(variant).overrides:
        return ("variants", variant, key)
    return ("base", key)


def _error(study: Study, path: tuple[str, ...], message: str) -> StudyError:
    line = find_line(study.text, path)
    where = f"{study.source}:{line}" if line else study.source
    return StudyError(f"{where}: {'.'.join(path)}: {message}")


def validate_study(study: Study) -> None:
    """Raise one StudyError for the first thing in ``study`` that would make a run fail (see module
    docstring); return None when every run can start."""

    if is_own(study.base):
        _validate_own(study)
        return
    datasets: dict[tuple[str, str | None], tuple[tuple[int, ...], int | None]] = {}
    models: set[tuple[Any, ...]] = set()
    losses: set[str] = set()
    for run in expand(study):  # bounded: expand refuses studies past max_runs before building
        c = run.config
        if study.metric in VAL_METRICS and c.val_fraction == 0:
            raise _error(study, key_path(study, run.variant, "val_fraction"),
                         f"is 0, but the study's metric '{study.metric}' needs a validation split "
                         f"(run {run.label}); set val_fraction > 0 or metric = \"test_acc\"")
        dkey = (c.dataset, c.data_dir)
        if dkey not in datasets:
            try:
                datasets[dkey] = _dataset_shape(c)
            except UserError as e:
                raise _error(study, key_path(study, run.variant, "dataset"), str(e)) from None
        shape, classes = datasets[dkey]
        mkey = (c.model, repr(sorted(c.model_args.items())), shape, classes, c.batchnorm, c.dropout,
                c.dropout_placement)
        if mkey not in models:
            try:
                _resolve_model(c, shape, classes)
            except UserError as e:
                key = "model_args" if isinstance(e, _ArgsRefused) else "model"
                raise _error(study, key_path(study, run.variant, key),
                             f"{_cut(c.model)} does not build for {c.dataset} (run {run.label}): {e}") from None
            models.add(mkey)
        if c.loss not in losses:  # a custom loss: imported and tried on a tiny batch once
            try:
                load_loss(c.loss, classes or 10)
            except UserError as e:
                raise _error(study, key_path(study, run.variant, "loss"), str(e)) from None
            losses.add(c.loss)


def _dataset_shape(config: Any) -> tuple[tuple[int, ...], int | None]:
    """The input shape and class count (None: known only once the files are read) of the config's
    dataset, after checking the name, its options and that its files are present (no reading, no
    download)."""
    from ablab.data.locate import locate, not_found_error
    from ablab.data.source_registry import is_source

    shape = sample_counts(config)[3]  # known name and valid options (synthetic:n=abc is an error)
    if is_source(config.dataset):  # your own files: sample_counts read their headers, so they are there
        return shape, None
    spec = get_spec(config.dataset)
    if spec.files is None:  # synthetic: the class count is one of its options
        from ablab.data.synthetic import parse_options

        return shape, parse_options(config.dataset).classes
    if locate(spec, config.data_dir) is None:
        raise not_found_error(spec, config.data_dir)
    return shape, len(spec.classes)


def _resolve_model(config: Any, shape: tuple[int, ...], classes: int | None) -> None:
    """Parse the model's spec and resolve its shapes (torch-free). A model reference: import it, call
    it with ``model_args`` (the caller's RNG state untouched) and run a zero batch through the result."""

    if is_reference(config.model):
        import torch


        check_reference(config.model)
        load_reference(config.model)  # a missing name or a module that fails to import: the model key
        with torch.random.fork_rng(devices=[]):
            try:
                model = instantiate(config.model, config.model_args)
            except ModelRefError as e:  # refused arguments, or a constructor that raised on them
                raise (_ArgsRefused(str(e)) if config.model_args else e) from None
        if classes is not None:
            check_output(model, config.model, shape, classes, config.dataset)
        return
    resolve(model_spec(config, shape), shape)


class _ArgsRefused(UserError):
    """The model reference imports, but calling it with the run's ``model_args`` fails."""


def _cut(v: str) -> str:
    return repr(v) if len(v) <= 60 else repr(v[:40] + "...")


def _validate_own(study: Study) -> None:
    """An own-loop study: each train function imports and takes one argument; each command's ``{key}``
    placeholders name keys of its merged config."""

    checked: set[str] = set()
    for run in expand(study):
        c = run.config.to_dict()
        ref = c.get("train")
        if ref is not None and ref not in checked:
            try:
                load_train(ref)
            except UserError as e:
                raise _error(study, key_path(study, run.variant, "train"), str(e)) from None
            checked.add(ref)
        command = c.get("command")
        if ref is None and command is not None:
            unknown = [k for k in placeholders(command) if k not in c]
            if unknown:
                raise _error(study, key_path(study, run.variant, "command"),
                             f"placeholder {{{unknown[0]}}} is not a key of the run's config (run {run.label}; "
                             f"keys: {', '.join(sorted(k for k in c if k != 'command'))})")

