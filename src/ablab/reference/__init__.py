"""NumPy reference layers with hand-written backward passes, and the tools that check them.

Every layer is a pair of functions: ``forward(x, ...) -> (y, cache)`` and ``backward(dy, cache) ->
grads``, where ``grads`` is a dict keyed by the name of each differentiable input (``"x"``, ``"w"``,
``"b"``, ``"gamma"``, ...). All arrays are float64. The layers import only NumPy; PyTorch appears only
where it is the oracle (``gradcheck``, ``checks``, ``explain``, ``model.compare_with_torch``).

Modules, one concept each:

* ``linear``, ``conv`` (im2col and the explicit matrix ``y = A x``), ``pool``, ``batchnorm``,
  ``dropout``, ``activations``, ``losses`` — the layers;
* ``gradcheck`` — the one helper comparing a layer with torch autograd and with finite differences;
* ``checks`` — the registered cases that ``ablab check`` and the tests run;
* ``model`` — a pure-NumPy network built from a ``Spec``, trained with plain SGD;
* ``autodiff`` — a micrograd-sized scalar autodiff for by-hand backprop exercises;
* ``explain`` — worked examples as text and Markdown/LaTeX.
"""
