"""A micrograd-sized scalar autodiff, and small networks written as a graph of named scalar formulas —
the by-hand backpropagation exercise, done by the machine with every intermediate shown.

``Value`` holds a number, its gradient, and for each parent the *local derivative* of this node with
respect to that parent (a number, not a closure, so it can be printed). ``backward()`` applies the
chain rule in reverse topological order (Rumelhart, Hinton & Williams 1986; Karpathy's micrograd)::

    parent.grad += local_derivative * node.grad

A graph file names inputs, weights, targets and formulas, one per line; ``#`` starts a comment::

    input  x1 = 0.05
    weight w1 = 0.15
    target t1 = 0.01
    net_h1 = w1*x1 + w2*x2 + b1
    out_h1 = sigmoid(net_h1)
    loss E = 0.5*(t1 - out_o1)**2 + 0.5*(t2 - out_o2)**2

or the same as JSON: ``{"inputs": {...}, "weights": {...}, "targets": {...}, "nodes": {"net_h1": "w1*x1
+ ..."}, "loss": "E"}`` where ``loss`` may instead be ``{"kind": "half_sse" | "mse" | "bce",
"outputs": [...], "targets": [...]}``. Formulas use ``+ - * / **``, numbers, earlier names and
``sigmoid tanh relu exp log``; they are parsed with ``ast`` and never executed as code.

Modules: ``value`` (``Value``), ``formula`` (parsing and evaluating one formula), ``graph`` (the
graph, its files and its evaluation).
"""

from ablab.reference.autodiff.formula import (
    FUNCTIONS,
    VALUE_FUNCS,
    evaluate_formula,
    names_in,
    parse_formula,
)
from ablab.reference.autodiff.graph import (
    MAZUR_EXAMPLE,
    Evaluation,
    Graph,
    Node,
    evaluate,
    load_graph,
    parse_graph_json,
    parse_graph_text,
)
from ablab.reference.autodiff.value import GraphError, Value

__all__ = ["FUNCTIONS", "MAZUR_EXAMPLE", "VALUE_FUNCS", "Evaluation", "Graph", "GraphError", "Node", "Value",
           "evaluate", "evaluate_formula", "load_graph", "names_in", "parse_formula", "parse_graph_json",
           "parse_graph_text"]
