"""The summary as a rich table for people: one row per layer, totals, memory, warnings, conventions."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from ablab.calc.memory import human_bytes
from ablab.calc.shapes import fmt_shape
from ablab.calc.summary import Summary


def table(s: Summary) -> Table:
    t = Table(title=f"{s.model}  (input {fmt_shape(s.input_shape)}, batch {s.batch}, {s.dtype})",
              title_justify="left", show_footer=True, header_style="bold")
    t.add_column("#", justify="right", footer="")
    t.add_column("layer", footer="total")
    t.add_column("spec", overflow="fold", footer="")
    t.add_column("output", footer="")
    t.add_column("params", justify="right", footer=f"{s.totals.params:,}")
    t.add_column("MACs", justify="right", footer=f"{s.totals.macs:,}")
    t.add_column("FLOPs", justify="right", footer=f"{s.totals.flops:,}")
    t.add_column("activations", justify="right", footer=human_bytes(s.totals.memory.activation_bytes))
    t.add_column("RF /stride", justify="right", footer="")
    for row in s.layers:
        rf = row.receptive_field.short() if row.receptive_field else "all"
        t.add_row(str(row.index), row.name, row.layer, fmt_shape(row.output_shape), f"{row.params:,}",
                  f"{row.macs:,}", f"{row.flops:,}", human_bytes(row.activation_bytes), rf)
    return t


def print_summary(s: Summary, console: Console, explain: bool = False) -> None:
    """Table, totals, warnings, then the conventions in force (always)."""
    console.print(table(s))
    for line in s.totals_lines():
        console.print(line, highlight=False)
    for f in s.findings:
        style = "bold red" if f.severity == "error" else "yellow"
        console.print(f"[{style}]{f.severity}[/]: {f.layer + ': ' if f.layer else ''}{f.message}",
                      highlight=False)
    for note in s.notes:
        console.print(f"note: {note}", highlight=False)
    for line in s.conventions_lines():
        console.print(line, style="dim", highlight=False)
    if explain:
        console.print()
        console.print(s.explain(), highlight=False, markup=False)


def render_text(s: Summary, width: int = 120, explain: bool = False) -> str:
    """Plain text (no colour codes), e.g. for tests, logs and the README."""
    buf = io.StringIO()
    print_summary(s, Console(file=buf, width=width, color_system=None, force_terminal=False), explain=explain)
    return buf.getvalue()
