"""Writing a study report: self-contained HTML, Markdown + PNG figures, CSV and JSON of the tables.

``write_report(study_dir)`` writes ``<study_dir>/report/``::

    report.html        one file: figures embedded as base64 PNG, inline CSS, opens offline
    report.md          the same content; figures linked from figures/
    figures/*.png
    summary.csv        one row per cell: mean, interval, n of every summary metric (fractions)
    comparisons.csv    one row per comparison: difference, interval, p, Holm p, sentence
    runs.csv           one row per run: status, seed, metrics, wall time
    report.json        everything above, machine-readable (fractions; nan as null)
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from ablab.fsio import write_atomic
from ablab.report import figures
from ablab.report.analysis import SUMMARY_METRICS, StudyReport, analyze

SUMMARY_COLUMNS = ("test_acc", "test_acc_at_best_val", "train_acc", "gap")


def human_time(s: float) -> str:
    if not math.isfinite(s):
        return "—"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h} h {m:02d} min {sec:02d} s" if h else (f"{m} min {sec:02d} s" if m else f"{sec} s")


def fmt_interval(iv: Any, scale: float = 100.0, digits: int = 2) -> str:
    """``89.41 ± 0.35`` (mean ± half-width of the t-interval), or the mean alone when n = 1."""
    if iv.n == 0:
        return "—"
    if math.isnan(iv.lo):
        return f"{scale * iv.mean:.{digits}f} (n=1)"
    return f"{scale * iv.mean:.{digits}f} ± {scale * iv.half_width:.{digits}f}"


def fmt_p(p: float) -> str:
    if math.isnan(p):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "cell"


def wall_line(r: StudyReport) -> str:
    workers = "/".join(map(str, r.workers)) or "?"
    return (f"Study wall time: {human_time(r.wall_time_s)} over {r.sessions} session(s) with {workers} worker(s); "
            f"compute (sum of run times): {human_time(r.compute_time_s)}.")


def binomial_line(r: StudyReport) -> str:
    cells = [c for c in r.cells if c.binomial is not None]
    if not cells:
        return "No finished run reported its test-set size, so no binomial interval is shown."
    c = max(cells, key=lambda c: c.metrics["test_acc"].mean)
    lo, hi = c.binomial or (math.nan, math.nan)
    return (f"Test-set noise: with n = {c.n_test:,} test images, one run's accuracy of "
            f"{100 * c.metrics['test_acc'].mean:.2f}% has an exact (Clopper–Pearson) {100 * r.confidence:g}% "
            f"binomial interval of {100 * lo:.2f}–{100 * hi:.2f}% (±{50 * (hi - lo):.2f} points): differences "
            "smaller than that are within what resampling the test set alone would produce.")


# ---------------------------------------------------------------- tables as rows


def summary_rows(r: StudyReport) -> list[dict[str, Any]]:
    rows = []
    for c in r.cells:
        row: dict[str, Any] = {"cell": c.cell, "variant": c.variant, **{f"grid.{k}": v for k, v in c.point.items()},
                               "n": c.n, "diverged": c.counts.get("diverged", 0),
                               "unfinished": sum(v for k, v in c.counts.items() if k not in ("done", "diverged"))}
        for key in SUMMARY_METRICS:
            iv = c.metrics[key]
            row.update({f"{key}_mean": _num(iv.mean), f"{key}_lo": _num(iv.lo), f"{key}_hi": _num(iv.hi),
                        f"{key}_sd": _num(iv.sd)})
        row["n_test"] = c.n_test
        row["binomial_lo"], row["binomial_hi"] = c.binomial or (None, None)
        rows.append(row)
    return rows


def comparison_rows(r: StudyReport) -> list[dict[str, Any]]:
    return [{"cell": c.cell, "reference": c.reference, "metric": c.metric, "n_pairs": c.test.diff.n,
             "diff_mean": _num(c.test.diff.mean), "diff_lo": _num(c.test.diff.lo), "diff_hi": _num(c.test.diff.hi),
             "t": _num(c.test.t), "p": _num(c.test.p), "p_holm": _num(c.p_holm),
             "distinguishable": bool(c.p_holm < 1 - r.confidence), "sentence": c.sentence}
            for c in r.comparisons]


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


def report_json(r: StudyReport) -> dict[str, Any]:
    return {
        "study": r.name, "description": r.description, "metric": r.metric, "metric_doc": r.metric_doc,
        "confidence": r.confidence, "baseline": r.baseline, "seeds": r.seeds, "counts": r.counts,
        "wall_time_s": r.wall_time_s, "sessions": r.sessions, "compute_time_s": r.compute_time_s,
        "workers": r.workers, "code_versions": r.code_versions, "versions": r.versions, "base": r.base,
        "summary": summary_rows(r), "comparisons": comparison_rows(r), "runs": r.runs, "notes": r.notes,
        "units": "accuracies and differences are fractions (0.9 = 90%); losses are cross-entropy in nats",
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


# ---------------------------------------------------------------- documents


def _figures(r: StudyReport) -> list[tuple[str, str, bytes]]:
    """(file name, caption, png) of every figure, in report order."""
    out: list[tuple[str, str, bytes]] = []
    done = [c for c in r.cells if c.n > 0]
    if not done:
        return out
    title = SUMMARY_METRICS.get(r.metric, (r.metric, ""))[0]
    out.append(("overview.png", f"{title} per cell", figures.overview(done, r.metric, title, r.confidence)))
    if any(c.test.diff.n > 0 for c in r.comparisons):
        out.append(("differences.png", "paired differences against the reference",
                    figures.differences(r.comparisons, r.confidence)))
    if len(done) <= 20:
        out.append(("test_curves.png", "test accuracy by epoch, every cell", figures.test_curves(done, r.confidence)))
    for c in done:
        png = figures.learning_curves(c, r.confidence)
        out.append((f"curves_{slug(c.cell)}.png", f"learning curves: {c.cell}", png))
    return out


def markdown(r: StudyReport, figure_files: list[tuple[str, str]]) -> str:
    conf = f"{100 * r.confidence:g}%"
    lines = [f"# Study report: {r.name}", ""]
    if r.description:
        lines += [r.description, ""]
    lines += [f"Deciding metric: **{r.metric}** ({r.metric_doc}). Seeds: {', '.join(map(str, r.seeds))}. "
              f"Runs: {', '.join(f'{v} {k}' for k, v in sorted(r.counts.items()))}.", ""]
    lines += ["## Summary", "",
              f"Mean ± half-width of the {conf} Student-t interval across seeds, in percent (gap in points); "
              "n = finished seeds.", ""]
    header = ["cell", *(SUMMARY_METRICS[k][0] for k in SUMMARY_COLUMNS), "n", "test-set interval (1 run)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in r.cells:
        binom = f"±{50 * (c.binomial[1] - c.binomial[0]):.2f} (n_test={c.n_test:,})" if c.binomial and c.n_test else "—"
        lines.append("| " + " | ".join([c.cell, *(fmt_interval(c.metrics[k]) for k in SUMMARY_COLUMNS),
                                        str(c.n), binom]) + " |")
    lines += ["", "## Comparisons", ""]
    if r.comparisons:
        lines += [f"Paired by seed on {r.metric}; difference in points with its {conf} interval; p from the paired "
                  "t-test, Holm-corrected across all comparisons.", "",
                  "| comparison | n | difference | interval | p | Holm p |", "|---|---|---|---|---|---|"]
        for cmp in r.comparisons:
            d = cmp.test.diff
            ci = "—" if math.isnan(d.lo) else f"{100 * d.lo:+.2f} to {100 * d.hi:+.2f}"
            mean = "—" if d.n == 0 else f"{100 * d.mean:+.2f}"
            lines.append(f"| {cmp.cell} − {cmp.reference} | {d.n} | {mean} | {ci} | {fmt_p(cmp.test.p)} "
                         f"| {fmt_p(cmp.p_holm)} |")
        lines.append("")
        lines += [f"- {cmp.sentence}" for cmp in r.comparisons]
    else:
        lines.append("The study has a single cell: nothing to compare.")
    lines += ["", binomial_line(r), ""]
    for c in r.cells:
        if c.diverged:
            lines.append(f"- Diverged in {c.cell}: {'; '.join(c.diverged)}")
    lines += [f"- {n}" for n in r.notes]
    lines += ["", "## Figures", ""]
    lines += [f"![{cap}](figures/{name})" for name, cap in figure_files]
    lines += ["", "## Provenance", "", f"- code: {', '.join(r.code_versions) or 'unknown'}",
              f"- packages: {', '.join(f'{k} {v}' for k, v in sorted(r.versions.items())) or 'unknown'}",
              f"- base config: `{json.dumps(r.base)}`", "", wall_line(r), ""]
    return "\n".join(lines)


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;background:#fff;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #1f77b4;padding-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.3em .6em;
text-align:right}th{background:#eef3f8}td:first-child,th:first-child{text-align:left}
.yes{color:#b00;font-weight:bold}.no{color:#555}.note{color:#444;font-size:.92em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}.wall{font-weight:bold;margin-top:2em}
li{margin:.3em 0}code{background:#f4f4f4;padding:0 .2em}
"""


