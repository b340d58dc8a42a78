"""The document model of the worked examples: blocks (headings, paragraphs, equations, matrices,
checks) that render to plain text or to Markdown with LaTeX a student can paste into a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ablab.errors import UserError

TOL = 1e-10  # scaled error allowed against torch autograd (float64)


class ExplainError(UserError, ValueError):
    """Bad input to a worked example; the message names the flag or key and what was expected."""


@dataclass
class Explanation:
    """A worked example: blocks that render to text or Markdown, the numbers, and the checks."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    checks: list[tuple[str, float, float]] = field(default_factory=list)  # (what, error, tolerance)
    digits: int = 6

    @property
    def ok(self) -> bool:
        return all(err <= tol for _, err, tol in self.checks)

    # builders ------------------------------------------------------------------------------
    def heading(self, text: str) -> None:
        self.blocks.append(("heading", text))

    def para(self, text: str, latex: str | None = None) -> None:
        self.blocks.append(("para", (text, latex if latex is not None else text)))

    def eq(self, plain: str, latex: str) -> None:
        self.blocks.append(("eq", (plain, latex)))

    def mat(self, name: str, latex_name: str, value: Any) -> None:
        """A scalar, vector or matrix of numbers (or of strings, e.g. symbolic weights)."""
        self.blocks.append(("mat", (name, latex_name, value)))

    def check(self, what: str, err: float, tol: float = TOL) -> None:
        self.checks.append((what, err, tol))
        self.blocks.append(("check", (what, err, tol)))

    # rendering -----------------------------------------------------------------------------
    def num(self, v: Any) -> str:
        if isinstance(v, str):
            return v
        v = float(v)
        if v == 0:
            return "0"
        return f"{v:.{self.digits}g}"

    def render(self, fmt: str = "text") -> str:
        if fmt not in ("text", "markdown"):
            raise ExplainError(f"format: expected 'text' or 'markdown', got {fmt!r}")
        return self._text() if fmt == "text" else self._markdown()

    def _cells(self, value: Any) -> list[list[str]]:
        a = np.asarray(value, dtype=object)
        if a.ndim == 0:
            return [[self.num(a.item())]]
        if a.ndim == 1:
            return [[self.num(v) for v in a]]
        return [[self.num(v) for v in row] for row in a.reshape(a.shape[0], -1)]

    def _text(self) -> str:
        out = [self.title, "=" * len(self.title), ""]
        for i, (kind, body) in enumerate(self.blocks):
            if kind == "heading":
                out += [body, "-" * len(body)]
            elif kind == "para":  # consecutive paragraphs stay together, like a derivation
                nxt = self.blocks[i + 1][0] if i + 1 < len(self.blocks) else ""
                out += [body[0]] + ([""] if nxt != "para" else [])
            elif kind == "eq":
                out += ["    " + body[0], ""]
            elif kind == "mat":
                name, _, value = body
                cells = self._cells(value)
                if np.asarray(value, dtype=object).ndim <= 1:
                    inner = ", ".join(cells[0])
                    out += [f"{name} = {inner if len(cells[0]) == 1 and np.ndim(value) == 0 else '[' + inner + ']'}",
                            ""]
                else:
                    width = max(len(c) for row in cells for c in row)
                    out.append(f"{name} =")
                    out += ["  [ " + "  ".join(c.rjust(width) for c in row) + " ]" for row in cells]
                    out.append("")
            elif kind == "check":
                what, err, tol = body
                mark = "ok" if err <= tol else "FAILED"
                out += [f"check: {what}: max error {err:.1e} (tolerance {tol:.0e}) {mark}", ""]
        return "\n".join(out).rstrip() + "\n"

    def _markdown(self) -> str:
        out = [f"### {self.title}", ""]
        for kind, body in self.blocks:
            if kind == "heading":
                out += [f"**{body}**", ""]
            elif kind == "para":
                out += [body[1], ""]
            elif kind == "eq":
                out += ["$$", body[1], "$$", ""]
            elif kind == "mat":
                _, lname, value = body
                cells = [[_tex_cell(c) for c in row] for row in self._cells(value)]
                nd = np.asarray(value, dtype=object).ndim
                if nd == 0:
                    out += [f"${lname} = {cells[0][0]}$", ""]
                else:
                    inner = r" \\ ".join(" & ".join(row) for row in cells)  # a vector prints as one row
                    out += ["$$", f"{lname} = \\begin{{bmatrix}} {inner} \\end{{bmatrix}}", "$$", ""]
            elif kind == "check":
                what, err, tol = body
                mark = "✅" if err <= tol else "❌"
                out += [f"- {mark} {what}: max error {err:.1e} (tolerance {tol:.0e})", ""]
        return "\n".join(out).rstrip() + "\n"


def _tex_cell(c: str) -> str:
    """``w[0,1,2]`` -> ``w_{0,1,2}``; numbers in scientific notation -> ``\\times 10^{}``."""
    if "[" in c and c.endswith("]"):
        base, idx = c[:-1].split("[", 1)
        return f"{base}_{{{idx}}}"
    if "e" in c and c.replace("e", "").replace("-", "").replace("+", "").replace(".", "").isdigit():
        mant, exp = c.split("e")
        return f"{mant} \\times 10^{{{int(exp)}}}"
    return c
