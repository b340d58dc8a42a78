"""Small networks written as a graph of named scalar formulas: the graph, its two file formats, and
its evaluation (forward values, gradients by backprop, and each node's local derivatives)."""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablab.reading import load_json, read_utf8
from ablab.reference.autodiff.formula import FUNCTIONS, VALUE_FUNCS, evaluate_formula, names_in, parse_formula
from ablab.reference.autodiff.value import GraphError, Value


@dataclass
class Node:
    name: str
    formula: str
    tree: ast.expr
    reads: list[str]


@dataclass
class Graph:
    """Leaves (inputs, weights, targets: name -> number) and named formulas in order; ``loss`` names
    the node whose gradient is taken."""

    inputs: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    loss: str = ""

    @property
    def leaves(self) -> dict[str, float]:
        return {**self.inputs, **self.weights, **self.targets}

    def kind_of(self, name: str) -> str:
        for kind, d in (("input", self.inputs), ("weight", self.weights), ("target", self.targets)):
            if name in d:
                return kind
        return "node"

    def add_leaf(self, kind: str, name: str, value: Any, where: str) -> None:
        self._check_new(name, where)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise GraphError(f"{where}: {kind} '{name}' must be a finite number, got {value!r}")
        {"input": self.inputs, "weight": self.weights, "target": self.targets}[kind][name] = float(value)

    def add_node(self, name: str, formula: str, where: str) -> None:
        self._check_new(name, where)
        if not isinstance(formula, str):
            raise GraphError(f"{where}: node '{name}' needs a formula string, got {formula!r}")
        tree = parse_formula(formula, [*self.leaves, *(n.name for n in self.nodes)], where)
        self.nodes.append(Node(name, formula.strip(), tree, names_in(tree)))

    def _check_new(self, name: str, where: str) -> None:
        if not re.fullmatch(r"[A-Za-z_]\w*", str(name)) or name in FUNCTIONS:
            raise GraphError(f"{where}: {name!r} is not a valid name (letters, digits, _; not a function name)")
        if name in self.leaves or any(n.name == name for n in self.nodes):
            raise GraphError(f"{where}: '{name}' is defined twice")

    def finish(self, where: str) -> Graph:
        if not self.nodes:
            raise GraphError(f"{where}: no formulas; expected lines like 'h = sigmoid(w1*x1 + b1)'")
        if not self.weights:
            raise GraphError(f"{where}: no weights; declare them as 'weight w1 = 0.15'")
        self.loss = self.loss or self.nodes[-1].name
        if self.loss not in {n.name for n in self.nodes}:
            raise GraphError(f"{where}: loss '{self.loss}' is not a formula node")
        return self


_LINE = re.compile(r"^(?:(?P<kind>input|weight|target|loss)\s+)?(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<rhs>.+)$")


def parse_graph_text(text: str, source: str = "graph") -> Graph:
    """Parse the line format of the module docstring."""
    g = Graph()
    for i, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{i}"
        m = _LINE.match(line)
        if not m:
            raise GraphError(f"{where}: expected 'input|weight|target NAME = NUMBER' or '[loss] NAME = FORMULA', "
                             f"got {line!r}")
        kind, name, rhs = m.group("kind"), m.group("name"), m.group("rhs")
        if kind in ("input", "weight", "target"):
            try:
                value = float(rhs)
            except ValueError:
                raise GraphError(f"{where}: {kind} '{name}' must be a number, got {rhs.strip()!r}") from None
            g.add_leaf(kind, name, value, where)
        else:
            g.add_node(name, rhs, where)
            if kind == "loss":
                if g.loss:
                    raise GraphError(f"{where}: a second loss line ('{g.loss}' is the loss already)")
                g.loss = name
    return g.finish(source)


def _loss_formula(spec: dict[str, Any], where: str) -> str:
    kind, outs, tgts = spec.get("kind"), spec.get("outputs"), spec.get("targets")
    if kind not in ("half_sse", "mse", "bce"):
        raise GraphError(f"{where}: loss.kind must be 'half_sse', 'mse' or 'bce', got {kind!r}")
    if not (isinstance(outs, list) and isinstance(tgts, list) and outs and len(outs) == len(tgts)):
        raise GraphError(f"{where}: loss needs 'outputs' and 'targets', two lists of names of equal length")
    pairs = list(zip(outs, tgts, strict=True))
    if kind == "bce":
        terms = [f"-({t}*log({o}) + (1 - {t})*log(1 - {o}))" for o, t in pairs]
        return f"({' + '.join(terms)}) / {len(pairs)}"
    terms = [f"({t} - {o})**2" for o, t in pairs]
    return (" + ".join(f"0.5*{t}" for t in terms)) if kind == "half_sse" else f"({' + '.join(terms)}) / {len(pairs)}"


