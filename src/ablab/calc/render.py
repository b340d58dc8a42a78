"""The summary as a table for people: one row per layer, totals, memory, warnings, conventions.

The table is laid out here, in one pass over the rows (linear time: a 10,000-layer spec prints in a
fraction of a second), in the layout of a rich ``Table`` with ``box.SIMPLE_HEAD``: rich itself is used
only when the table is wider than the console and a few hundred rows at most, to fold cells to fit.
"""

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

RICH_MAX_ROWS = 300  # above this, a table wider than the console is printed unfolded rather than by rich
_RIGHT = {"#", "params", "MACs", "FLOPs", "output bytes", "RF/stride"}


def _title(s: Summary) -> str:
    mode = f", {s.mode}" if getattr(s, "mode", "") else ""
    return f"{s.model}  (input {fmt_shape(s.input_shape)}, batch {s.batch}, {s.dtype}{mode})"


def _columns(s: Summary, wide: bool) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and footer as strings: the one pass over the layers."""
    header = ["#", "layer", *(["spec"] if wide else []), "output", "params", "MACs", "FLOPs",
              "output bytes", "RF/stride"]
    rows = []
    for row in s.layers:
        rf = row.receptive_field.short() if row.receptive_field else ("all" if row.field_known else "")
        rows.append([str(row.index), row.name, *([row.layer] if wide else []), fmt_shape(row.output_shape),
                     f"{row.params:,}", f"{row.macs:,}", f"{row.flops:,}", human_bytes(row.activation_bytes), rf])
    footer = ["", "total", *([""] if wide else []), "", f"{s.totals.params:,}", f"{s.totals.macs:,}",
              f"{s.totals.flops:,}", human_bytes(s.totals.memory.activation_bytes), ""]
    return header, rows, footer


def table(s: Summary, width: int = 120) -> Table:
    """The rich ``Table`` (used when the table must fold to fit the console). Below 110 columns the spec
    column is left out, so names and numbers stay whole."""
    wide = width >= 110
    header, rows, footer = _columns(s, wide)
    t = Table(title=_title(s), title_justify="left", show_footer=True, header_style="bold", box=box.SIMPLE_HEAD,
              pad_edge=False, collapse_padding=True)
    for name, foot in zip(header, footer, strict=True):
        t.add_column(name, justify="right" if name in _RIGHT else "left", footer=foot, overflow="fold")
    for cells in rows:
        t.add_row(*cells)
    return t


def table_lines(s: Summary, width: int = 120) -> list[str] | None:
    """The table as lines of text, laid out like ``table()`` prints it; ``None`` when it is wider than
    ``width`` and small enough for rich to fold."""
    wide = width >= 110
    header, rows, footer = _columns(s, wide)
    widths = [len(h) for h in header]
    for cells in (*rows, footer):
        for i, c in enumerate(cells):
            if len(c) > widths[i]:
                widths[i] = len(c)
    total = sum(widths) + 2 * (len(widths) - 1) + 2  # one space at each edge, two between columns
    title = _title(s)
    if (total > width or len(title) > total) and len(rows) <= RICH_MAX_ROWS:
        return None  # rich folds the cells (or wraps the title) to fit
    right = [h in _RIGHT for h in header]

    def line(cells: list[str]) -> str:
        return " " + "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right,
                                                                                   strict=True)) + " "

    blank = " " * total
    return [title.ljust(total), blank, line(header), " " + "─" * (total - 2) + " ", *map(line, rows), blank,
            line(footer), blank]


def rendered_with_rich(s: Summary, width: int) -> bool:
    """Whether the table at this console width needs rich's folding (for tests)."""
    return table_lines(s, width) is None


def print_summary(s: Summary, console: Console, explain: bool = False) -> None:
    """Table, totals, warnings, then the conventions in force (always)."""
    lines = table_lines(s, console.width)
    if lines is None:
        console.print(table(s, console.width))
    else:  # title and top edge, the bold header, then every other line in one write
        plain = {"highlight": False, "markup": False, "crop": False, "overflow": "ignore", "no_wrap": True}
        console.print("\n".join(lines[:2]), **plain)  # type: ignore[arg-type]
        console.print(lines[2], style="bold", **plain)  # type: ignore[arg-type]
        console.print("\n".join(lines[3:]), **plain)  # type: ignore[arg-type]
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
