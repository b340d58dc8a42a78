"""The report's first two stages, streamed: read a study's runs and epochs from the store one cell at a time
and summarize each cell over its seeds, so memory holds one cell's runs and epochs plus a small row per run
(never the whole store: a 200,000-run store once took 2.9 GB just to load). What the notes need from every
run (status counts, fingerprints, code versions) is gathered in a :class:`RunsDigest` as the runs go by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablab.errors import UserError
from ablab.metrics import CONFIDENCE, RUN_METRICS
from ablab.report.perclass import PerClassBuilder
from ablab.report.stats import Interval, clopper_pearson, t_interval
from ablab.store import Store, find_stores

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
class RunsDigest:
    """What the report needs from every run beyond its cell, gathered while the runs stream past."""

    counts: dict[str, int] = field(default_factory=dict)  # status -> runs
    first_id: dict[str, int] = field(default_factory=dict)  # status -> its lowest run id (orders ``counts``)
    train_metrics: set[str] = field(default_factory=set)  # the runs' train_metrics settings
    made_with: set[tuple[str, str, str]] = field(default_factory=set)  # (model or dataset, kind, SHA-256)
    compute_time_s: float = 0.0  # the runs' own wall times, summed
    code_versions: set[str] = field(default_factory=set)
    first: dict[str, Any] = field(default_factory=dict)  # variant -> its first run (what_changed reads it)
    per_class: PerClassBuilder = field(default_factory=PerClassBuilder)  # per-class results, cell by cell

    def add(self, r: Any) -> None:
        self.counts[r.status] = self.counts.get(r.status, 0) + 1
        self.first_id[r.status] = min(self.first_id.get(r.status, r.id), r.id)
        self.train_metrics.add(str(r.config.get("train_metrics", "running")))
        fp = r.result.get("fingerprint") if isinstance(r.result, dict) else None
        if isinstance(fp, dict):
            if isinstance(fp.get("model_source"), str):
                self.made_with.add((str(r.config.get("model")), "model", fp["model_source"]))
            if isinstance(fp.get("data"), str):
                self.made_with.add((str(r.config.get("dataset")), "data", fp["data"]))
        self.compute_time_s += r.wall_time_s or 0.0
        if r.code_version:
            self.code_versions.add(r.code_version)
        if r.variant not in self.first or r.id < self.first[r.variant].id:
            self.first[r.variant] = r
        self.per_class.add(r)

    def ordered_counts(self) -> dict[str, int]:
        """Status counts in the order the statuses first occur by run id (as a listing of the runs shows them)."""
        return {s: self.counts[s] for s in sorted(self.counts, key=self.first_id.__getitem__)}


@dataclass
class Loaded:
    """Stages 1 and 2: the store's study row, every cell summarized, one row per run, the digest."""

    path: Path
    study: dict[str, Any]
    cells: list[CellSummary]
    run_rows: list[dict[str, Any]]
    versions: dict[str, str]
    digest: RunsDigest
    sessions: list[dict[str, Any]]
    wall_time_s: float


def f(v: Any) -> float | None:
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
    vals = [(f(e.get("val_acc")), e["epoch"]) for e in epochs]
    if best is None and any(v is not None for v, _ in vals):
        best = max((v, -ep) for v, ep in vals if v is not None)[1] * -1  # first epoch of the maximum
    by_epoch = {e["epoch"]: e for e in epochs}
    test, train = f(final.get("test_acc")), f(final.get("train_acc"))
    val_accs = [v for v, _ in vals if v is not None]
    return {
        "test_acc": test,
        "test_acc_at_best_val": f(by_epoch[best].get("test_acc")) if best in by_epoch else None,
        "train_acc": train,
        "gap": (train - test) if train is not None and test is not None else None,
        "val_acc": f(final.get("val_acc")),
        "best_val_acc": max(val_accs) if val_accs else None,
    }


def load(study_dir: str | Path, study: str | None = None) -> Loaded:
    """Stages 1 and 2 of :func:`~ablab.report.analysis.analyze`: stream the study's runs cell by cell from the
    store (read-only) and summarize each cell; cells in the study's order, then any others by name."""
    paths = find_stores(study_dir)
    if not paths:
        raise UserError(f"{study_dir}: no study store (study.sqlite) here; run 'ablab study run' first")
    with Store(paths[0], readonly=True) as store:
        srow = store.study(study)
        info = srow["info"]
        level = float(info.get("confidence", CONFIDENCE))
        descriptions = {v["name"]: v.get("description", "") for v in info.get("variants", [])}
        cell_index = {c["cell"]: c for c in info.get("cells", [])}
        digest = RunsDigest()
        done: dict[str, tuple[CellSummary, list[dict[str, Any]], dict[str, str]]] = {}
        for name, runs, epochs in store.cells(srow["id"]):
            for r in runs:
                digest.add(r)
            done[name] = summarize_cell(name, runs, epochs, cell_index.get(name), descriptions, level)
        for name in cell_index.keys() - done.keys():  # a planned cell with no run (yet)
            done[name] = summarize_cell(name, [], {}, cell_index[name], descriptions, level)
        sessions, wall = store.sessions(srow["id"]), store.wall_time_s(srow["id"])
    order = list(cell_index) + sorted(done.keys() - cell_index.keys())
    versions: dict[str, str] = {}
    for name in order:
        versions.update(done[name][2])
    return Loaded(paths[0], srow, [done[n][0] for n in order], [row for n in order for row in done[n][1]],
                  versions, digest, sessions, wall)


def summarize_cell(name: str, cruns: list[Any], epochs: dict[int, list[dict[str, Any]]], planned: Any,
                   descriptions: dict[str, str], confidence: float
                   ) -> tuple[CellSummary, list[dict[str, Any]], dict[str, str]]:
    """One cell over its seeds (run metrics, intervals, curves, the binomial test-set interval), one row per
    run, and the library versions its finished runs recorded."""
    counts: dict[str, int] = {}
    for r in cruns:
        counts[r.status] = counts.get(r.status, 0) + 1
    per_seed: dict[int, dict[str, float | None]] = {}
    done = [r for r in cruns if r.status == "done"]
    n_test = n_val = None
    diverged, run_rows, versions = [], [], {}
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
    by_epoch = [{ep["epoch"]: ep for ep in epochs[r.id]} for r in done]  # each run's epochs by number
    n_epochs = max((len(epochs[r.id]) for r in done), default=0)
    curves = {key: [t_interval([v for eps in by_epoch if e in eps and (v := f(eps[e].get(key))) is not None],
                               confidence) for e in range(1, n_epochs + 1)] for key in CURVE_METRICS}
    test_mean = metrics["test_acc"].mean
    binomial = None
    if n_test and not math.isnan(test_mean):
        binomial = clopper_pearson(round(test_mean * n_test), int(n_test), confidence)
    c = planned or {"variant": cruns[0].variant if cruns else name, "point": {}}
    summary = CellSummary(name, c["variant"], c["point"], counts, metrics, per_seed, curves,
                          int(n_test) if n_test else None, binomial, diverged, descriptions.get(c["variant"], ""),
                          n_val=int(n_val) if n_val else None)
    return summary, run_rows, versions
