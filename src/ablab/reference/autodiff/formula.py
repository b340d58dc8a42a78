"""Scalar formulas (``w1*x1 + b1``, ``sigmoid(net)``): parsed with ``ast`` into a checked tree, never
executed as code, and evaluated over any number type (``Value``, float, torch tensor)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from typing import Any

from ablab.reference.autodiff.value import GraphError, Value

FUNCTIONS = ("sigmoid", "tanh", "relu", "exp", "log")
MAX_FORMULA_CHARS = 100_000
MAX_FORMULA_DEPTH = 200  # the evaluators below recurse once per level
_BINOPS: dict[type, str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def parse_formula(text: str, known: Iterable[str], where: str) -> ast.expr:
    """Parse ``text`` into a checked expression tree: only numbers, known names, ``+ - * / **`` and
    ``FUNCTIONS``; anything else is an error naming ``where``."""
    short = text.strip() if len(text.strip()) <= 60 else text.strip()[:40] + f"...({len(text.strip())} characters)"
    if len(text) > MAX_FORMULA_CHARS:
        raise GraphError(f"{where}: a formula of {len(text):,} characters is longer than the limit of "
                         f"{MAX_FORMULA_CHARS:,}; split it into named steps")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise GraphError(f"{where}: cannot parse formula {short!r}: {e.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise GraphError(f"{where}: formula {short!r} is nested too deeply to parse; split it into named "
                         f"steps") from None
    depth = _depth(tree)
    if depth > MAX_FORMULA_DEPTH:
        raise GraphError(f"{where}: formula {short!r} is nested {depth:,} levels deep, more than the limit of "
                         f"{MAX_FORMULA_DEPTH}; split it into named steps")
    names = set(known)
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise GraphError(f"{where}: operator not allowed in {text.strip()!r} (use + - * / **)")
            if isinstance(node.op, ast.Pow) and not _is_number(node.right):
                raise GraphError(f"{where}: exponents must be numbers in {text.strip()!r}")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub | ast.UAdd):
                raise GraphError(f"{where}: operator not allowed in {text.strip()!r}")
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS) or len(node.args) != 1 \
                    or node.keywords:
                raise GraphError(f"{where}: only one-argument calls of {', '.join(FUNCTIONS)} are allowed "
                                 f"in {text.strip()!r}")
        elif isinstance(node, ast.Name):
            if node.id not in names and node.id not in FUNCTIONS:
                raise GraphError(f"{where}: unknown name '{node.id}' in {text.strip()!r} "
                                 f"(define it on an earlier line)")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float) or isinstance(node.value, bool):
                raise GraphError(f"{where}: only numbers are allowed as constants in {text.strip()!r}")
        elif not isinstance(node, ast.operator | ast.unaryop | ast.Load | ast.expr_context):
            raise GraphError(f"{where}: {type(node).__name__} not allowed in {text.strip()!r}")
    return tree


def _depth(tree: ast.AST) -> int:
    """How deeply the expression tree nests (iteratively: the tree may be deep)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _is_number(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _is_number(node.operand)
    return isinstance(node, ast.Constant) and isinstance(node.value, int | float)


def evaluate_formula(tree: ast.expr, env: dict[str, Any], funcs: dict[str, Callable[[Any], Any]]) -> Any:
    """Evaluate a checked tree over any number type (``Value``, float, torch tensor)."""
    if isinstance(tree, ast.Constant):
        assert isinstance(tree.value, int | float)  # parse_formula admits only numbers
        return float(tree.value)
    if isinstance(tree, ast.Name):
        return env[tree.id]
    if isinstance(tree, ast.UnaryOp):
        v = evaluate_formula(tree.operand, env, funcs)
        return -v if isinstance(tree.op, ast.USub) else v
    if isinstance(tree, ast.BinOp):
        a = evaluate_formula(tree.left, env, funcs)
        b = evaluate_formula(tree.right, env, funcs)
        op = _BINOPS[type(tree.op)]
        return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                "**": lambda: a**b}[op]()
    if isinstance(tree, ast.Call):
        assert isinstance(tree.func, ast.Name)
        return funcs[tree.func.id](evaluate_formula(tree.args[0], env, funcs))
    raise GraphError(f"cannot evaluate {ast.dump(tree)}")


VALUE_FUNCS: dict[str, Callable[[Any], Any]] = {f: (lambda name: lambda v: getattr(Value.lift(v), name)())(f)
                                                for f in FUNCTIONS}


def names_in(tree: ast.expr) -> list[str]:
    """Names a formula reads, in order of first appearance."""
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS and node.id not in out:
            out.append(node.id)
    return out
