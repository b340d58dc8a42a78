"""From a study's store to the numbers of its report: per-cell summaries, curves, paired comparisons.

Accuracies are fractions in [0, 1] here and in report.json; the rendered report shows percent and
differences in percentage points. Only runs that finished (``done``) enter the statistics; diverged runs
are counted and named, never averaged in; a comparison pairs the seeds that both cells finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablab.errors import UserError
from ablab.metrics import CONFIDENCE, RUN_METRICS
from ablab.report.perclass import PerClass, per_class
from ablab.report.power import min_detectable
from ablab.report.sanity import identical_seeds
from ablab.report.sentences import sentence
from ablab.report.stats import (
    MIN_SEEDS_BOOTSTRAP,
    MIN_SEEDS_VERDICT,
    Interval,
    PairedTest,
    Superiority,
    bootstrap_interval,
    clopper_pearson,
    effect_size,
    holm,
    paired_t,
    prob_better,
    t_interval,
)
from ablab.store import FINISHED, Store, find_stores
from ablab.study.expand import fmt_value
from ablab.train.config import SEED_KEYS, TrainConfig

CURVE_METRICS = ("train_acc", "val_acc", "test_acc", "train_loss", "val_loss", "test_loss")
SUMMARY_METRICS = RUN_METRICS  # summary columns: key -> (title, description); the one list is ablab.metrics


@dataclass
class CellSummary:
    cell: str
    variant: str
    point: dict[str, Any]
    counts: dict[str, int]  # status -> runs
    metrics: dict[str, Interval]  # SUMMARY_METRICS key -> interval across seeds (done runs)
    per_seed: dict[int, dict[str, float | None]]  # seed -> metric -> value
    curves: dict[str, list[Interval]]  # CURVE_METRICS -> one interval per epoch (index = epoch - 1)
    n_test: int | None  # test-set size of the runs
    binomial: tuple[float, float] | None  # Clopper-Pearson interval of one run at the mean test accuracy
    diverged: list[str] = field(default_factory=list)  # labels of diverged runs, with where
    description: str = ""
    changed: str = ""  # what the variant changes against the base config ("what changed" line)
    n_val: int | None = None  # validation-set size of the runs

    @property
    def n(self) -> int:
        return self.counts.get("done", 0)


@dataclass
class Comparison:
    cell: str
    reference: str
    metric: str
    test: PairedTest
    p_holm: float
    sentence: str = ""
    label: str = ""  # "dropout − baseline" or "dropout − no-dropout at lr=0.001 model=mlp:100,10"
    bootstrap: Interval | None = None  # BCa bootstrap interval of the mean paired difference
    superiority: Superiority | None = None  # how often cell beats reference on the same seed
    effect: tuple[float, float] = (math.nan, math.nan)  # Cohen's d_z, Hedges' g_z
    mdd: float = math.nan  # smallest true difference these n seeds detect with 80% power (alpha = 1 − confidence)
    alpha: float = 0.05  # level of the verdict (1 − confidence), after Holm

    @property
    def verdict(self) -> str:
        """better / worse (distinguishable from seed noise after Holm, by sign), noise, or few (fewer than
        MIN_SEEDS_VERDICT paired seeds: no verdict)."""
        if self.test.diff.n < MIN_SEEDS_VERDICT:
            return "few"
        if math.isnan(self.p_holm) or self.p_holm >= self.alpha:
            return "noise"
        return "better" if self.test.diff.mean > 0 else "worse"


@dataclass
class StudyReport:
    name: str
    out_dir: Path
    description: str
    metric: str
    metric_doc: str
    confidence: float
    baseline: str
    seeds: list[int]
    cells: list[CellSummary]
    comparisons: list[Comparison]
    counts: dict[str, int]
    wall_time_s: float  # the study's sessions, summed
    sessions: int
    compute_time_s: float  # sum of the runs' own wall times
    workers: list[int]
    code_versions: list[str]
    versions: dict[str, str]
    base: dict[str, Any]
    info: dict[str, Any]
    runs: list[dict[str, Any]]  # one row per run: label, status, seed, final metrics, wall time
    notes: list[str] = field(default_factory=list)
    per_class: PerClass | None = None  # per-class test accuracy per cell (runs of ablab's trainer)


def _f(v: Any) -> float | None:
    """A stored metric as float; None for missing or non-finite ("nan" strings included)."""
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def run_metrics(epochs: list[dict[str, Any]], result: dict[str, Any] | None) -> dict[str, float | None]:
    """The summary metrics of one finished run from its epochs and result."""
    if not epochs:
        return dict.fromkeys(SUMMARY_METRICS)
    final = (result or {}).get("final") or epochs[-1]
    best = (result or {}).get("best_epoch")
    vals = [(_f(e.get("val_acc")), e["epoch"]) for e in epochs]
    if best is None and any(v is not None for v, _ in vals):
        best = max((v, -ep) for v, ep in vals if v is not None)[1] * -1  # first epoch of the maximum
    by_epoch = {e["epoch"]: e for e in epochs}
    test, train = _f(final.get("test_acc")), _f(final.get("train_acc"))
    val_accs = [v for v, _ in vals if v is not None]
    return {
        "test_acc": test,
        "test_acc_at_best_val": _f(by_epoch[best].get("test_acc")) if best in by_epoch else None,
        "train_acc": train,
        "gap": (train - test) if train is not None and test is not None else None,
        "val_acc": _f(final.get("val_acc")),
        "best_val_acc": max(val_accs) if val_accs else None,
    }


def analyze(study_dir: str | Path, study: str | None = None) -> StudyReport:
    """Read a study folder's store and compute everything the report shows, in four stages: read the
    store, summarize each cell over its seeds, compare cells (paired, Holm-adjusted), collect the notes."""
    path, srow, runs, epochs, sessions, wall = _read(study_dir, study)
    info = srow["info"]
    confidence = float(info.get("confidence", CONFIDENCE))
    metric = info.get("metric", "test_acc")
    cells, run_rows, versions = _summarize_cells(info, runs, epochs, confidence)
    comps = _compare(info, cells, metric, confidence)
    changed = what_changed(info, runs)
    for cell in cells:
        cell.changed = changed.get(cell.variant, "")
    counts_all, notes = _notes(runs)
    few = [c.label or c.cell for c in comps if c.verdict == "few"]
    if few:
        notes.insert(0, f"TOO FEW SEEDS TO CONCLUDE: {len(few)} comparison(s) have fewer than {MIN_SEEDS_VERDICT} "
                        "paired seeds; they get no verdict, no effect size and no bootstrap interval.")
    notes += identical_seeds(cells)
    return StudyReport(
        name=srow["name"], out_dir=path.parent, description=info.get("description", ""), metric=metric,
        metric_doc=info.get("metric_doc", metric), confidence=confidence, baseline=info.get("baseline", ""),
        seeds=list(info.get("seeds", [])), cells=cells, comparisons=comps, counts=counts_all, wall_time_s=wall,
        sessions=len(sessions), compute_time_s=sum(r.wall_time_s or 0.0 for r in runs),
        workers=sorted({int(s["workers"]) for s in sessions if s["workers"]}),
        code_versions=sorted({r.code_version for r in runs if r.code_version}), versions=versions,
        base=info.get("base", {}), info=info, runs=run_rows, notes=notes,
        per_class=per_class(runs, [c.cell for c in cells], confidence))


def _read(study_dir: str | Path, study: str | None) -> tuple[Path, Any, list[Any], dict[int, Any], list[Any], float]:
    """Stage 1: the study's row, runs, their epochs and sessions, read once from the store."""
    paths = find_stores(study_dir)
    if not paths:
        raise UserError(f"{study_dir}: no study store (study.sqlite) here; run 'ablab study run' first")
    with Store(paths[0], readonly=True) as store:
        srow = store.study(study)
        runs = store.runs(srow["name"])
        epochs = {r.id: store.epochs(r.id) for r in runs}
        return paths[0], srow, runs, epochs, store.sessions(srow["id"]), store.wall_time_s(srow["id"])


