"""The shape of the code: no import cycles in src/ablab (imports inside functions included) and no
module a reader cannot hold (at most ``MAX_LINES`` lines)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 420


def modules() -> dict[str, Path]:
    out = {}
    for p in (SRC / "ablab").rglob("*.py"):
        name = ".".join(p.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the ablab modules it imports anywhere in its body (a package importing its own
    children, or a child its package, is not an edge: that is how packages are built)."""
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = m.split(".")
                    keep = len(parts) - node.level + (1 if p.name == "__init__.py" else 0)
                    base = ".".join(parts[:keep] + ([base] if base else []))
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            for t in targets:
                if t in mods and t != m and not t.startswith(m + ".") and not m.startswith(t + "."):
                    edges[m].add(t)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_cycles() -> None:
    """The oracle itself: a three-module ring and a self-contained pair are found, a chain is not."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": set(), "f": {"g"}, "g": {"f"}}
    assert sorted(cycles(edges)) == [["a", "b", "c"], ["f", "g"]]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_layer_registry_is_the_only_place_kinds_are_named() -> None:
    """No module outside ablab.layers branches on layer classes (``isinstance(x, Conv2d)``): the
    builder, the reference model and the calculus read the registry."""
    classes = {"Conv1d", "Conv2d", "ConvNd", "_ConvBase", "_PoolBase", "PoolNd", "Linear", "BatchNorm",
               "LayerNorm", "GroupNorm", "Dropout", "Flatten", "MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d",
               "AdaptiveAvgPool2d", "LeakyReLU", "Softmax", "Pad", "Opaque"}
    offenders = []
    for name, p in modules().items():
        if name.startswith(("ablab.layers", "ablab.train.", "ablab.calc.torch_module")):
            continue  # the registry itself; train/ (owned elsewhere) and the module summary (being replaced)
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance" and len(node.args) > 1:
                used = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                if used & classes:
                    offenders.append(f"{name}:{node.lineno}")
    assert not offenders, "isinstance on layer classes outside ablab.layers: " + ", ".join(offenders)


def test_no_module_is_longer_than_a_reader_can_hold() -> None:
    long = {str(p.relative_to(SRC)): n for p in modules().values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: " + ", ".join(f"{k} ({v})" for k, v in sorted(long.items()))