def html_doc(r: StudyReport, figs: list[tuple[str, str, bytes]]) -> str:
    e = html.escape
    conf = f"{100 * r.confidence:g}%"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Study report: {e(r.name)}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>Study report: {e(r.name)}</h1>"]
    if r.description:
        parts.append(f"<p>{e(r.description)}</p>")
    parts.append(f"<p>Deciding metric: <b>{e(r.metric)}</b> ({e(r.metric_doc)}). Seeds: "
                 f"{e(', '.join(map(str, r.seeds)))}. Runs: "
                 f"{e(', '.join(f'{v} {k}' for k, v in sorted(r.counts.items())))}.</p>")
    parts.append(f"<h2>Summary</h2><p class='note'>Mean ± half-width of the {conf} Student-t interval across "
                 "seeds, in percent (gap in points); n = finished seeds.</p>")
    head = ["cell", *(SUMMARY_METRICS[k][0] for k in SUMMARY_COLUMNS), "n", "test-set interval (1 run)"]
    parts.append("<table id='summary'><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>")
    for c in r.cells:
        binom = f"±{50 * (c.binomial[1] - c.binomial[0]):.2f} (n_test={c.n_test:,})" if c.binomial and c.n_test else "—"
        cells = [c.cell, *(fmt_interval(c.metrics[k]) for k in SUMMARY_COLUMNS), str(c.n), binom]
        parts.append("<tr>" + "".join(f"<td>{e(x)}</td>" for x in cells) + "</tr>")
    parts.append("</tbody></table>")
    parts.append("<h2>Comparisons</h2>")
    if r.comparisons:
        parts.append(f"<p class='note'>Paired by seed on {e(r.metric)}; difference in points with its {conf} "
                     "interval; p from the paired t-test, Holm-corrected across all comparisons.</p>")
        parts.append("<table id='comparisons'><thead><tr><th>comparison</th><th>n</th><th>difference</th>"
                     "<th>interval</th><th>p</th><th>Holm p</th><th>beats noise?</th></tr></thead><tbody>")
        for cmp in r.comparisons:
            d = cmp.test.diff
            ci = "—" if math.isnan(d.lo) else f"{100 * d.lo:+.2f} to {100 * d.hi:+.2f}"
            mean = "—" if d.n == 0 else f"{100 * d.mean:+.2f}"
            yes = cmp.p_holm < 1 - r.confidence
            verdict = f"<td class='{'yes' if yes else 'no'}'>{'yes' if yes else 'no'}</td>"
            parts.append(f"<tr><td>{e(cmp.cell)} − {e(cmp.reference)}</td><td>{d.n}</td><td>{mean}</td><td>{ci}</td>"
                         f"<td>{fmt_p(cmp.test.p)}</td><td>{fmt_p(cmp.p_holm)}</td>{verdict}</tr>")
        parts.append("</tbody></table><ul>" + "".join(f"<li>{e(x.sentence)}</li>" for x in r.comparisons) + "</ul>")
    else:
        parts.append("<p>The study has a single cell: nothing to compare.</p>")
    parts.append(f"<p>{e(binomial_line(r))}</p>")
    notes = [f"Diverged in {c.cell}: {'; '.join(c.diverged)}" for c in r.cells if c.diverged] + r.notes
    if notes:
        parts.append("<ul class='note'>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Figures</h2>")
    for _, cap, png in figs:
        b64 = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt='{e(cap)}' src='data:image/png;base64,{b64}'><figcaption>{e(cap)}"
                     "</figcaption></figure>")
    parts.append("<h2>Runs</h2><details><summary>every run</summary><table id='runs'><thead><tr><th>run</th>"
                 "<th>status</th><th>final test acc</th><th>test @ best val</th><th>best epoch</th><th>wall (s)"
                 "</th></tr></thead><tbody>")
    for run in r.runs:
        acc = "—" if run["test_acc"] is None else f"{100 * run['test_acc']:.2f}"
        best = "—" if run["test_acc_at_best_val"] is None else f"{100 * run['test_acc_at_best_val']:.2f}"
        wall = "—" if run["wall_time_s"] is None else f"{run['wall_time_s']:.1f}"
        parts.append(f"<tr><td>{e(run['label'])}</td><td>{e(run['status'])}</td><td>{acc}</td><td>{best}</td>"
                     f"<td>{run['best_epoch'] or '—'}</td><td>{wall}</td></tr>")
    parts.append("</tbody></table></details>")
    parts.append("<h2>Provenance</h2><ul class='note'>"
                 f"<li>code: {e(', '.join(r.code_versions) or 'unknown')}</li>"
                 f"<li>packages: {e(', '.join(f'{k} {v}' for k, v in sorted(r.versions.items())) or 'unknown')}</li>"
                 f"<li>base config: <code>{e(json.dumps(r.base))}</code></li></ul>")
    parts.append(f"<p class='wall'>{e(wall_line(r))}</p></body></html>")
    return "\n".join(parts)


def write_report(study_dir: str | Path, out: str | Path | None = None, study: str | None = None) -> dict[str, Path]:
    """Analyze the study in ``study_dir`` and write every report format into ``out`` (default
    ``<study_dir>/report``). Returns name -> path."""
    r = analyze(study_dir, study)
    out = Path(out) if out is not None else r.out_dir / "report"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    figs = _figures(r)
    for name, _, png in figs:
        write_atomic(out / "figures" / name, png)  # a full disk leaves no truncated PNG
    paths = {"html": out / "report.html", "markdown": out / "report.md", "json": out / "report.json",
             "summary_csv": out / "summary.csv", "comparisons_csv": out / "comparisons.csv",
             "runs_csv": out / "runs.csv"}
    write_atomic(paths["html"], html_doc(r, figs))
    write_atomic(paths["markdown"], markdown(r, [(n, c) for n, c, _ in figs]))
    write_atomic(paths["json"], json.dumps(finite_json(report_json(r)), indent=2, allow_nan=False, default=str) + "\n")
    _write_csv(paths["summary_csv"], summary_rows(r))
    _write_csv(paths["comparisons_csv"], comparison_rows(r))
    _write_csv(paths["runs_csv"], r.runs)
    return paths