def _summarize_cells(info: dict[str, Any], runs: list[Any], epochs: dict[int, Any], confidence: float
                     ) -> tuple[list[CellSummary], list[dict[str, Any]], dict[str, str]]:
    """Stage 2: each cell over its seeds (run metrics, intervals, curves, the binomial test-set interval);
    one row per run; the library versions the finished runs recorded."""
    descriptions = {v["name"]: v.get("description", "") for v in info.get("variants", [])}
    cells: list[CellSummary] = []
    cell_index = {c["cell"]: c for c in info.get("cells", [])}
    order = list(cell_index) + sorted({r.cell for r in runs} - set(cell_index))
    run_rows: list[dict[str, Any]] = []
    versions: dict[str, str] = {}
    for name in order:
        cruns = [r for r in runs if r.cell == name]
        if not cruns and name not in cell_index:
            continue
        counts: dict[str, int] = {}
        for r in cruns:
            counts[r.status] = counts.get(r.status, 0) + 1
        per_seed: dict[int, dict[str, float | None]] = {}
        done = [r for r in cruns if r.status == "done"]
        n_test = n_val = None
        diverged = []
        for r in cruns:
            m = run_metrics(epochs[r.id], r.result)
            bad = next(((k, v) for k, v in m.items() if k != "gap" and isinstance(v, float) and math.isfinite(v)
                        and not 0 <= v <= 1), None)
            if bad is not None:
                raise UserError(f"run {r.label}: {bad[0]} = {bad[1]!r} in the study store is not a fraction in [0, 1]; "
                                "the store was edited or is corrupt, and ablab reports no statistics from it")
            if r.status == "done":
                per_seed[r.seed] = m
                n_test = n_test or (r.result or {}).get("info", {}).get("n_test")
                n_val = n_val or (r.result or {}).get("info", {}).get("n_val")
                versions.update(r.versions or {})
            if r.status == "diverged":
                d = r.diverged or {}
                diverged.append(f"{r.label} (epoch {d.get('epoch', '?')}, loss {d.get('loss', '?')})")
            run_rows.append({"label": r.label, "cell": r.cell, "variant": r.variant, "seed": r.seed,
                             "status": r.status, "attempts": r.attempts, "wall_time_s": r.wall_time_s,
                             "best_epoch": r.best_epoch, "code_version": r.code_version, "out_dir": r.out_dir,
                             **{k: m[k] for k in SUMMARY_METRICS}})
        metrics = {k: t_interval([x for v in per_seed.values() if (x := v[k]) is not None], confidence)
                   for k in SUMMARY_METRICS}
        curves: dict[str, list[Interval]] = {}
        n_epochs = max((len(epochs[r.id]) for r in done), default=0)
        for key in CURVE_METRICS:
            series = []
            for e in range(1, n_epochs + 1):
                vals = [_f(ep.get(key)) for r in done for ep in epochs[r.id] if ep["epoch"] == e]
                series.append(t_interval([v for v in vals if v is not None], confidence))
            curves[key] = series
        test_mean = metrics["test_acc"].mean
        binomial = None
        if n_test and not math.isnan(test_mean):
            binomial = clopper_pearson(round(test_mean * n_test), int(n_test), confidence)
        c = cell_index.get(name, {"variant": cruns[0].variant if cruns else name, "point": {}})
        cells.append(CellSummary(name, c["variant"], c["point"], counts, metrics, per_seed, curves,
                                 int(n_test) if n_test else None, binomial, diverged,
                                 descriptions.get(c["variant"], ""), n_val=int(n_val) if n_val else None))
    return cells, run_rows, versions


