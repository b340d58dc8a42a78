"""``Value``: a scalar in a computation graph with numeric local derivatives (micrograd's ``Value``).

``backward()`` applies the chain rule in reverse topological order (Rumelhart, Hinton & Williams
1986; Karpathy's micrograd)::

    parent.grad += local_derivative * node.grad
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ablab.errors import UserError


class GraphError(UserError, ValueError):
    """A graph file or formula that cannot be read; the message names the file, line and problem."""


class Value:
    """A scalar in a computation graph (micrograd's ``Value`` with numeric local derivatives)."""

    def __init__(self, data: float, parents: Iterable[tuple[Value, float]] = (), op: str = "", label: str = ""):
        self.data = float(data)
        self.grad = 0.0
        self.parents = tuple(parents)  # (parent, d self / d parent)
        self.op = op
        self.label = label

    def __repr__(self) -> str:
        return f"Value({self.label + '=' if self.label else ''}{self.data:.6g}, grad={self.grad:.6g})"

    @staticmethod
    def lift(v: Value | float) -> Value:
        return v if isinstance(v, Value) else Value(v)

    def __add__(self, other: Value | float) -> Value:
        o = Value.lift(other)
        return Value(self.data + o.data, ((self, 1.0), (o, 1.0)), "+")

    def __mul__(self, other: Value | float) -> Value:
        o = Value.lift(other)
        return Value(self.data * o.data, ((self, o.data), (o, self.data)), "*")

    def __pow__(self, k: float) -> Value:
        if isinstance(k, Value):
            raise TypeError("only constant exponents")
        if self.data < 0 and k != int(k):  # a complex number: no real value or slope
            raise GraphError(f"{self.data:g} ** {k:g}: a negative number to a fractional power is not real")
        return Value(self.data**k, ((self, k * self.data ** (k - 1)),), f"**{k:g}")

    def __neg__(self) -> Value:
        return self * -1.0

    def __sub__(self, other: Value | float) -> Value:
        return self + (-Value.lift(other))

    def __truediv__(self, other: Value | float) -> Value:
        o = Value.lift(other)
        return Value(self.data / o.data, ((self, 1.0 / o.data), (o, -self.data / o.data**2)), "/")

    def __radd__(self, other: float) -> Value:
        return self + other

    def __rmul__(self, other: float) -> Value:
        return self * other

    def __rsub__(self, other: float) -> Value:
        return Value.lift(other) - self

    def __rtruediv__(self, other: float) -> Value:
        return Value.lift(other) / self

    def exp(self) -> Value:
        e = math.exp(self.data)
        return Value(e, ((self, e),), "exp")

    def log(self) -> Value:
        if self.data <= 0:
            raise GraphError(f"log of a non-positive number ({self.data:g})")
        return Value(math.log(self.data), ((self, 1.0 / self.data),), "log")

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return Value(t, ((self, 1.0 - t * t),), "tanh")  # tanh' = 1 - tanh^2

    def sigmoid(self) -> Value:
        s = 1.0 / (1.0 + math.exp(-self.data))
        return Value(s, ((self, s * (1.0 - s)),), "sigmoid")  # sigma' = sigma (1 - sigma)

    def relu(self) -> Value:
        return Value(max(self.data, 0.0), ((self, 1.0 if self.data > 0 else 0.0),), "relu")

    def backward(self) -> None:
        """Set ``grad`` of every node this one depends on to ``d self / d node``."""
        order: list[Value] = []
        seen: set[int] = set()

        def visit(v: Value) -> None:  # topological order, iterative to allow deep graphs
            stack = [(v, False)]
            while stack:
                node, done = stack.pop()
                if done:
                    order.append(node)
                    continue
                if id(node) in seen:
                    continue
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p, _ in node.parents)

        visit(self)
        for v in order:
            v.grad = 0.0
        self.grad = 1.0
        for v in reversed(order):
            for parent, local in v.parents:
                parent.grad += local * v.grad  # the chain rule
