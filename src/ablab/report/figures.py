"""Report figures (matplotlib, Agg backend: no display needed). Each function returns PNG bytes.

Bands are the Student-t confidence interval of the mean across seeds at each epoch — the uncertainty of
the mean curve, not the spread of single runs.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ablab.report.analysis import CellSummary, Comparison
    from ablab.report.stats import Interval

COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _band(ax: Any, series: list[Interval], color: str, label: str, scale: float) -> None:
    xs = [i + 1 for i, s in enumerate(series) if s.n > 0]
    if not xs:
        return
    mean = [scale * series[x - 1].mean for x in xs]
    ax.plot(xs, mean, color=color, label=label, marker="o", markersize=3)
    band = [(x, series[x - 1]) for x in xs if not math.isnan(series[x - 1].lo)]
    if band:
        ax.fill_between([x for x, _ in band], [scale * s.lo for _, s in band], [scale * s.hi for _, s in band],
                        color=color, alpha=0.2, linewidth=0)


def learning_curves(cell: CellSummary, confidence: float) -> bytes:
    """Accuracy (%) and loss over epochs for train/val/test: mean across seeds with its CI band."""
    plt = _plt()
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(10, 3.6))
    for split in ("train", "val", "test"):
        _band(acc, cell.curves.get(f"{split}_acc", []), COLORS[split], split, 100.0)
        _band(loss, cell.curves.get(f"{split}_loss", []), COLORS[split], split, 1.0)
    acc.set_ylabel("accuracy (%)")
    loss.set_ylabel("cross-entropy loss")
    for ax in (acc, loss):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{cell.cell} — mean of {cell.n} seed(s), band: {100 * confidence:g}% t-interval", fontsize=10)
    return _png(fig)


def overview(cells: list[CellSummary], metric: str, title: str, confidence: float) -> bytes:
    """The deciding metric of every cell: mean (dot) with its interval (bar), one row per cell."""
    plt = _plt()
    rows = [c for c in cells if c.metrics[metric].n > 0]
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(rows), 2) + 1.2))
    for i, c in enumerate(rows):
        m = c.metrics[metric]
        if not math.isnan(m.lo):
            ax.plot([100 * m.lo, 100 * m.hi], [i, i], color="#1f77b4", linewidth=2)
        ax.plot([100 * m.mean], [i], "o", color="#1f77b4")
    ax.set_yticks(range(len(rows)), [f"{c.cell} (n={c.metrics[metric].n})" for c in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{title} (%), mean and {100 * confidence:g}% t-interval across seeds")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def differences(comparisons: list[Comparison], confidence: float) -> bytes:
    """Each paired difference (points) with its interval; the zero line is 'no difference'."""
    plt = _plt()
    rows = [c for c in comparisons if c.test.diff.n > 0]
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(rows), 2) + 1.2))
    ax.axvline(0, color="black", linewidth=1)
    for i, c in enumerate(rows):
        d = c.test.diff
        color = "#d62728" if c.p_holm < 1 - confidence else "#7f7f7f"
        if not math.isnan(d.lo):
            ax.plot([100 * d.lo, 100 * d.hi], [i, i], color=color, linewidth=2)
        ax.plot([100 * d.mean], [i], "o", color=color)
    ax.set_yticks(range(len(rows)), [f"{c.cell} − {c.reference}" for c in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"difference (points), paired by seed, {100 * confidence:g}% interval; red: Holm p < "
                  f"{1 - confidence:.2g}")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def test_curves(cells: list[CellSummary], confidence: float) -> bytes:
    """Test accuracy over epochs of every cell in one plot (mean with band)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    cmap = plt.get_cmap("tab10" if len(cells) <= 10 else "tab20")
    for i, c in enumerate(cells):
        _band(ax, c.curves.get("test_acc", []), cmap(i % cmap.N), c.cell, 100.0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(cells) > 6 else 1)
    ax.set_title(f"test accuracy, mean across seeds, {100 * confidence:g}% band", fontsize=10)
    return _png(fig)
