"""Report figures (matplotlib, Agg backend: no display needed). Each function returns a matplotlib Figure;
``png`` turns it into bytes and ``meta`` into what the tests (and report.json) check.

Bands and error bars are the Student-t confidence interval of the mean across seeds — the uncertainty of
the mean, not the spread of single runs — clipped to the metric's range (accuracy in [0, 100] %, loss
>= 0): an interval past 100% says "few seeds", not "more than everything".

Colors mean one thing everywhere:
- a verdict (a comparison with its reference, Holm-corrected): green = distinguishable and better,
  red = distinguishable and worse, gray = within seed noise; the reference itself is black;
- a variant (curves, overlays): its own color from VARIANT_COLORS, never green, red or gray; train,
  validation and test are line styles (dashed, dotted, solid), not colors;
- the values of another grid axis (sweep lines): a sequential map (viridis), dark = first value.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ablab.report.analysis import CellSummary, Comparison
    from ablab.report.stats import Interval
    from ablab.report.sweeps import HeatMap, SweepAxis

VERDICT_COLORS = {"better": "#1a7f37", "worse": "#cf222e", "noise": "#8c959f", "few": "#8c959f",
                  "reference": "#000000"}
VARIANT_COLORS = ("#000000", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
                  "#393b79", "#ad494a", "#637939", "#7b4173")
SPLIT_STYLES = {"train": "--", "val": ":", "test": "-"}
ACC_RANGE = (0.0, 100.0)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def variant_colors(variants: list[str]) -> dict[str, str]:
    """One color per variant, in study order (the first, usually the baseline, is black)."""
    return {v: VARIANT_COLORS[i % len(VARIANT_COLORS)] for i, v in enumerate(dict.fromkeys(variants))}


def _clip(lo: float, hi: float, scale: float) -> tuple[float, float]:
    if scale == 100.0:  # accuracy in percent
        return max(ACC_RANGE[0], scale * lo), min(ACC_RANGE[1], scale * hi)
    return max(0.0, scale * lo), scale * hi  # loss


def _int_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _band(ax: Any, series: list[Interval], color: str, label: str, scale: float, style: str = "-",
          alpha: float = 0.15) -> None:
    xs = [i + 1 for i, s in enumerate(series) if s.n > 0]
    if not xs:
        return
    ax.plot(xs, [scale * series[x - 1].mean for x in xs], color=color, label=label, linestyle=style,
            marker="o", markersize=2.5)
    band = [(x, _clip(series[x - 1].lo, series[x - 1].hi, scale)) for x in xs if not math.isnan(series[x - 1].lo)]
    if band:
        ax.fill_between([x for x, _ in band], [lo for _, (lo, _) in band], [hi for _, (_, hi) in band],
                        color=color, alpha=alpha, linewidth=0)


def curve_limits(cells: list[CellSummary], keys: tuple[str, ...], scale: float) -> tuple[float, float]:
    """One y-range for every panel: the lowest band bottom to the highest band top (clipped), padded."""
    lo, hi = math.inf, -math.inf
    for c in cells:
        for k in keys:
            for iv in c.curves.get(k, []):
                if iv.n == 0:
                    continue
                a, b = (iv.lo, iv.hi) if not math.isnan(iv.lo) else (iv.mean, iv.mean)
                a, b = _clip(a, b, scale)
                lo, hi = min(lo, a), max(hi, b)
    if not math.isfinite(lo):
        return (0.0, 100.0) if scale == 100.0 else (0.0, 1.0)
    pad = max(0.02 * (hi - lo), 0.2 if scale == 100.0 else 0.01)
    lo, hi = lo - pad, hi + pad
    return (max(lo, ACC_RANGE[0]), min(hi, ACC_RANGE[1])) if scale == 100.0 else (max(lo, 0.0), hi)


def learning_curves(cell: CellSummary, confidence: float, acc_ylim: tuple[float, float],
                    loss_ylim: tuple[float, float], color: str = "#000000") -> Any:
    """Accuracy (%) and loss over epochs, train/val/test as line styles, on the y-ranges shared by every
    cell's panel (so panels can be compared by eye)."""
    plt = _plt()
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(10, 3.4))
    for split, style in SPLIT_STYLES.items():
        _band(acc, cell.curves.get(f"{split}_acc", []), color, split, 100.0, style)
        _band(loss, cell.curves.get(f"{split}_loss", []), color, split, 1.0, style)
    acc.set_ylabel("accuracy (%)")
    loss.set_ylabel("cross-entropy loss")
    acc.set_ylim(*acc_ylim)
    loss.set_ylim(*loss_ylim)
    for ax in (acc, loss):
        ax.set_xlabel("epoch")
        _int_epochs(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{cell.cell} — mean of {cell.n} seed(s), band: {100 * confidence:g}% t-interval "
                 "(same y-scale in every cell's figure)", fontsize=10)
    return fig


