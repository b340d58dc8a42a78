"""The summary as a rich table for people: one row per layer, totals, memory, warnings, conventions."""

from __future__ import annotations

import io
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from ablab.calc.memory import human_bytes
from ablab.layers.placed import fmt_shape

# ``s`` below is an ``ablab.calc.result.Summary``; it is not imported, since the Summary itself calls
# this module to render (an import back would be a cycle).
Summary = Any


def table(s: Summary, width: int = 120) -> Table:
    """One row per layer and a totals footer; below 110 columns the spec column is left out, so names and
    numbers stay whole."""
    wide = width >= 110
    t = Table(title=f"{s.model}  (input {fmt_shape(s.input_shape)}, batch {s.batch}, {s.dtype})",
              title_justify="left", show_footer=True, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
              collapse_padding=True)
    t.add_column("#", justify="right", footer="", overflow="fold")
    t.add_column("layer", footer="total", overflow="fold")
    if wide:
        t.add_column("spec", footer="", overflow="fold")
    t.add_column("output", footer="", overflow="fold")
    t.add_column("params", justify="right", footer=f"{s.totals.params:,}", overflow="fold")
    t.add_column("MACs", justify="right", footer=f"{s.totals.macs:,}", overflow="fold")
    t.add_column("FLOPs", justify="right", footer=f"{s.totals.flops:,}", overflow="fold")
    t.add_column("output bytes", justify="right", footer=human_bytes(s.totals.memory.activation_bytes),
                 overflow="fold")
    t.add_column("RF/stride", justify="right", footer="", overflow="fold")
    for row in s.layers:
        rf = row.receptive_field.short() if row.receptive_field else "all"
        cells = [str(row.index), row.name, *([row.layer] if wide else []), fmt_shape(row.output_shape),
                 f"{row.params:,}", f"{row.macs:,}", f"{row.flops:,}", human_bytes(row.activation_bytes), rf]
        t.add_row(*cells)
    return t


def print_summary(s: Summary, console: Console, explain: bool = False) -> None:
    """Table, totals, warnings, then the conventions in force (always)."""
    console.print(table(s, console.width))
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
