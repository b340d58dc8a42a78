"""ablab: size up, check the math of, and compare small neural networks.

Torch-free at import: ``import ablab`` and the spec/calculus work without loading PyTorch.
"""

from ablab.errors import UserError
from ablab.spec import Spec, SpecError, load_spec, parse_shape, parse_spec

__version__ = "0.1.0"

__all__ = ["Spec", "SpecError", "UserError", "__version__", "load_spec", "parse_shape", "parse_spec"]
