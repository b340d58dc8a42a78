"""The spec grammar: layers separated by whitespace, ``>``, ``->`` or ``|``; each ``name`` or
``name(args)`` with positional values, then ``key=value`` keywords; values are numbers, true/false,
same/valid, or tuples ``(a,b)`` / ``[a,b]`` nested at most ``MAX_DEPTH`` levels; ``#`` starts a comment.

The parser is iterative (no recursion), so no input can exhaust Python's stack; errors give the line,
the column and a caret.
"""

from __future__ import annotations

import re
from typing import Any

from ablab.layers import Layer
from ablab.layers.values import MAX_SIZE, Shape, SpecError
from ablab.layers.values import shape as check_shape
from ablab.spec.stack import MAX_LAYERS, Spec, make_layer

MAX_DEPTH = 8  # tuples inside tuples: padding pairs need 2
MAX_DIGITS = 30  # an integer literal longer than this cannot be a size (sizes are at most MAX_SIZE)

_TOKEN = re.compile(
    r"\s*(?:(?P<arrow>->|>|\|)|(?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_\-]*)|(?P<punct>[(),=\[\]]))",
    re.ASCII,
)
Token = tuple[str, str, int]  # (kind, text, offset)


class _Parser:
    """Parser over the token list; ``self.i`` is the next token."""

    def __init__(self, text: str, source: str = "spec", max_layers: int = MAX_LAYERS):
        self.text, self.source, self.max_layers = text, source, max_layers
        self.toks: list[Token] = []
        pos = 0
        while pos < len(text):
            if text[pos].isspace():
                pos += 1
                continue
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                self.fail(pos, f"unexpected character {text[pos]!r}")
            assert m is not None
            kind = m.lastgroup or ""
            self.toks.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def fail(self, pos: int, msg: str) -> None:
        line_start = self.text.rfind("\n", 0, pos) + 1
        line_end = self.text.find("\n", pos)
        line_end = len(self.text) if line_end < 0 else line_end
        line_no = self.text.count("\n", 0, pos) + 1
        col = pos - line_start + 1
        snippet = self.text[line_start:line_end]
        if len(snippet) > 120:  # show the neighbourhood of a very long line only
            lo = max(col - 60, 0)
            snippet, col = snippet[lo:lo + 120], col - lo
        raise SpecError(f"{self.source}:{line_no}:{col}: {msg}\n  {snippet}\n  {' ' * (col - 1)}^")

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def pos(self) -> int:
        t = self.peek()
        return t[2] if t else len(self.text)

    def take(self, expected: str, kind: str | None = None) -> Token:
        t = self.peek()
        if t is None or (kind is not None and t[0] != kind):
            self.fail(self.pos(), f"expected {expected}, got {repr_token(t)}")
        assert t is not None
        self.i += 1
        return t

    def parse(self) -> Spec:
        shape: Shape | None = None
        layers: list[Layer] = []
        while (t := self.peek()) is not None:
            if t[0] == "arrow":
                self.i += 1
                continue
            start = t[2]
            name = self.take("a layer name", kind="name")[1]
            pos_args: list[Any] = []
            kw_args: dict[str, Any] = {}
            nt = self.peek()
            if nt is not None and nt[1] == "(":
                self.i += 1
                pos_args, kw_args = self.arglist(name)
            if name.lower() == "input":
                if layers or shape is not None:
                    self.fail(start, "input(...) must come first, once")
                if kw_args:
                    self.fail(start, "input takes only integers, e.g. input(1,28,28)")
                try:
                    shape = check_shape(tuple(pos_args), "input")
                except SpecError as e:
                    self.fail(start, str(e))
                continue
            if len(layers) >= self.max_layers:
                self.fail(start, f"more than {self.max_layers:,} layers, the limit of a spec (max_layers)")
            try:
                layers.append(make_layer(name, pos_args, kw_args))
            except SpecError as e:
                self.fail(start, f"layer {len(layers) + 1}: {e}")
        if not layers:
            self.fail(0, "expected at least one layer")
        return Spec(input_shape=shape, layers=tuple(layers))

    def arglist(self, layer: str) -> tuple[list[Any], dict[str, Any]]:
        pos_args: list[Any] = []
        kw: dict[str, Any] = {}
        if (t := self.peek()) is not None and t[1] == ")":
            self.i += 1
            return pos_args, kw
        while True:
            t, nt = self.peek(), self.peek(1)
            if t is not None and t[0] == "name" and nt is not None and nt[1] == "=":
                if t[1] in kw:
                    self.fail(t[2], f"{layer}: argument '{t[1]}' given twice")
                self.i += 2
                kw[t[1]] = self.value()
            else:
                if kw:
                    self.fail(self.pos(), f"{layer}: positional argument after keyword argument")
                pos_args.append(self.value())
            t = self.take("',' or ')'")
            if t[1] == ")":
                return pos_args, kw
            if t[1] != ",":
                self.fail(t[2], f"expected ',' or ')', got '{t[1]}'")

    def value(self) -> Any:
        """One value; tuples are built with an explicit stack of open brackets (no recursion)."""
        stack: list[tuple[list[Any], str]] = []
        while True:
            kind, text, pos = self.take("a value (number, true/false, same/valid or a tuple)")
            if text in ("(", "["):
                if len(stack) >= MAX_DEPTH:
                    self.fail(pos, f"values nested deeper than {MAX_DEPTH} levels")
                stack.append(([], ")" if text == "(" else "]"))
                continue
            v = self.scalar(kind, text, pos)
            while True:  # close every tuple this value completes
                if not stack:
                    return v
                items, close = stack[-1]
                items.append(v)
                _, sep, spos = self.take(f"',' or '{close}'")
                if sep == close:
                    stack.pop()
                    v = tuple(items)
                    continue
                if sep != ",":
                    self.fail(spos, f"expected ',' or '{close}', got '{sep}'")
                break

    def scalar(self, kind: str, text: str, pos: int) -> Any:
        if kind == "num":
            if any(c in text for c in ".eE"):
                return float(text)
            if len(text.lstrip("+-0")) > MAX_DIGITS:
                self.fail(pos, f"an integer of {len(text.lstrip('+-'))} digits; sizes are at most {MAX_SIZE:,}")
            return int(text)
        if kind == "name":
            low = text.lower()
            if low in ("true", "yes", "on"):
                return True
            if low in ("false", "no", "off", "none"):
                return False
            return text
        self.fail(pos, f"expected a value, got '{text}'")


def repr_token(t: Token | None) -> str:
    return f"'{t[1]}'" if t else "end of spec"


def parse_spec(text: str, source: str = "spec", max_layers: int = MAX_LAYERS) -> Spec:
    """Parse the spec grammar (see the module docstring). Comments start with ``#``; more than
    ``max_layers`` layers are refused (the work of a summary grows with them)."""
    clean = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return _Parser(clean, source, max_layers).parse()