def parse_graph_json(data: Any, source: str = "graph.json") -> Graph:
    """Parse the JSON form (see module docstring)."""
    if not isinstance(data, dict):
        raise GraphError(f"{source}: expected a JSON object with inputs, weights, targets, nodes, loss")
    unknown = set(data) - {"inputs", "weights", "targets", "nodes", "loss", "name"}
    if unknown:
        raise GraphError(f"{source}: unknown key(s) {sorted(unknown)}; expected inputs, weights, targets, "
                         f"nodes, loss")
    g = Graph()
    for key, kind in (("inputs", "input"), ("weights", "weight"), ("targets", "target")):
        leaves = data.get(key, {})
        if not isinstance(leaves, dict):
            raise GraphError(f"{source}: '{key}' must map names to numbers")
        for name, value in leaves.items():
            g.add_leaf(kind, name, value, f"{source}: {key}.{name}")
    nodes = data.get("nodes", {})
    items = list(nodes.items()) if isinstance(nodes, dict) else nodes
    if not isinstance(items, list) or not all(isinstance(it, list | tuple) and len(it) == 2 for it in items):
        raise GraphError(f"{source}: 'nodes' must be an object {{name: formula}} or a list of [name, formula]")
    for name, formula in items:
        g.add_node(name, formula, f"{source}: nodes.{name}")
    loss = data.get("loss", "")
    if isinstance(loss, dict):
        g.add_node("loss", _loss_formula(loss, f"{source}: loss"), f"{source}: loss")
        g.loss = "loss"
    elif isinstance(loss, str):
        g.loss = loss
    else:
        raise GraphError(f"{source}: 'loss' must be a node name or {{kind, outputs, targets}}")
    return g.finish(source)


def load_graph(path: str | Path) -> Graph:
    """Read a graph file: ``.json`` as JSON, anything else in the line format."""
    p = Path(path)
    if not p.is_file():
        raise GraphError(f"{p}: no such graph file")
    text = read_utf8(p)
    if p.suffix == ".json":
        return parse_graph_json(load_json(text, str(p), GraphError), str(p))
    return parse_graph_text(text, str(p))


# Matt Mazur's worked example, the default of ``ablab explain graph``; its published numbers
# (E = 0.298371109, dE/dw5 = 0.082167041, dE/dw1 = 0.000438568) make a hand-checkable test.
MAZUR_EXAMPLE = """\
# Matt Mazur, "A Step by Step Backpropagation Example" (2015): a 2-2-2 sigmoid network, one sample.
input x1 = 0.05
input x2 = 0.10
weight w1 = 0.15
weight w2 = 0.20
weight w3 = 0.25
weight w4 = 0.30
weight b1 = 0.35
weight w5 = 0.40
weight w6 = 0.45
weight w7 = 0.50
weight w8 = 0.55
weight b2 = 0.60
target t1 = 0.01
target t2 = 0.99
net_h1 = w1*x1 + w2*x2 + b1
net_h2 = w3*x1 + w4*x2 + b1
out_h1 = sigmoid(net_h1)
out_h2 = sigmoid(net_h2)
net_o1 = w5*out_h1 + w6*out_h2 + b2
net_o2 = w7*out_h1 + w8*out_h2 + b2
out_o1 = sigmoid(net_o1)
out_o2 = sigmoid(net_o2)
loss E = 0.5*(t1 - out_o1)**2 + 0.5*(t2 - out_o2)**2
"""


@dataclass
class Evaluation:
    """Forward values, gradients of the loss (by backprop on the whole graph), and the local
    derivative of each node with respect to each name its formula reads."""

    graph: Graph
    values: dict[str, float]
    grads: dict[str, float]
    local: dict[str, dict[str, float]]

    def paths(self, wrt: str, limit: int = 64) -> list[list[str]]:
        """Every chain ``[wrt, n1, ..., loss]`` along which ``wrt`` reaches the loss."""
        readers: dict[str, list[str]] = {}
        for n in self.graph.nodes:
            for r in n.reads:
                readers.setdefault(r, []).append(n.name)
        out: list[list[str]] = []

        def walk(path: list[str]) -> None:
            if len(out) >= limit:
                return
            if path[-1] == self.graph.loss:
                out.append(path)
                return
            for nxt in readers.get(path[-1], []):
                walk([*path, nxt])

        walk([wrt])
        return out


def evaluate(graph: Graph) -> Evaluation:
    """Forward pass, backprop from the loss, and per-node local derivatives."""
    env: dict[str, Any] = {k: Value(v, label=k) for k, v in graph.leaves.items()}
    for n in graph.nodes:
        try:
            v = Value.lift(evaluate_formula(n.tree, env, VALUE_FUNCS))
        except (ZeroDivisionError, OverflowError, ValueError) as e:
            raise GraphError(f"node '{n.name}' = {n.formula}: {e}") from None
        except GraphError as e:
            raise GraphError(f"node '{n.name}' = {n.formula}: {e}") from None
        if not math.isfinite(v.data):
            raise GraphError(f"node '{n.name}' = {n.formula}: the value is {v.data} (not a finite number)")
        env[n.name] = Value(v.data, ((v, 1.0),), "=", n.name)  # a named handle on the formula's result
    env[graph.loss].backward()
    values = {k: v.data for k, v in env.items()}
    grads = {k: v.grad for k, v in env.items()}
    local: dict[str, dict[str, float]] = {}
    for n in graph.nodes:  # d node / d read, each read a fresh leaf so only this formula is seen
        leaves = {r: Value(values[r]) for r in n.reads}
        out = Value.lift(evaluate_formula(n.tree, leaves, VALUE_FUNCS))
        out.backward()
        local[n.name] = {r: leaves[r].grad for r in n.reads}
    return Evaluation(graph, values, grads, local)
