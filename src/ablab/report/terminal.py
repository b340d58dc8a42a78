"""The terminal's view of reports, plans, cost estimates and run lists, as rich renderables.

The CLI prints what these return; it keeps no tables of its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from ablab.metrics import RUN_METRICS
from ablab.report.documents import COMPARISON_HEAD
from ablab.report.sweeps import best_on_validation
from ablab.report.text import (
    SUMMARY_COLUMNS,
    VERDICT_WORDS,
    binomial_line,
    comparison_cells,
    fmt_interval,
    fmt_p,
    human_time,
    wall_line,
)
from ablab.store import FINISHED

VERDICT_STYLE = {"better": "bold green", "worse": "bold red", "noise": "dim", "few": "dim"}


def _table(title: str | None, columns: tuple[str, ...] | list[str], left: int = 1) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i < left else "right")
    return table


def report_view(r: Any, paths: Any = None) -> list[Any]:
    """The study report for the terminal: what changed, summary, best cell, comparisons, notes, wall time."""
    out: list[Any] = []
    changed = {c.variant: c.changed for c in r.cells}
    out += [f"[bold]{v}[/bold]: {ch}" for v, ch in changed.items()]
    table = _table(f"{r.name}: mean ± {100 * r.confidence:g}% t-interval across seeds (%)",
                   ["cell", *(RUN_METRICS[k][0] for k in SUMMARY_COLUMNS), "n"])
    for c in r.cells:
        table.add_row(c.cell, *(fmt_interval(c.metrics[k]) for k in SUMMARY_COLUMNS), str(c.n))
    out.append(table)
    best = best_on_validation(r)
    if best is not None:
        out.append(best.sentence())
    if r.comparisons:
        t2 = _table(f"paired by seed on {r.metric} (points), Holm-corrected; MDD: smallest difference these seeds "
                    "detect with 80% power", COMPARISON_HEAD)
        for cmp in r.comparisons:
            cells = comparison_cells(cmp)
            verdict = f"[{VERDICT_STYLE[cmp.verdict]}]{VERDICT_WORDS[cmp.verdict]}[/]"
            t2.add_row(*(cells[k] for k in COMPARISON_HEAD[:-1]), verdict)
        out.append(t2)
        out += [f"• {cmp.sentence}" for cmp in r.comparisons]
    out.append(binomial_line(r))
    out += [f"note: {n}" for n in r.notes]
    if paths is not None:
        out.append(f"report: {paths['html']} (also report.md, summary.csv, comparisons.csv, report.json)")
    out.append(wall_line(r))
    return out


def plan_view(p: Any) -> list[Any]:
    """`ablab study plan`: seeds needed and minimum detectable difference, per comparison and pooled."""
    table = _table(f"{p.study}: seeds for a {100 * p.effect:g}-point difference in {p.metric} at "
                   f"{100 * p.power:g}% power (paired t-test, two-sided α = {p.alpha:g})",
                   ["comparison", "seeds now", "sd of differences (points)",
                    f"seeds needed for {100 * p.effect:g} points", "smallest detectable now (points)"])
    for row in p.rows:
        table.add_row(row.label, str(row.n), "—" if math.isnan(row.sd) else f"{100 * row.sd:.2f}",
                      "—" if row.needed is None else str(row.needed),
                      "—" if math.isnan(row.mdd) else f"{100 * row.mdd:.2f}")
    pooled = p.rows[-1]
    lines: list[Any] = [table]
    if pooled.needed is not None:
        lines.append(f"From the pooled paired sd ({100 * pooled.sd:.2f} points over {pooled.n} seeds): "
                     f"{pooled.needed} seeds detect a true difference of {100 * p.effect:g} points "
                     f"{100 * p.power:g}% of the time; with {pooled.n} seeds the smallest such difference is "
                     f"{100 * pooled.mdd:.2f} points. Holm's correction over several comparisons asks for more.")
    return lines


def cost_view(name: str, out: Any, costs: list[Any], workers: int) -> list[Any]:
    """`study run --dry-run`: the runs with MACs, FLOPs and estimated time; totals."""
    table = _table(f"study {name}: {len(costs)} runs → {out}", ["run", "status", "fwd MACs/sample", "run FLOPs",
                                                                  "est. time"], left=2)
    for c in costs:
        table.add_row(c.label, c.status, f"{c.macs:,}", f"{c.train_flops:.3g}",
                      human_time(c.seconds) if c.seconds is not None else "—")
    lines: list[Any] = [table]
    todo = [c for c in costs if c.status not in FINISHED]
    flops = sum(c.train_flops for c in todo)
    lines.append(f"to run: {len(todo)} of {len(costs)} runs, {flops:.3g} FLOPs "
                 "(3 × 2·MACs per training sample + 2·MACs per evaluated sample: validation, test, "
                 "and the training split when train_metrics = clean; × epochs)")
    if todo and all(c.seconds is not None for c in todo):
        total = sum(c.seconds or 0.0 for c in todo)
        lines.append(f"estimated time: {human_time(total)} of compute at one thread per run (measured rate); "
                     f"≈ {human_time(total / max(workers, 1))} wall on {workers} worker(s), assuming perfect packing")
    return lines


RUNS_HEAD = ("id", "study", "run", "status", "attempts", "final test acc", "best epoch", "wall (s)")


def runs_lines(runs: Iterable[Any], widths: tuple[int, int, int]) -> Iterator[str]:
    """`ablab runs ls`: a header, then one plain line per stored run, as the runs stream from the store (a rich
    table measures every cell before it prints one: minutes and gigabytes for 200,000 runs). ``widths``: the
    widest id, study and run label (``Store.list_widths``)."""
    w = (max(widths[0], 2), max(widths[1], 5), max(widths[2], 3))
    fmt = f"%{w[0]}s  %-{w[1]}s  %-{w[2]}s  %-8s  %8s  %14s  %10s  %8s"  # printf-style: the fastest per line
    yield (fmt % RUNS_HEAD).rstrip()
    for r in runs:
        acc = r.test_acc
        yield fmt % (r.id, r.study, r.label, r.status, r.attempts,
                     f"{100 * acc:.2f}" if isinstance(acc, int | float) else "—",
                     r.best_epoch or "—", f"{r.wall_time_s:.1f}" if r.wall_time_s else "—")


def compare_view(a: Any, dir_a: str, dir_b: str, deltas: list[Any], metric: str) -> list[Any]:
    """`ablab study compare`: per common cell A, B and B − A with Welch and Holm p."""
    table = _table(f"{metric}: A = {dir_a}, B = {dir_b} (%; mean ± {100 * a.confidence:g}% interval)",
                   ["cell", "A", "B", "B − A (points)", "Welch p", "Holm p"])
    for d in deltas:
        untested = "settings differ" if getattr(d, "differs", None) else None  # see report.compare
        table.add_row(d.cell, fmt_interval(d.a), fmt_interval(d.b),
                      "—" if math.isnan(d.diff) else f"{100 * d.diff:+.2f}", untested or fmt_p(d.p),
                      untested or fmt_p(d.p_holm))
    return [table, *(f"• {d.sentence}" for d in deltas)]
