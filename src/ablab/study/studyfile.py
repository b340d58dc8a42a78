"""Study files: one TOML file describes a whole comparison — base config, named variants, grid, seeds.

::
    [study]
    name = "fashion-regularization"
    seeds = 5                      # seeds 0..4 (or a list: [0, 1, 7])
    metric = "test_acc"            # what decides: see METRICS
    baseline = "baseline"          # the variant every other variant is compared with

    [base]                         # any TrainConfig field (ablab.train.config)
    model = "lenet5"
    epochs = 12
    # train_metrics = "clean" is the study default (the report shows generalization gaps: like with like)
    train_eval_subsample = 10000   # optional: that clean pass on a fixed stratified 10,000 of the train split

    [variants.baseline]            # a variant: overrides of [base]
    [variants.dropout]
    dropout = 0.5

    # your own model: model = "mymodel.py:LeNet5V1" (relative to this file) in [base] with
    # model_args = { use_dropout = false }; a variant's model_args are merged over the base's

    [grid]                         # optional: every combination of these values, for every variant
    lr = [1e-3, 3e-3]

Parsing uses the standard library's ``tomllib`` (nothing in the file is executed). Every mistake —
an unknown key, a wrong type, an impossible value — is reported as ``file:line: key: what was
expected``; ``tomllib`` does not give key positions, so :func:`find_line` finds them by scanning the text.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ablab.metrics import CONFIDENCE, DECIDING_METRICS
from ablab.models.resolve import absolute_reference, is_reference, parse_reference
from ablab.reading import read_utf8
from ablab.registry import did_you_mean
from ablab.study.definition import DEFAULT_MAX_RUNS, Study, StudyError, Variant
from ablab.study.ownloop import OwnConfig, check_own_keys, is_own
from ablab.study.tomlpos import find_line
from ablab.train.config import FIELDS, MAX_SEED, ConfigError, TrainConfig
from ablab.train.variants import apply_variants

METRICS = DECIDING_METRICS  # metric name -> what it means (ablab.metrics holds the one list)

STUDY_KEYS = {
    "name": "the study's name (default: the file name); also its default output folder runs/<name>",
    "description": "one paragraph shown at the top of the report",
    "seeds": "number of seeds (seeds 0..n-1) or an explicit list of distinct seeds",
    "metric": f"what decides: one of {', '.join(METRICS)}",
    "baseline": "the variant the others are compared with (default: 'baseline' if present, else the first)",
    "reference": "grid point the other grid points are compared with, e.g. {lr = 1e-3} (default: first values)",
    "confidence": f"confidence level of every interval (default {CONFIDENCE})",
    "max_runs": "refuse to expand past this many runs (default 10,000; --max-runs overrides)",
    "tensorboard": "true: write TensorBoard event files per run as epochs finish, in <out>/tensorboard",
}
VARIANT_EXTRA_KEYS = {
    "description": "one line shown in the report",
    "use": "named transforms from ablab.train.variants applied before the overrides, e.g. ['bn']",
}
TOP_KEYS = ("study", "base", "variants", "grid")
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
MAX_NAME = 64  # characters of a study or variant name (they become folder names)
MAX_STUDY_BYTES = 1 << 20  # a study file is a few KB; refuse anything past 1 MiB before parsing it


# ---------------------------------------------------------------- parsing


def resolve_study_path(name_or_path: str | Path) -> tuple[str, str]:
    """(source, text) of a study file path or a preset study name (``fashion-regularization``)."""
    p = Path(name_or_path)
    if p.is_file():
        return str(p), read_utf8(p, MAX_STUDY_BYTES, StudyError, "study files are UTF-8 TOML")
    name = str(name_or_path).removesuffix(".toml")
    presets = list_study_presets()
    if name in presets:
        text = resources.files("ablab.study").joinpath("presets", f"{name}.toml").read_text(encoding="utf-8")
        return f"preset {name}", text
    hint = did_you_mean(name, presets) or f" (presets: {', '.join(presets)})"
    raise StudyError(f"{name_or_path}: no such study file or preset study{hint}")


def list_study_presets() -> list[str]:
    """Names of the preset studies shipped in ablab/study/presets/."""
    folder = resources.files("ablab.study").joinpath("presets")
    return sorted(e.name.removesuffix(".toml") for e in folder.iterdir() if e.name.endswith(".toml"))


def read_study(name_or_path: str | Path, *, max_runs: int | None = None) -> Study:
    """Parse and validate a study file (path) or preset study (name). ``max_runs`` overrides the
    file's ``[study] max_runs`` (default 10,000): a study expanding past it is refused."""
    source, text = resolve_study_path(name_or_path)
    default_name = Path(source).stem if not source.startswith("preset ") else source.split(" ", 1)[1]
    return parse_study(text, source=source, default_name=default_name, max_runs=max_runs)


