"""Writing a study report: self-contained HTML, Markdown + PNG figures, CSV and JSON of the tables.

``write_report(study_dir)`` writes ``<study_dir>/report/``::

    report.html        one file: figures embedded as base64 PNG, inline CSS, opens offline
    report.md          the same content; figures linked from figures/
    figures/*.png
    summary.csv        one row per cell: mean, interval, n of every summary metric (fractions)
    comparisons.csv    one row per comparison: difference, interval, p, Holm p, sentence
    runs.csv           one row per run: status, seed, metrics, wall time
    per_class.csv      one row per class × cell: test accuracy mean and interval (runs of ablab's trainer)
    report.json        everything above, machine-readable (fractions; nan as null)
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ablab.report import figures
from ablab.report.analysis import SUMMARY_METRICS, StudyReport, analyze
from ablab.report.perclass import confusion_cell
from ablab.report.sweeps import best_on_validation, heat_maps, sweep_axes
from ablab.report.text import SUMMARY_COLUMNS, binomial_line, fmt_interval, fmt_p, human_time, slug, wall_line  # noqa: F401 - re-exported
from ablab.store import FINISHED
from ablab.writing import write_atomic

# ---------------------------------------------------------------- tables as rows


def summary_rows(r: StudyReport) -> list[dict[str, Any]]:
    rows = []
    for c in r.cells:
        row: dict[str, Any] = {"cell": c.cell, "variant": c.variant, **{f"grid.{k}": v for k, v in c.point.items()},
                               "n": c.n, "diverged": c.counts.get("diverged", 0),
                               "unfinished": sum(v for k, v in c.counts.items() if k not in FINISHED)}
        for key in SUMMARY_METRICS:
            iv = c.metrics[key]
            row.update({f"{key}_mean": _num(iv.mean), f"{key}_lo": _num(iv.lo), f"{key}_hi": _num(iv.hi),
                        f"{key}_sd": _num(iv.sd)})
        row["n_test"] = c.n_test
        row["binomial_lo"], row["binomial_hi"] = c.binomial or (None, None)
        rows.append(row)
    return rows


def comparison_rows(r: StudyReport) -> list[dict[str, Any]]:
    rows = []
    for c in r.comparisons:
        boot = c.bootstrap
        sup = c.superiority
        rows.append({
            "cell": c.cell, "reference": c.reference, "label": c.label, "metric": c.metric, "n_pairs": c.test.diff.n,
            "diff_mean": _num(c.test.diff.mean), "diff_lo": _num(c.test.diff.lo), "diff_hi": _num(c.test.diff.hi),
            "diff_sd": _num(c.test.diff.sd), "bootstrap_method": "BCa",
            "bootstrap_lo": _num(boot.lo) if boot else None, "bootstrap_hi": _num(boot.hi) if boot else None,
            "wins": sup.wins if sup else None, "ties": sup.ties if sup else None,
            "p_better_model": _num(sup.p_model) if sup else None, "cohen_dz": _num(c.effect[0]),
            "hedges_gz": _num(c.effect[1]), "mdd_80": _num(c.mdd), "t": _num(c.test.t), "p": _num(c.test.p),
            "p_holm": _num(c.p_holm), "distinguishable": c.verdict != "noise", "verdict": c.verdict,
            "color": figures.VERDICT_COLORS[c.verdict], "sentence": c.sentence})
    return rows


def _num(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def finite_json(v: Any) -> Any:
    """``v`` with every non-finite float (inf, -inf, nan: a diverged loss, an old store's ``lr = inf``)
    replaced by None, so report.json is valid JSON whatever the runs stored."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: finite_json(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [finite_json(x) for x in v]
    return v


def report_json(r: StudyReport, figure_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    best = best_on_validation(r)
    return {
        "study": r.name, "description": r.description, "metric": r.metric, "metric_doc": r.metric_doc,
        "confidence": r.confidence, "baseline": r.baseline, "seeds": r.seeds, "counts": r.counts,
        "wall_time_s": r.wall_time_s, "sessions": r.sessions, "compute_time_s": r.compute_time_s,
        "workers": r.workers, "code_versions": r.code_versions, "versions": r.versions, "base": r.base,
        "changed": {c.variant: c.changed for c in r.cells},
        "best_on_validation": None if best is None else {
            "cell": best.cell.cell, "chosen_on": best.chosen_on, "val_mean": _num(best.val.mean),
            "test_at_best_val_mean": _num(best.test.mean), "test_lo": _num(best.test.lo),
            "test_hi": _num(best.test.hi), "n": best.test.n, "sentence": best.sentence()},
        "summary": summary_rows(r), "comparisons": comparison_rows(r), "runs": r.runs, "notes": r.notes,
        "per_class": None if r.per_class is None else {
            "classes": r.per_class.classes, "table": r.per_class.table(), "confusion": r.per_class.confusion},
        "figures": figure_meta or {},
        "units": "accuracies and differences are fractions (0.9 = 90%); losses are cross-entropy in nats; "
                 "figure y-values are percent",
    }


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    f = io.StringIO(newline="")
    w = csv.DictWriter(f, fieldnames=keys)
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    write_atomic(path, f.getvalue())


# ---------------------------------------------------------------- figures and files


Figure = tuple[str, str, bytes, list[dict[str, Any]]]  # (file name, caption, PNG, meta of its panels)


def _figure(name: str, caption: str, fig: Any) -> Figure:
    m = figures.meta(fig)  # before png(): saving closes the figure
    return name, caption, figures.png(fig), m


def _figures(r: StudyReport) -> list[Figure]:
    """Every figure, in report order: overview, differences, sweeps and heat map, overlay, per-cell curves."""
    out: list[Figure] = []
    done = [c for c in r.cells if c.n > 0]
    if not done:
        return out
    title = SUMMARY_METRICS.get(r.metric, (r.metric, ""))[0]
    verdicts = {c.cell: c.verdict for c in r.comparisons}
    verdicts.update({c.reference: "reference" for c in r.comparisons if c.reference not in verdicts})
    out.append(_figure("overview.png", f"{title} per cell",
                       figures.overview(done, r.metric, title, r.confidence, verdicts)))
    if any(c.test.diff.n > 0 for c in r.comparisons):
        out.append(_figure("differences.png", "paired differences against the reference",
                           figures.differences(r.comparisons, r.confidence)))
    for axis in sweep_axes(r):
        out.append(_figure(f"sweep_{slug(axis.name)}.png", f"{title} against {axis.name}",
                           figures.sweep(axis, title, r.confidence)))
    maps = heat_maps(r)
    if maps:
        out.append(_figure("heatmap.png", f"{title}: {maps[0].rows.name} × {maps[0].cols.name}",
                           figures.heatmap(maps, title)))
    best = best_on_validation(r)
    if r.per_class is not None and (cell := confusion_cell(r.per_class, best.cell.cell if best else None)):
        seeds = r.per_class.seeds[cell]
        out.append(_figure("confusion.png", f"test confusion matrix of {cell} (final weights, {seeds} seeds summed)",
                           figures.confusion(r.per_class.confusion[cell], r.per_class.classes,
                                             f"{cell}: test confusion, {seeds} seeds summed")))
    colors = figures.variant_colors([c.variant for c in r.cells])
    if len(done) <= 24:
        out.append(_figure("overlay.png", "validation and test accuracy by epoch, every cell",
                           figures.overlay(done, r.confidence, colors)))
        acc = figures.curve_limits(done, ("train_acc", "val_acc", "test_acc"), 100.0)
        loss = figures.curve_limits(done, ("train_loss", "val_loss", "test_loss"), 1.0)
        for c in done:
            out.append(_figure(f"curves_{slug(c.cell)}.png", f"learning curves: {c.cell}",
                               figures.learning_curves(c, r.confidence, acc, loss, colors[c.variant])))
    return out


@dataclass
class WrittenReport(Mapping[str, Path]):
    """What ``write_report`` wrote (name -> path, like a dict) and the analysis it wrote it from."""

    paths: dict[str, Path]
    analysis: StudyReport

    def __getitem__(self, key: str) -> Path:
        return self.paths[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


def write_report(study_dir: str | Path, out: str | Path | None = None, study: str | None = None) -> WrittenReport:
    """Analyze the study in ``study_dir`` and write every report format into ``out`` (default
    ``<study_dir>/report``). Returns the paths (name -> path) with the analysis (``.analysis``), so a caller
    prints from the same numbers without analyzing twice."""
    from ablab.report.documents import html_doc, markdown

    r = analyze(study_dir, study)
    out = Path(out) if out is not None else r.out_dir / "report"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    figs = _figures(r)
    for name, _, data, _ in figs:
        write_atomic(out / "figures" / name, data)  # a full disk leaves no truncated PNG
    paths = {"html": out / "report.html", "markdown": out / "report.md", "json": out / "report.json",
             "summary_csv": out / "summary.csv", "comparisons_csv": out / "comparisons.csv",
             "runs_csv": out / "runs.csv"}
    if r.per_class is not None:
        paths["per_class_csv"] = out / "per_class.csv"
        _write_csv(paths["per_class_csv"], r.per_class.table())
    write_atomic(paths["html"], html_doc(r, [(n, c, d) for n, c, d, _ in figs]))
    write_atomic(paths["markdown"], markdown(r, [(n, c) for n, c, _, _ in figs]))
    meta = {name: panels for name, _, _, panels in figs}
    write_atomic(paths["json"], json.dumps(finite_json(report_json(r, meta)), indent=2, allow_nan=False,
                                           default=str) + "\n")
    _write_csv(paths["summary_csv"], summary_rows(r))
    _write_csv(paths["comparisons_csv"], comparison_rows(r))
    _write_csv(paths["runs_csv"], r.runs)
    return WrittenReport(paths, r)
