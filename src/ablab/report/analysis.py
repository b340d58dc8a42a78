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

from ablab.metrics import CONFIDENCE
from ablab.report.load import (  # noqa: F401 - CellSummary, run_metrics, ...: the report's names
    CURVE_METRICS,
    SUMMARY_METRICS,
    CellSummary,
    RunsDigest,
    load,
    run_metrics,
)
from ablab.report.perclass import PerClass
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
)
from ablab.store import FINISHED
from ablab.study.expand import fmt_value
from ablab.train.config import SEED_KEYS, TrainConfig


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


def analyze(study_dir: str | Path, study: str | None = None) -> StudyReport:
    """Read a study folder's store and compute everything the report shows, in four stages: read the
    store, summarize each cell over its seeds, compare cells (paired, Holm-adjusted), collect the notes."""
    loaded = load(study_dir, study)
    srow, cells, digest, sessions = loaded.study, loaded.cells, loaded.digest, loaded.sessions
    info = srow["info"]
    confidence = float(info.get("confidence", CONFIDENCE))
    metric = info.get("metric", "test_acc")
    comps = _compare(info, cells, metric, confidence)
    changed = what_changed(info, list(digest.first.values()))
    for cell in cells:
        cell.changed = changed.get(cell.variant, "")
    counts_all, notes = _notes(digest)
    few = [c.label or c.cell for c in comps if c.verdict == "few"]
    if few:
        notes.insert(0, f"TOO FEW SEEDS TO CONCLUDE: {len(few)} comparison(s) have fewer than {MIN_SEEDS_VERDICT} "
                        "paired seeds; they get no verdict, no effect size and no bootstrap interval.")
    notes += identical_seeds(cells)
    return StudyReport(
        name=srow["name"], out_dir=loaded.path.parent, description=info.get("description", ""), metric=metric,
        metric_doc=info.get("metric_doc", metric), confidence=confidence, baseline=info.get("baseline", ""),
        seeds=list(info.get("seeds", [])), cells=cells, comparisons=comps, counts=counts_all,
        wall_time_s=loaded.wall_time_s, sessions=len(sessions), compute_time_s=digest.compute_time_s,
        workers=sorted({int(s["workers"]) for s in sessions if s["workers"]}),
        code_versions=sorted(digest.code_versions), versions=loaded.versions,
        base=info.get("base", {}), info=info, runs=loaded.run_rows, notes=notes,
        per_class=digest.per_class.build([c.cell for c in cells], confidence))


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


def _notes(digest: RunsDigest) -> tuple[dict[str, int], list[str]]:
    """Stage 4: run counts by status and the notes the report opens with."""
    counts_all = digest.ordered_counts()
    notes = []
    if "running" in digest.train_metrics:
        notes.append("Training accuracy is the running average over each epoch's batches as trained "
                     "(dropout active, weights changing), so it understates the end-of-epoch training accuracy.")
    if counts_all.get("diverged"):
        notes.append(f"{counts_all['diverged']} run(s) diverged (non-finite loss); they are listed per variant "
                     "and left out of the means.")
    made_with = sorted(f"{_made_of(ref)} SHA-256 {sha[:12]}" if kind == "model" else f"{ref} files SHA-256 {sha[:12]}"
                       for ref, kind, sha in digest.made_with)
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
