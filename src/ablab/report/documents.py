"""The report as documents: Markdown (figures linked) and self-contained HTML (figures embedded).

Both lay out the same sections from the same text pieces (``ablab.report.text``): what each variant
changes, the summary, the best cell on validation, the comparisons with every statistic, the sweeps, the
figures, the runs and the provenance.
"""

from __future__ import annotations

import base64
import html
import json

from ablab.metrics import RUN_METRICS
from ablab.report.analysis import StudyReport
from ablab.report.figures import VERDICT_COLORS
from ablab.report.perclass import PerClass
from ablab.report.sweeps import best_on_validation
from ablab.report.text import (
    COMPARISON_NOTE,
    SUMMARY_COLUMNS,
    binomial_line,
    comparison_cells,
    fmt_interval,
    wall_line,
)

COMPARISON_HEAD = ("comparison", "n", "difference", "interval", "bootstrap", "P(better)", "d_z", "MDD", "p",
                   "Holm p", "beats noise?")


def _intro(r: StudyReport) -> list[str]:
    return [f"Deciding metric: {r.metric} ({r.metric_doc}). Seeds: {', '.join(map(str, r.seeds))}. "
            f"Runs: {', '.join(f'{v} {k}' for k, v in sorted(r.counts.items()))}."]


def _changed(r: StudyReport) -> list[tuple[str, str, str]]:
    """(variant, description, what changed) once per variant, in study order."""
    seen: dict[str, tuple[str, str, str]] = {}
    for c in r.cells:
        seen.setdefault(c.variant, (c.variant, c.description, c.changed))
    return list(seen.values())


def _summary_row(c) -> list[str]:  # type: ignore[no-untyped-def]
    binom = f"±{50 * (c.binomial[1] - c.binomial[0]):.2f} (n_test={c.n_test:,})" if c.binomial and c.n_test else "—"
    return [c.cell, *(fmt_interval(c.metrics[k]) for k in SUMMARY_COLUMNS), str(c.n), binom]


SUMMARY_HEAD = ("cell", *(RUN_METRICS[k][0] for k in SUMMARY_COLUMNS), "n", "test-set interval (1 run)")