def _compare(info: dict[str, Any], cells: list[CellSummary], metric: str, confidence: float) -> list[Comparison]:
    """Stage 3: every planned comparison, paired over seeds, with Holm's adjustment across them."""
    by_name = {c.cell: c for c in cells}
    comps: list[Comparison] = []
    for cell, ref in info.get("comparisons", []):
        if cell not in by_name or ref not in by_name:
            continue
        a = {s: x for s, m in by_name[cell].per_seed.items() if (x := m[metric]) is not None}
        b = {s: x for s, m in by_name[ref].per_seed.items() if (x := m[metric]) is not None}
        test = paired_t(a, b, confidence)
        diffs = [a[s] - b[s] for s in test.seeds]
        comps.append(Comparison(
            cell, ref, metric, test, math.nan, label=comparison_label(by_name[cell], by_name[ref]),
            bootstrap=bootstrap_interval(diffs, confidence) if len(diffs) >= MIN_SEEDS_BOOTSTRAP else None,
            superiority=prob_better(diffs),
            effect=effect_size(diffs), mdd=min_detectable(test.diff.sd, test.diff.n, alpha=1 - confidence),
            alpha=1 - confidence))
    adjusted = holm([c.test.p for c in comps])
    for c, p in zip(comps, adjusted, strict=True):
        c.p_holm = p
        c.sentence = sentence(c, confidence, *_one_run_interval(by_name[c.reference], metric, confidence))
    return comps