def parse_study(text: str | dict[str, Any], source: str = "study.toml", default_name: str = "study",
                max_runs: int | None = None) -> Study:
    """Validate ``text`` (a TOML study file, or a dict shaped like one, stored as JSON) into a
    :class:`Study`; errors name the key and its line."""
    if isinstance(text, dict):
        return _Checker(json.dumps(text, indent=1, default=str), source).study(text, default_name, max_runs)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{source}: not valid TOML: {e}") from None
    except RecursionError:
        raise StudyError(f"{source}: not readable TOML: arrays or tables nested too deeply") from None
    if not any(k in doc for k in ("base", "variants", "grid")):
        raise StudyError(f"{source}: defines nothing to train (no [base], [variants.NAME] or [grid] table); a study "
                         "names its model and dataset in [base] — start from a preset: ablab study presets --show "
                         "fashion-regularization")
    return _Checker(text, source).study(doc, default_name, max_runs)


class _Checker:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.own = False

    def error(self, path: tuple[str, ...], message: str) -> StudyError:
        line = find_line(self.text, path)
        where = f"{self.source}:{line}" if line else self.source
        key = ".".join(p if len(p) <= 40 else f"{p[:30]}...({len(p)} characters)" for p in path)
        return StudyError(f"{where}: {key}: {message}")

    def unknown(self, path: tuple[str, ...], allowed: list[str]) -> StudyError:
        hint = did_you_mean(path[-1], allowed) or f" (expected one of: {', '.join(allowed)})"
        return self.error(path, f"unknown key{hint}")

    def table(self, doc: dict[str, Any], key: str) -> dict[str, Any]:
        v = doc.get(key, {})
        if not isinstance(v, dict):
            raise self.error((key,), f"expected a table [{key}], got {type(v).__name__}")
        return v

    def config(self, d: dict[str, Any], prefix: tuple[str, ...]) -> TrainConfig:
        """TrainConfig(**d), with its errors moved onto the offending key's line."""
        for k in d:
            if k not in FIELDS:
                raise self.unknown((*prefix, k), list(FIELDS))
        try:
            return TrainConfig(**d)
        except ConfigError as e:
            key, _, msg = str(e).partition(": ")
            key = key.split("/")[0]
            raise self.error((*prefix, key) if key in FIELDS else prefix, msg or str(e)) from None

    def study(self, doc: dict[str, Any], default_name: str, max_runs: int | None = None) -> Study:
        for k in doc:
            if k not in TOP_KEYS:
                raise self.unknown((k,), list(TOP_KEYS))
        meta = self.table(doc, "study")
        for k in meta:
            if k not in STUDY_KEYS:
                raise self.unknown(("study", k), list(STUDY_KEYS))
        name = self.string(meta, ("study", "name"), default_name)
        if not NAME_RE.match(name) or len(name) > MAX_NAME:
            raise self.error(("study", "name"), f"expected at most {MAX_NAME} letters, digits, '_', '-', '.', "
                             f"got {_cut(name)}")
        limit = self.max_runs(meta, max_runs)
        description = self.string(meta, ("study", "description"), "")

        # a study shows generalization gaps: its train accuracy is a clean eval-mode pass unless the base
        # says otherwise (train_eval_subsample = N makes that pass cheap on a fixed stratified subsample)
        base = dict(self.table(doc, "base"))
        self.own = is_own(base)  # the user's own train function or script: free-form keys (ablab.study.ownloop)
        if not self.own:
            base = {"train_metrics": "clean", **base}
        if "seed" in base:
            raise self.error(("base", "seed"), "set the seeds in [study] seeds, not in [base]")
        if self.own:
            check_own_keys(base, ("base",), self.error, self.model_ref)
        else:
            self.model_ref(base, ("base",))
            self.model_ref(base, ("base",), key="loss")
            self.config(base, ("base",))

        variants = self.variants(self.table(doc, "variants"), base)
        grid = self.grid(self.table(doc, "grid"), base, variants)
        cells = len(variants) * math.prod(len(v) for _, v in grid)
        seeds = self.seeds(meta.get("seeds", 3), cells, limit)
        metric = self.string(meta, ("study", "metric"), "test_acc")
        if metric not in METRICS:
            raise self.error(("study", "metric"), f"expected one of {', '.join(METRICS)}, got {metric!r}")
        names = [v.name for v in variants]
        default_baseline = "baseline" if "baseline" in names else names[0]
        baseline = self.string(meta, ("study", "baseline"), default_baseline)
        if baseline not in names:
            raise self.error(("study", "baseline"), f"no variant named {baseline!r} (variants: {', '.join(names)})")
        reference = self.reference(meta.get("reference", {}), grid)
        confidence = meta.get("confidence", CONFIDENCE)
        if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence < 1:
            raise self.error(("study", "confidence"), f"expected a number in (0, 1), got {confidence!r}")
        tensorboard = meta.get("tensorboard", False)
        if not isinstance(tensorboard, bool):
            raise self.error(("study", "tensorboard"), f"expected true or false, got {_cut(tensorboard)}")
        return Study(name, description, dict(base), variants, grid, seeds, metric, baseline, reference,
                     float(confidence), self.source, self.text, limit, tensorboard)

    def max_runs(self, meta: dict[str, Any], override: int | None) -> int:
        if override is not None:
            if isinstance(override, bool) or not isinstance(override, int) or override < 1:
                raise StudyError(f"--max-runs: expected a positive integer, got {override!r}")
            return override
        v = meta.get("max_runs", DEFAULT_MAX_RUNS)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise self.error(("study", "max_runs"), f"expected a positive integer, got {_cut(v)}")
        return v

    def too_many(self, cells: int, n_seeds: int, limit: int) -> StudyError:
        return self.error(("grid",) if cells > limit else ("study", "seeds"),
                          f"the study expands to {cells * n_seeds:,} runs ({cells:,} cell(s) × {n_seeds:,} "
                          f"seed(s)), more than the limit of {limit:,}; shrink the grid or the seeds, or raise "
                          "the limit with --max-runs N or [study] max_runs = N")

    def model_ref(self, d: dict[str, Any], path: tuple[str, ...], key: str = "model") -> None:
        """A model reference's file, relative to the study file's folder, made absolute in ``d`` (so every
        worker, local or Ray, imports the same file); a missing file is named here, before any run."""

        model = d.get(key)
        if not is_reference(model):
            return
        folder = Path(self.source).parent if Path(self.source).is_file() else Path.cwd()
        d[key] = absolute_reference(model, folder)
        ref = parse_reference(d[key])
        if ref.is_file and not Path(ref.target).is_file():
            raise self.error((*path, key), f"no such file {model.rpartition(':')[0]} (looked in {folder})")

    def string(self, d: dict[str, Any], path: tuple[str, ...], default: str) -> str:
        v = d.get(path[-1], default)
        if not isinstance(v, str):
            raise self.error(path, f"expected a string, got {type(v).__name__} {v!r}")
        return v

    def seeds(self, v: Any, cells: int, limit: int) -> tuple[int, ...]:
        """The seeds, refused before they are built when cells × seeds exceeds ``limit``."""
        path = ("study", "seeds")
        if isinstance(v, int) and not isinstance(v, bool):
            if v < 1:
                raise self.error(path, f"expected a positive number of seeds, got {_cut(v)}")
            if cells * v > limit:
                raise self.too_many(cells, v, limit)
            return tuple(range(v))
        if isinstance(v, list) and v and all(isinstance(s, int) and not isinstance(s, bool) for s in v):
            if cells * len(v) > limit:
                raise self.too_many(cells, len(v), limit)
            if len(set(v)) != len(v):
                raise self.error(path, f"seeds must be distinct, got {_cut(v)}")
            if min(v) < 0 or max(v) > MAX_SEED:
                raise self.error(path, f"seeds must be in 0..{MAX_SEED:,}, got {_cut(v)}")
            return tuple(v)
        raise self.error(path, f"expected a positive integer or a non-empty list of integers, got {_cut(v)}")

    def variants(self, table: dict[str, Any], base: dict[str, Any]) -> tuple[Variant, ...]:
        if not table:
            return (Variant("baseline", {}, (), "the base config"),)
        out = []
        for name, body in table.items():
            path = ("variants", name)
            if not NAME_RE.match(name) or len(name) > MAX_NAME:
                raise self.error(path, f"variant names are at most {MAX_NAME} letters, digits, '_', '-', '.', '+'; "
                                 f"got {_cut(name)}")
            if not isinstance(body, dict):
                raise self.error(path, f"expected a table [variants.{name}], got {type(body).__name__}")
            overrides = {k: v for k, v in body.items() if k not in VARIANT_EXTRA_KEYS}
            if self.own:  # the user's own keys: unchecked, but for seed/train/command and the description
                check_own_keys(body, path, self.error, self.model_ref)  # makes body's train file absolute
                overrides = {k: v for k, v in body.items() if k != "description"}  # `use` is an own key too
                out.append(Variant(name, overrides, (), body.get("description", "")))
                continue
            for k in overrides:
                if k not in FIELDS:
                    raise self.unknown((*path, k), [*FIELDS, *VARIANT_EXTRA_KEYS])
                if k == "seed":
                    raise self.error((*path, k), "set the seeds in [study] seeds, not per variant")
            self.model_ref(overrides, path)
            self.model_ref(overrides, path, key="loss")
            use = body.get("use", [])
            if not isinstance(use, list) or not all(isinstance(u, str) for u in use):
                raise self.error((*path, "use"), f"expected a list of transform names, got {use!r}")
            description = body.get("description", "")
            if not isinstance(description, str):
                raise self.error((*path, "description"), f"expected a string, got {description!r}")
            variant = Variant(name, overrides, tuple(use), description)
            try:
                variant_config(base, variant)
            except ConfigError as e:
                key, _, msg = str(e).partition(": ")
                key = key.split("/")[0]
                if key in overrides:
                    raise self.error((*path, key), msg) from None
                if use:
                    raise self.error((*path, "use"), str(e)) from None
                raise self.error(path, str(e)) from None
            except KeyError as e:
                raise self.error((*path, "use"), f"unknown transform {e}") from None
            out.append(variant)
        return tuple(out)

    def grid(self, table: dict[str, Any], base: dict[str, Any],
             variants: tuple[Variant, ...]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
        axes = []
        for key, values in table.items():
            path = ("grid", key)
            if self.own and key in ("train", "command"):
                raise self.error(path, f"'{key}' cannot be a grid axis; give each its own variant")
            if key not in FIELDS and not self.own:
                raise self.unknown(path, list(FIELDS))
            if key == "seed":
                raise self.error(path, "set the seeds in [study] seeds, not as a grid axis")
            if key == "model_args":
                raise self.error(path, "'model_args' cannot be a grid axis; give each set of model_args its "
                                       "own variant")
            if key == "model" and isinstance(values, list):
                holder = [{"model": v} for v in values]
                for h in holder:
                    self.model_ref(h, ("grid",))
                values = [h["model"] for h in holder]
            if not isinstance(values, list) or not values:
                raise self.error(path, f"expected a non-empty list of values, got {values!r}")
            if len({repr(v) for v in values}) != len(values):
                raise self.error(path, f"values must be distinct, got {values!r}")
            for v in values if not self.own else ():
                try:
                    TrainConfig(**{**base, key: v})
                except ConfigError as e:
                    raise self.error(path, f"value {v!r}: {str(e).partition(': ')[2] or e}") from None
            for variant in variants:
                if key in variant.overrides:
                    raise self.error(("variants", variant.name, key),
                                     f"'{key}' is also a grid axis; set it in one place only")
            axes.append((key, tuple(values)))
        return tuple(axes)

    def reference(self, ref: Any, grid: tuple[tuple[str, tuple[Any, ...]], ...]) -> dict[str, Any]:
        path = ("study", "reference")
        if not isinstance(ref, dict):
            raise self.error(path, f"expected a table like {{lr = 1e-3}}, got {ref!r}")
        axes = dict(grid)
        out = {k: vals[0] for k, vals in grid}
        for k, v in ref.items():
            if k not in axes:
                raise self.error(path, f"'{k}' is not a grid axis (axes: {', '.join(axes) or 'none'})")
            if v not in axes[k]:
                raise self.error(path, f"{k} = {v!r} is not one of the grid's values {list(axes[k])}")
            out[k] = v
        return out


def default_out_dir(study: Study) -> Path:
    """Where a study runs without ``--out``: ``runs/<name>``."""
    return Path("runs") / study.name


def _cut(v: Any) -> str:
    """``repr(v)`` cut to 60 characters, so a 10,000-character value does not fill the screen."""
    r = repr(v)
    return r if len(r) <= 60 else f"{r[:40]}... ({len(r):,} characters)"


def variant_config(base: dict[str, Any], variant: Variant, point: dict[str, Any] | None = None) -> TrainConfig:
    """base -> named transforms (``use``) -> variant overrides -> grid point values. An own-loop study's
    config is an :class:`~ablab.study.ownloop.OwnConfig` (the same merge, over a plain dict)."""
    if is_own(base):
        return OwnConfig({**base, **variant.overrides, **(point or {})})  # type: ignore[return-value]
    config = TrainConfig(**base)
    if variant.use:
        config = apply_variants(config, list(variant.use))
    if variant.overrides:
        overrides = dict(variant.overrides)
        if isinstance(overrides.get("model_args"), dict):  # a variant's model_args are merged over the base's
            overrides["model_args"] = {**config.model_args, **overrides["model_args"]}
        config = config.replace(**overrides)
    if point:
        config = config.replace(**point)
    return config
