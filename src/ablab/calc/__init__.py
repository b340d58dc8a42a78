"""Size-up calculus: shapes, parameters, MACs/FLOPs, memory, receptive field, lint. No torch."""

from ablab.calc.shapes import Resolved, resolve

__all__ = ["Resolved", "resolve"]