def _notes(runs: list[Any]) -> tuple[dict[str, int], list[str]]:
    """Stage 4: run counts by status and the notes the report opens with."""
    counts_all: dict[str, int] = {}
    for r in runs:
        counts_all[r.status] = counts_all.get(r.status, 0) + 1
    notes = []
    train_metrics = {str(r.config.get("train_metrics", "running")) for r in runs}
    if "running" in train_metrics:
        notes.append("Training accuracy is the running average over each epoch's batches as trained "
                     "(dropout active, weights changing), so it understates the end-of-epoch training accuracy.")
    if counts_all.get("diverged"):
        notes.append(f"{counts_all['diverged']} run(s) diverged (non-finite loss); they are listed per variant "
                     "and left out of the means.")
    made_with = sorted({f"{_made_of(r.config.get('model'))} SHA-256 {fp['model_source'][:12]}" for r in runs
                        if isinstance(r.result, dict) and isinstance(fp := r.result.get("fingerprint"), dict)
                        and isinstance(fp.get("model_source"), str)} |
                       {f"{r.config.get('dataset')} files SHA-256 {fp['data'][:12]}" for r in runs
                        if isinstance(r.result, dict) and isinstance(fp := r.result.get("fingerprint"), dict)
                        and isinstance(fp.get("data"), str)})
    if made_with:
        notes.append("Made with: " + "; ".join(made_with) + " (a change to either makes 'ablab study run' refuse to "
                     "mix old and new runs).")
    unfinished = sum(v for k, v in counts_all.items() if k not in FINISHED)
    if unfinished:
        notes.append(f"{unfinished} run(s) have not finished (pending/failed/running); statistics use finished "
                     "runs only. Run the same 'ablab study run' again to complete them.")
    return counts_all, notes


def _made_of(model: Any) -> str:
    """The file name of a model reference, read from its text (nothing imported)."""
    text = str(model)
    target = text.rpartition(":")[0]
    return Path(target).name if target.endswith(".py") else target


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model_args": {"width": 32}} -> {"model_args.width": 32}: nested settings compared key by key."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, bool) or v is None:
        return str(v).lower() if v is not None else "none"
    if isinstance(v, dict) and not v:
        return "{}"
    return str(v)


def what_changed(info: dict[str, Any], runs: list[Any]) -> dict[str, str]:
    """variant -> "dropout = 0.5 (base 0)"...: every setting (model_args included, key by key) where the
    variant's stored run config differs from the study's base config, seeds and grid axes left out."""

    def full(config: dict[str, Any]) -> dict[str, Any]:
        try:
            return TrainConfig.from_dict(config).to_dict()
        except Exception:  # noqa: BLE001 - a store from another version: compare with what was written
            return config

    flat_base = _flat(full(dict(info.get("base", {}))))
    skip = set(SEED_KEYS) | {k for k, _ in info.get("grid", [])} | {"threads"}
    out: dict[str, str] = {}
    for r in sorted(runs, key=lambda r: r.id):
        if r.variant in out or not isinstance(r.config, dict):
            continue
        flat = _flat(full(r.config))
        diffs = [f"{k} = {_show(v)} (base {_show(flat_base.get(k))})" for k, v in flat.items()
                 if k.split(".")[0] not in skip and (k not in flat_base or flat_base[k] != v)]
        diffs += [f"{k} unset (base {_show(v)})" for k, v in flat_base.items()
                  if k not in flat and k.split(".")[0] not in skip and not (isinstance(v, dict) and not v)]
        out[r.variant] = "; ".join(diffs) if diffs else "nothing: the base config"
    return out


def comparison_label(cell: CellSummary, ref: CellSummary) -> str:
    """Name what differs once: ``dropout − baseline``; with a grid, ``dropout − no-dropout at lr=0.001``
    (same point) or ``no-dropout: lr=0.01 − lr=0.001 (model=mlp:100,10)`` (same variant)."""

    def pt(p: dict[str, Any]) -> str:
        return " ".join(f"{k}={fmt_value(v)}" for k, v in p.items())

    if cell.point == ref.point:
        return f"{cell.variant} − {ref.variant}" + (f" at {pt(cell.point)}" if cell.point else "")
    if cell.variant == ref.variant:
        diff = [k for k in cell.point if cell.point.get(k) != ref.point.get(k)]
        same = {k: v for k, v in cell.point.items() if k not in diff}
        a, b = pt({k: cell.point[k] for k in diff}), pt({k: ref.point.get(k) for k in diff})
        return f"{cell.variant}: {a} − {b}" + (f" ({pt(same)})" if same else "")
    return f"{cell.cell} − {ref.cell}"


def _one_run_interval(ref: CellSummary, metric: str, confidence: float) -> tuple[tuple[float, float] | None, str]:
    """The exact binomial interval of one run's accuracy on the set the metric is measured on (the
    validation set for val_acc / best_val_acc, else the test set), and that set's name."""
    if metric not in ("val_acc", "best_val_acc"):
        return ref.binomial, "test"
    mean = ref.metrics[metric].mean
    if not ref.n_val or math.isnan(mean):
        return None, "validation"
    return clopper_pearson(round(mean * ref.n_val), ref.n_val, confidence), "validation"