def markdown(r: StudyReport, figure_files: list[tuple[str, str]]) -> str:
    conf = f"{100 * r.confidence:g}%"
    lines = [f"# Study report: {r.name}", ""]
    if r.description:
        lines += [r.description, ""]
    lines += [*_intro(r), ""]
    lines += ["## What each variant changes", ""]
    lines += [f"- **{v}**{f' ({d})' if d else ''}: {ch}" for v, d, ch in _changed(r)]
    lines += ["", "## Summary", "",
              f"Mean ± half-width of the {conf} Student-t interval across seeds, in percent (gap in points); "
              "n = finished seeds.", ""]
    lines += ["| " + " | ".join(SUMMARY_HEAD) + " |", "|" + "---|" * len(SUMMARY_HEAD)]
    lines += ["| " + " | ".join(_summary_row(c)) + " |" for c in r.cells]
    best = best_on_validation(r)
    if best is not None:
        lines += ["", best.sentence()]
    lines += ["", "## Comparisons", ""]
    if r.comparisons:
        lines += [COMPARISON_NOTE.format(conf=conf, alpha=1 - r.confidence), "",
                  "| " + " | ".join(COMPARISON_HEAD) + " |", "|" + "---|" * len(COMPARISON_HEAD)]
        for cmp in r.comparisons:
            cells = comparison_cells(cmp)
            lines.append("| " + " | ".join(cells[k] for k in COMPARISON_HEAD) + " |")
        lines.append("")
        lines += [f"- {cmp.sentence}" for cmp in r.comparisons]
    else:
        lines.append("The study has a single cell: nothing to compare.")
    if r.per_class is not None:
        head, rows = per_class_table(r.per_class)
        lines += ["", "## Per-class test accuracy", "", PER_CLASS_NOTE.format(conf=conf), "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
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


def per_class_table(pc: PerClass) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the report's table: one row per class, one column per cell, in percent."""
    cells = list(pc.accuracy)
    return ["class", *cells], [[name, *(fmt_interval(pc.accuracy[c][k]) for c in cells)]
                               for k, name in enumerate(pc.classes)]


PER_CLASS_NOTE = ("Accuracy on each class's test samples (its recall), final weights of each run, mean ± half-width "
                  "of the {conf} Student-t interval across seeds, in percent.")


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;background:#fff;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #1f77b4;padding-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.3em .6em;
text-align:right}th{background:#eef3f8}td:first-child,th:first-child{text-align:left}
.note{color:#444;font-size:.92em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}.wall{font-weight:bold;margin-top:2em}
li{margin:.3em 0}code{background:#f4f4f4;padding:0 .2em}
""" + "".join(f".{k}{{color:{v};font-weight:bold}}" for k, v in VERDICT_COLORS.items() if k != "reference")


def html_doc(r: StudyReport, figs: list[tuple[str, str, bytes]]) -> str:
    e = html.escape
    conf = f"{100 * r.confidence:g}%"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Study report: {e(r.name)}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>Study report: {e(r.name)}</h1>"]
    if r.description:
        parts.append(f"<p>{e(r.description)}</p>")
    parts.append(f"<p>{e(_intro(r)[0])}</p>")
    parts.append("<h2>What each variant changes</h2><ul id='changed'>" + "".join(
        f"<li><b>{e(v)}</b>{e(f' ({d})' if d else '')}: <span class='changed'>{e(ch)}</span></li>"
        for v, d, ch in _changed(r)) + "</ul>")
    parts.append(f"<h2>Summary</h2><p class='note'>Mean ± half-width of the {conf} Student-t interval across "
                 "seeds, in percent (gap in points); n = finished seeds.</p>")
    parts.append("<table id='summary'><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in SUMMARY_HEAD)
                 + "</tr></thead><tbody>")
    for c in r.cells:
        parts.append("<tr>" + "".join(f"<td>{e(x)}</td>" for x in _summary_row(c)) + "</tr>")
    parts.append("</tbody></table>")
    best = best_on_validation(r)
    if best is not None:
        parts.append(f"<p id='best'>{e(best.sentence())}</p>")
    parts.append("<h2>Comparisons</h2>")
    if r.comparisons:
        parts.append(f"<p class='note'>{e(COMPARISON_NOTE.format(conf=conf, alpha=1 - r.confidence))}</p>")
        parts.append("<table id='comparisons'><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in COMPARISON_HEAD)
                     + "</tr></thead><tbody>")
        for cmp in r.comparisons:
            cells = comparison_cells(cmp)
            tds = [f"<td>{e(cells[k])}</td>" for k in COMPARISON_HEAD[:-1]]
            tds.append(f"<td class='{cmp.verdict}'>{e(cells['beats noise?'])}</td>")
            parts.append("<tr>" + "".join(tds) + "</tr>")
        parts.append("</tbody></table><ul>" + "".join(f"<li>{e(x.sentence)}</li>" for x in r.comparisons) + "</ul>")
    else:
        parts.append("<p>The study has a single cell: nothing to compare.</p>")
    if r.per_class is not None:
        head, rows = per_class_table(r.per_class)
        parts.append(f"<h2>Per-class test accuracy</h2><p class='note'>{e(PER_CLASS_NOTE.format(conf=conf))}</p>")
        parts.append("<table id='per-class'><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head)
                     + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{e(x)}</td>" for x in row) + "</tr>"
                                                        for row in rows) + "</tbody></table>")
    parts.append(f"<p>{e(binomial_line(r))}</p>")
    notes = [f"Diverged in {c.cell}: {'; '.join(c.diverged)}" for c in r.cells if c.diverged] + r.notes
    if notes:
        parts.append("<ul class='note'>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Figures</h2>")
    for _, cap, data in figs:
        b64 = base64.b64encode(data).decode("ascii")
        parts.append(f"<figure><img alt='{e(cap)}' src='data:image/png;base64,{b64}'><figcaption>{e(cap)}"
                     "</figcaption></figure>")
    parts.append("<h2>Runs</h2><details><summary>every run</summary><table id='runs'><thead><tr><th>run</th>"
                 "<th>status</th><th>final test acc</th><th>test @ best val</th><th>best epoch</th><th>wall (s)"
                 "</th></tr></thead><tbody>")
    for run in r.runs:
        acc = "—" if run["test_acc"] is None else f"{100 * run['test_acc']:.2f}"
        best_v = "—" if run["test_acc_at_best_val"] is None else f"{100 * run['test_acc_at_best_val']:.2f}"
        wall = "—" if run["wall_time_s"] is None else f"{run['wall_time_s']:.1f}"
        parts.append(f"<tr><td>{e(run['label'])}</td><td>{e(run['status'])}</td><td>{acc}</td><td>{best_v}</td>"
                     f"<td>{run['best_epoch'] or '—'}</td><td>{wall}</td></tr>")
    parts.append("</tbody></table></details>")
    parts.append("<h2>Provenance</h2><ul class='note'>"
                 f"<li>code: {e(', '.join(r.code_versions) or 'unknown')}</li>"
                 f"<li>packages: {e(', '.join(f'{k} {v}' for k, v in sorted(r.versions.items())) or 'unknown')}</li>"
                 f"<li>base config: <code>{e(json.dumps(r.base))}</code></li></ul>")
    parts.append(f"<p class='wall'>{e(wall_line(r))}</p></body></html>")
    return "\n".join(parts)
