"""How ablab's results show in a notebook: ``_repr_html_`` and ``.to_pandas()``.

The result classes (``Summary``, ``RunResult``) inherit a small mixin from here, so they render as
HTML tables in Jupyter and turn into DataFrames, while their own modules stay about computing. Nothing
here imports torch or the modules that define those classes (the mixins only read ``self``).
pandas is an optional extra: ``pip install 'ablab[pandas]'``.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

from ablab.errors import UserError

CSS = ("<style>.ablab table{border-collapse:collapse;font-size:12px;margin:4px 0}"
       ".ablab th,.ablab td{border:1px solid #ddd;padding:2px 8px;text-align:right}"
       ".ablab th{background:#eef3f8}.ablab td.l,.ablab th.l{text-align:left}"
       ".ablab .warn{color:#a60}.ablab .err{color:#b00;font-weight:bold}.ablab .note{color:#555;font-size:11px}"
       "</style>")


def require_pandas() -> Any:
    """``import pandas``, or a UserError that says how to install it."""
    try:
        import pandas
    except ImportError:
        raise UserError("to_pandas() needs pandas, which is not installed: pip install 'ablab[pandas]' "
                        "(or pip install pandas)") from None
    return pandas


def table_html(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 2, table_id: str = "") -> str:
    """An HTML table; the first ``left`` columns left-aligned (names), the rest right-aligned (numbers)."""
    e = html.escape
    ident = f" id='{e(table_id)}'" if table_id else ""
    head = "".join(f"<th class='{'l' if i < left else ''}'>{e(str(h))}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td class='{'l' if i < left else ''}'>{e(str(c))}</td>" for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def png_img(fig: Any, alt: str) -> str:
    """A matplotlib figure as an inline ``<img>`` (base64 PNG)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


class SummaryDisplay:
    """Mixed into ``ablab.sizeup.Summary``."""

    def _repr_html_(self) -> str:
        s: Any = self
        rows = [(r.index, r.name, r.layer, _shape(r.output_shape), f"{r.params:,}", f"{r.macs:,}", f"{r.flops:,}",
                 _bytes(r.activation_bytes), r.receptive_field.short() if r.receptive_field else "all")
                for r in s.layers]
        t = s.totals
        rows.append(("", "total", "", "", f"{t.params:,}", f"{t.macs:,}", f"{t.flops:,}",
                     _bytes(t.memory.activation_bytes), ""))
        parts = [CSS, "<div class='ablab'>",
                 f"<b>{html.escape(s.model)}</b> (input {_shape(s.input_shape)}, batch {s.batch}, {s.dtype})",
                 table_html(["#", "layer", "spec", "output", "params", "MACs", "FLOPs", "output bytes", "RF/stride"],
                            rows, left=3, table_id="layers")]
        parts += [f"<div>{html.escape(line)}</div>" for line in s.totals_lines()]
        for f in s.findings:
            cls = "err" if f.severity == "error" else "warn"
            where = f"{f.layer}: " if f.layer else ""
            parts.append(f"<div class='{cls}'>{html.escape(f.severity)}: {html.escape(where + f.message)}</div>")
        parts += [f"<div class='note'>note: {html.escape(n)}</div>" for n in s.notes]
        parts += [f"<div class='note'>{html.escape(line)}</div>" for line in s.conventions_lines()]
        return "".join(parts) + "</div>"

    def to_pandas(self) -> Any:
        """One row per layer: name, kind, spec, shapes, params, MACs, FLOPs, bytes, receptive field."""
        pd = require_pandas()
        s: Any = self
        rows = []
        for r in s.layers:
            d = r.to_dict()
            rf = d.pop("receptive_field") or {}
            d["input_shape"], d["output_shape"] = _shape(r.input_shape), _shape(r.output_shape)
            d.update({"rf_size": rf.get("size"), "rf_stride": rf.get("stride")})
            rows.append(d)
        return pd.DataFrame(rows).set_index("index")


class RunResultDisplay:
    """Mixed into ``ablab.train.trainer.RunResult``."""

    def _repr_html_(self) -> str:
        r: Any = self
        e = html.escape
        info = r.info or {}

        def pct(v: Any) -> str:
            return "—" if v is None else f"{100 * v:.2f}"

        rows = [(m["epoch"], f"{m['train_loss']:.4f}", pct(m["train_acc"]), pct(m["val_acc"]), pct(m["test_acc"]),
                 f"{m['train_time_s']:.1f} + {m['eval_time_s']:.1f}") for m in r.history]
        final = r.final.get("test_acc")
        head = (f"<b>{e(r.status)}</b>: test accuracy {pct(final)}% (n = {info.get('n_test', '?')}) · "
                f"{info.get('params', 0):,} parameters · dataset {e(str(info.get('dataset_source', '?')))} · "
                f"{r.wall_time_s:.1f} s")
        parts = [CSS, "<div class='ablab'>", head,
                 table_html(["epoch", "train loss", "train acc %", "val acc %", "test acc %", "train + eval s"],
                            rows, left=1, table_id="history")]
        if r.diverged:
            parts.append(f"<div class='err'>diverged: {e(str(r.diverged))}</div>")
        if r.history:
            parts.append(png_img(learning_curves(r.history), "learning curves"))
        return "".join(parts) + "</div>"

    def to_pandas(self) -> Any:
        """The history: one row per epoch (accuracies as fractions, losses in nats, times in seconds)."""
        pd = require_pandas()
        r: Any = self
        return pd.DataFrame(r.history).set_index("epoch") if r.history else pd.DataFrame()


def learning_curves(history: list[dict[str, Any]]) -> Any:
    """Loss and accuracy by epoch for one run: a matplotlib ``Figure`` made without pyplot, so the
    session's backend and open figures are left alone."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.8))
    ax1, ax2 = fig.subplots(1, 2)
    epochs = [m["epoch"] for m in history]
    for split, style in (("train", "-"), ("val", "--"), ("test", ":")):
        loss = [m[f"{split}_loss"] for m in history]
        acc = [m[f"{split}_acc"] for m in history]
        if any(v is not None for v in loss):
            ax1.plot(epochs, [float("nan") if v is None else v for v in loss], style, marker="o", label=split)
            ax2.plot(epochs, [float("nan") if v is None else 100 * v for v in acc], style, marker="o", label=split)
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
