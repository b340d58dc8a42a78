"""Size-up calculus: shapes, parameters, MACs/FLOPs, memory, receptive field, lint. No torch.

The front door, ``summary(spec_or_module)``, lives one floor up in :mod:`ablab.sizeup`: sizing up a
module or a preset builds it (``ablab.models``), which itself reads this calculus."""

from ablab.calc.costs import Conventions
from ablab.calc.lint import Finding, lint_spec
from ablab.calc.shapes import Resolved, resolve

__all__ = ["Conventions", "Finding", "Resolved", "lint_spec", "resolve"]