def overlay(cells: list[CellSummary], confidence: float, colors: dict[str, str]) -> Any:
    """Validation and test accuracy of every cell over epochs: mean curves with light bands, one shared
    y-scale; a cell's color is its variant's."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    styles = ["-", "--", ":", "-."]
    points = list(dict.fromkeys(repr(c.point) for c in cells))
    for ax, key in zip(axes, ("val_acc", "test_acc"), strict=True):
        for c in cells:
            _band(ax, c.curves.get(key, []), colors.get(c.variant, "#000000"), c.cell, 100.0,
                  styles[points.index(repr(c.point)) % len(styles)], alpha=0.08)
        ax.set_xlabel("epoch")
        _int_epochs(ax)
        ax.grid(alpha=0.3)
        ax.set_title(f"{key.split('_')[0]} accuracy", fontsize=10)
    axes[0].set_ylim(*curve_limits(cells, ("val_acc", "test_acc"), 100.0))
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=7, ncol=2 if len(cells) > 6 else 1)
    fig.suptitle(f"every cell's mean curve, {100 * confidence:g}% band", fontsize=10)
    return fig


def overview(cells: list[CellSummary], metric: str, title: str, confidence: float,
             verdicts: dict[str, str]) -> Any:
    """The deciding metric of every cell: mean (dot) with its interval (bar); colored by the cell's
    verdict against its reference (black: a reference; no verdict: gray)."""
    plt = _plt()
    rows = [c for c in cells if c.metrics[metric].n > 0]
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(rows), 2) + 1.2))
    for i, c in enumerate(rows):
        m = c.metrics[metric]
        color = VERDICT_COLORS[verdicts.get(c.cell, "noise")]
        if not math.isnan(m.lo):
            ax.plot(list(_clip(m.lo, m.hi, 100.0)), [i, i], color=color, linewidth=2)
        ax.plot([100 * m.mean], [i], "o", color=color)
    ax.set_yticks(range(len(rows)), [f"{c.cell} (n={c.metrics[metric].n})" for c in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{title} (%), mean and {100 * confidence:g}% t-interval across seeds; black: reference, "
                  "green/red: better/worse beyond noise, gray: within noise", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return fig


def differences(comparisons: list[Comparison], confidence: float) -> Any:
    """Each paired difference (points) with its interval; the zero line is 'no difference'."""
    plt = _plt()
    rows = [c for c in comparisons if c.test.diff.n > 0]
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(rows), 2) + 1.2))
    ax.axvline(0, color="black", linewidth=1)
    for i, c in enumerate(rows):
        d = c.test.diff
        color = VERDICT_COLORS[c.verdict]
        if not math.isnan(d.lo):
            ax.plot([100 * d.lo, 100 * d.hi], [i, i], color=color, linewidth=2)
        ax.plot([100 * d.mean], [i], "o", color=color)
    ax.set_yticks(range(len(rows)), [c.label or f"{c.cell} − {c.reference}" for c in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"difference (points), paired by seed, {100 * confidence:g}% interval; green/red: better/worse "
                  f"after Holm (p < {1 - confidence:.2g}), gray: within noise", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return fig


def sweep(axis: SweepAxis, title: str, confidence: float) -> Any:
    """The metric against one grid axis: a panel per variant (one shared y-scale), a line per value of the
    other axes, each point's mean with its t-interval."""
    plt = _plt()
    variants = list(dict.fromkeys(line.variant for line in axis.lines))
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants) + 1, 3.8), sharey=True, squeeze=False)
    fixed = list(dict.fromkeys(line.label for line in axis.lines))
    cmap = plt.get_cmap("viridis")
    lo, hi = math.inf, -math.inf
    for ax, variant in zip(axes[0], variants, strict=True):
        for line in (x for x in axis.lines if x.variant == variant):
            k = fixed.index(line.label)
            color = cmap(0.85 * k / max(len(fixed) - 1, 1)) if len(fixed) > 1 else "#000000"
            xs = [v if axis.numeric else axis.values.index(v) for v, _ in line.points]
            means = [100 * iv.mean for _, iv in line.points]
            errs = [_clip(iv.lo, iv.hi, 100.0) if not math.isnan(iv.lo) else (100 * iv.mean,) * 2
                    for _, iv in line.points]
            yerr = [[m - e[0] for m, e in zip(means, errs, strict=True)],
                    [e[1] - m for m, e in zip(means, errs, strict=True)]]
            ax.errorbar(xs, means, yerr=yerr, color=color, marker="o", markersize=4, capsize=3,
                        label=line.label or variant)
            lo, hi = min(lo, *(e[0] for e in errs)), max(hi, *(e[1] for e in errs))
        if axis.log:
            ax.set_xscale("log")
        if axis.numeric:
            ax.set_xticks(axis.values, axis.ticks)
            ax.minorticks_off()
        else:
            ax.set_xticks(range(len(axis.values)), axis.ticks)
        ax.set_xlabel(axis.title + (" (log scale)" if axis.log else ""))
        ax.set_title(variant, fontsize=10)
        ax.grid(alpha=0.3)
        if len(fixed) > 1 or fixed != [""]:
            ax.legend(fontsize=7)
    if math.isfinite(lo):
        pad = max(0.03 * (hi - lo), 0.2)
        axes[0][0].set_ylim(max(lo - pad, 0.0), min(hi + pad, 100.0))
    axes[0][0].set_ylabel(f"{title} (%)")
    fig.suptitle(f"{title} against {axis.name}: mean and {100 * confidence:g}% t-interval across seeds", fontsize=10)
    return fig


