"""Size-up calculus: shapes, parameters, MACs/FLOPs, memory, receptive field, lint. No torch."""

from ablab.calc.costs import Conventions
from ablab.calc.lint import Finding, lint_spec
from ablab.calc.shapes import Resolved, resolve
from ablab.calc.summary import Summary, summary

__all__ = ["Conventions", "Finding", "Resolved", "Summary", "lint_spec", "resolve", "summary"]
