"""Worked examples with every intermediate value, as plain text or as Markdown with LaTeX a student can
paste into a report. Each ``explain_*`` function computes with the NumPy reference code, checks the
result against PyTorch autograd (float64) on the spot, and returns an ``Explanation``: the numbers
(``values``), the checks, and a document that renders to either format.

* ``bn_forward`` / ``bn_backward`` — Ioffe & Szegedy (2015), Algorithm 1 and section 3;
* ``conv_matrix`` — convolution as ``y = A x``; backward ``A^T g`` = transposed convolution
  (Dumoulin & Visin 2016, section 4);
* ``graph`` — backprop through a small scalar network (``reference.autodiff``);
* ``collapse`` — stacked linear layers without nonlinearity are one affine map;
* ``activation`` — derivative identities of the activations.

One module per worked example; ``document`` holds the document model and its renderers, ``inputs``
the parsing of numbers from strings and JSON, and ``run`` runs an example by name from plain values
merged over a JSON file (``run_example("bn-forward", "x.json", x="1,2;3,4")``), as ``ablab explain`` does.
"""

from ablab.reference.explain.activation import ACTIVATION_NAMES, activation
from ablab.reference.explain.bn_backward import bn_backward
from ablab.reference.explain.bn_forward import bn_forward
from ablab.reference.explain.collapse import collapse
from ablab.reference.explain.conv_matrix import MAX_ENTRIES, MAX_PRINT, ConvConfig, conv_matrix
from ablab.reference.explain.document import TOL, ExplainError, Explanation
from ablab.reference.explain.graph import graph
from ablab.reference.explain.inputs import as_array, parse_matrix, parse_vector
from ablab.reference.explain.run import run_example

__all__ = ["ACTIVATION_NAMES", "MAX_ENTRIES", "MAX_PRINT", "TOL", "ConvConfig", "ExplainError", "Explanation",
           "activation", "as_array", "bn_backward", "bn_forward", "collapse", "conv_matrix", "graph", "parse_matrix",
           "parse_vector", "run_example"]