def heatmap(maps: list[HeatMap], title: str) -> Any:
    """Two-axis grid: the metric's mean (± half-width) in every cell, one panel per variant, one color scale."""
    import numpy as np

    plt = _plt()
    vals = [100 * iv.mean for m in maps for row in m.cells for iv in row if iv is not None]
    vmin, vmax = (min(vals), max(vals)) if vals else (0.0, 100.0)
    first = maps[0]
    fig, axes = plt.subplots(1, len(maps), squeeze=False,
                             figsize=(1.3 * len(first.cols.values) * len(maps) + 2, 0.7 * len(first.rows.values) + 2))
    image = None
    for ax, m in zip(axes[0], maps, strict=True):
        data = np.array([[np.nan if iv is None else 100 * iv.mean for iv in row] for row in m.cells])
        image = ax.imshow(data, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        for i, row in enumerate(m.cells):
            for j, iv in enumerate(row):
                if iv is None:
                    continue
                hw = "" if math.isnan(iv.lo) else f"\n±{100 * iv.half_width:.2f}"
                dark = (100 * iv.mean - vmin) < 0.6 * (vmax - vmin + 1e-12)
                ax.text(j, i, f"{100 * iv.mean:.2f}{hw}", ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
        ax.set_xticks(range(len(m.cols.values)), m.cols.ticks, fontsize=8)
        ax.set_yticks(range(len(m.rows.values)), m.rows.ticks, fontsize=8)
        ax.set_xlabel(m.cols.title)
        ax.set_title(m.variant, fontsize=10)
    axes[0][0].set_ylabel(first.rows.title)
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), label=f"{title} (%)")
    fig.suptitle(f"{title}: mean ± t-interval half-width per grid cell", fontsize=10)
    return fig


def meta(fig: Any) -> list[dict[str, Any]]:
    """What a reader sees, as data: per panel the y-range, the x ticks, the lowest and highest point of every
    band and error bar, and the colors used. The tests read this; report.json stores it."""
    import numpy as np
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.colors import to_hex

    out = []
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        x0, x1 = sorted(ax.get_xlim())
        spans = []
        for coll in ax.collections:
            if isinstance(coll, PolyCollection | LineCollection):
                for path in coll.get_paths():
                    ys = np.asarray(path.vertices, dtype=float)[:, 1]
                    if len(ys):
                        spans.append([float(ys.min()), float(ys.max())])
        colors = sorted({to_hex(line.get_color()) for line in ax.get_lines() if line.get_label() != "_nolegend_"})
        out.append({"title": ax.get_title(), "ylim": [float(v) for v in ax.get_ylim()],
                    "xscale": ax.get_xscale(), "xlabel": ax.get_xlabel(),
                    "xticks": [float(t) for t in ax.get_xticks() if x0 - 1e-9 <= t <= x1 + 1e-9],
                    "xticklabels": [t.get_text() for t in ax.get_xticklabels()],
                    "spans": spans, "colors": colors})
    return out


def confusion(matrix: list[list[int]], classes: list[str], title: str) -> Any:
    """A confusion matrix, rows = true class, columns = predicted, each row as a percentage of its class's
    samples (the diagonal is the per-class accuracy); counts in every cell."""
    import numpy as np

    plt = _plt()
    m = np.array(matrix, dtype=float)
    rows = m.sum(axis=1, keepdims=True)
    pct = np.divide(100 * m, rows, out=np.zeros_like(m), where=rows > 0)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(0.55 * k + 2.6, 0.5 * k + 2.0))
    image = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    for i in range(k):
        for j in range(k):
            if k <= 20 and m[i, j]:
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=6 if k > 10 else 7,
                        color="white" if pct[i, j] > 55 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), classes, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="% of the true class")
    fig.tight_layout()
    return fig
