"""The registered reference checks: every layer, parametrised over shapes, kernel, stride, padding
(asymmetric pairs too), dilation and groups, plus batch-norm running statistics, dropout's mask, the
NumPy model's training trajectory and the scalar autodiff. ``ablab check`` and the tests run this
same registry (``CHECKS``), so what the table shows is what the test suite asserts.

Modules: ``base`` (the registry, ``run``, helpers), ``layers``, ``norm`` (layer norm, group norm,
adaptive pooling) and ``training`` (losses, the model trajectory): importing this package registers
them all, in that order.
"""

from ablab.reference.checks import layers, norm, training  # noqa: F401  (registers the cases)
from ablab.reference.checks.base import CHECKS, Case, list_checks, register, run

__all__ = ["CHECKS", "Case", "list_checks", "register", "run"]
