"""The shape of the code: no import cycles in src/ablab (imports inside functions included), rooms (the
top-level packages and loose modules of src/ablab) on floors that import only downwards, imports inside
functions only where they keep a heavy library off a light path, and no module a reader cannot hold (at
most ``MAX_LINES`` lines). docs/architecture.md draws the same floors."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 400

# The floors, written down once: a room may import only rooms on its own floor or below. Floor 0 is
# plumbing every room may use; the user-facing layer (api, cli, the package root) is the top floor.
FLOORS: dict[str, int] = {
    "errors": 0, "version": 0, "jsonable": 0, "registry": 0, "metrics": 0, "reading": 0, "writing": 0,
    "display": 0,
    "layers": 1, "data": 1, "storefile": 1, "store": 1,
    "spec": 2,
    "calc": 3,
    "models": 4,
    "sizeup": 5, "reference": 5, "train": 5,
    "study": 6,
    "report": 7,
    "api": 8,
    "cli": 9, "__main__": 9, "<root>": 9,
}


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


def room_of(module: str) -> str:
    """``ablab.calc.shapes`` -> ``calc``; the package root is ``<root>``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def room_edges() -> dict[tuple[str, str], list[str]]:
    """(room, room it imports) -> the modules that do it, for every import between two rooms."""
    out: dict[tuple[str, str], list[str]] = {}
    for m, targets in import_graph().items():
        for t in targets:
            a, b = room_of(m), room_of(t)
            if a != b:
                out.setdefault((a, b), []).append(m)
    return out


def test_every_room_has_a_floor() -> None:
    rooms = {room_of(m) for m in modules()}
    missing = rooms - set(FLOORS)
    assert not missing, f"rooms without a floor (add them to FLOORS and docs/architecture.md): {missing}"
    assert set(FLOORS) - rooms == set(), f"floors for rooms that no longer exist: {set(FLOORS) - rooms}"


def test_imports_point_down_only() -> None:
    up = [f"{a} (floor {FLOORS[a]}) imports {b} (floor {FLOORS[b]}) in {', '.join(sorted(set(ms)))}"
          for (a, b), ms in sorted(room_edges().items()) if FLOORS.get(b, 0) > FLOORS.get(a, 0)]
    assert not up, "imports up a floor: " + "; ".join(up)


def test_no_cycles_between_rooms() -> None:
    edges: dict[str, set[str]] = {}
    for a, b in room_edges():
        edges.setdefault(a, set()).add(b)
        edges.setdefault(b, set())
    found = cycles(edges)
    assert not found, "room cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_nothing_inside_imports_the_package_root() -> None:
    offenders = [m for m, targets in import_graph().items() if "ablab" in targets and m != "ablab.__main__"]
    assert not offenders, f"modules importing the package root: {offenders}"


DOC = SRC.parent / "docs" / "architecture.md"


def test_the_architecture_page_draws_these_floors() -> None:
    """docs/architecture.md's floor table is FLOORS, and every file it names exists."""
    import re

    text = DOC.read_text(encoding="utf-8")
    drawn: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\| (\d+) \| ([^|]+) \|", line)
        if m:
            for room in re.findall(r"`([^`]+)`", m.group(2)):
                drawn[room] = int(m.group(1))
    assert drawn == FLOORS
    named = set(re.findall(r"`((?:src|tests|docs)/[\w/.\-]+)`", text))
    assert named and not [p for p in named if not (SRC.parent / p).exists()], named


# Libraries worth deferring: each costs tens of milliseconds or more to import (numpy 0.16 s, rich 0.03-0.05 s,
# torch 1.2 s measured here) and is absent from a path that must stay light (`--help`, sizing up a spec).
HEAVY = {"torch", "numpy", "rich", "matplotlib", "scipy", "ray", "pandas", "tensorboard", "IPython", "PIL",
         "safetensors"}


def _top_level_imports() -> tuple[dict[str, set[str]], list[tuple[str, int, list[str]]]]:
    """module -> what it imports at import time (TYPE_CHECKING blocks excluded, lazy package attributes
    resolved through their ``_LAZY`` maps); and every import inside a function: (module, line, targets)."""
    mods = modules()
    lazy_maps: dict[str, dict[str, str]] = {}
    trees = {m: ast.parse(p.read_text(encoding="utf-8")) for m, p in mods.items()}
    for m, tree in trees.items():
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_LAZY" for t in node.targets):
                lazy_maps[m] = {k: v if v.startswith("ablab") else f"{m}.{v}"
                                for k, v in ast.literal_eval(node.value).items()}

    def targets(m: str, node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = node.module or ""
        if node.level:
            parts = m.split(".")
            keep = len(parts) - node.level + (1 if mods[m].name == "__init__.py" else 0)
            base = ".".join(parts[:keep] + ([base] if base else []))
        named = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else lazy_maps.get(base, {}).get(a.name, "")
                 for a in node.names]
        return [base, *(n for n in named if n)]

    top: dict[str, set[str]] = {}
    lazy: list[tuple[str, int, list[str]]] = []
    for m, tree in trees.items():
        skip = {id(n) for node in ast.walk(tree)
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        inside = {id(n) for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
                  for n in ast.walk(fn)}
        top[m] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip:
                if id(node) in inside:
                    lazy.append((m, node.lineno, targets(m, node)))
                else:
                    top[m].update(targets(m, node))
    return top, lazy


def test_imports_inside_functions_only_defer_heavy_libraries() -> None:
    """An import inside a function is there to keep a heavy library (HEAVY) off a path that does not need
    it: the import names one, or an ablab module that loads one when imported. Anything else goes at the top
    of the module, where a reader sees the dependencies (and a hidden cycle would show)."""
    top, lazy = _top_level_imports()
    memo: dict[str, bool] = {}

    def heavy(m: str, seen: frozenset[str] = frozenset()) -> bool:
        if m.split(".")[0] in HEAVY:
            return True
        if m not in top or m in seen:
            return False
        if m not in memo:
            parents = [".".join(m.split(".")[:i]) for i in range(2, len(m.split(".")))]
            memo[m] = any(heavy(d, seen | {m}) for d in [*top[m], *parents] if d != m)
        return memo[m]

    light = [f"{modules()[m].relative_to(SRC)}:{line} ({t[0]})" for m, line, t in lazy if not any(map(heavy, t))]
    assert not light, f"{len(light)} imports inside functions defer no heavy library: " + ", ".join(light)
