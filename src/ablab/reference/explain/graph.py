"""Worked example: backpropagation through a small scalar graph (``ablab.reference.autodiff``)."""

from __future__ import annotations

import math
from typing import Any

from ablab.reference import autodiff
from ablab.reference.explain.document import ExplainError, Explanation


def graph(source: Any = None, weight: str | None = None, lr: float | None = None, digits: int = 6) -> Explanation:
    """Backprop through a scalar graph, shown along every chain from ``weight`` to the loss."""
    import torch


    gr = source if isinstance(source, autodiff.Graph) else autodiff.parse_graph_text(autodiff.MAZUR_EXAMPLE,
                                                                                     "Mazur example")
    ev = autodiff.evaluate(gr)
    weight = weight or next(iter(gr.weights))
    if weight not in gr.weights:
        raise ExplainError(f"weight: '{weight}' is not a weight of the graph (weights: {', '.join(gr.weights)})")
    e = Explanation(f"Backpropagation through a scalar graph: dL/d{weight}, L = {gr.loss}", digits=digits)
    e.para("Chain rule (Rumelhart, Hinton & Williams 1986): dL/dw is the sum over every path from w to L of the "
           "product of the local derivatives along it.")
    e.eq("dL/dw = sum over paths w -> n_1 -> ... -> L of  dL/dn_k * ... * dn_2/dn_1 * dn_1/dw",
         r"\frac{\partial L}{\partial w} = \sum_{w \to n_1 \to \cdots \to n_k \to L} "
         r"\frac{\partial L}{\partial n_k} \cdots \frac{\partial n_2}{\partial n_1} \frac{\partial n_1}{\partial w}")
    e.heading("Forward pass")
    for name, v in gr.leaves.items():
        e.para(f"{name} = {e.num(v)}   ({gr.kind_of(name)})", f"${name} = {e.num(v)}$ ({gr.kind_of(name)})")
    for n in gr.nodes:
        e.para(f"{n.name} = {n.formula} = {e.num(ev.values[n.name])}",
               f"${n.name} = \\texttt{{{n.formula.replace('_', chr(92) + '_')}}} = {e.num(ev.values[n.name])}$")
    e.heading(f"Backward pass for {weight}")
    paths = ev.paths(weight)
    total = 0.0
    for k, path in enumerate(paths, start=1):
        factors = [(path[i + 1], path[i], ev.local[path[i + 1]][path[i]]) for i in range(len(path) - 1)][::-1]
        e.para(f"path {k}: " + " -> ".join(path))
        for top, bottom, val in factors:
            e.para(f"  d{top}/d{bottom} = {e.num(val)}",
                   f"$\\frac{{\\partial {top}}}{{\\partial {bottom}}} = {e.num(val)}$")
        prod = math.prod(v for _, _, v in factors)
        total += prod
        e.para("  product: " + " * ".join(e.num(v) for _, _, v in factors) + f" = {e.num(prod)}",
               "product: $" + r" \times ".join(e.num(v) for _, _, v in factors) + f" = {e.num(prod)}$")
    e.para(f"dL/d{weight} = sum over {len(paths)} path(s) = {e.num(total)}",
           f"$\\frac{{\\partial {gr.loss}}}{{\\partial {weight}}} = {e.num(total)}$ (sum over {len(paths)} path(s))")
    e.check(f"path sum equals backprop's d{gr.loss}/d{weight}", abs(total - ev.grads[weight]) / max(1, abs(total)))
    # the oracle: the same formulas evaluated with torch tensors
    env: dict[str, Any] = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in gr.leaves.items()}
    leaves = dict(env)
    tf = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "exp": torch.exp, "log": torch.log}
    for n in gr.nodes:
        env[n.name] = autodiff.evaluate_formula(n.tree, env, tf)  # type: ignore[arg-type]
    env[gr.loss].backward()
    e.heading("All weight gradients")
    errs = []
    for name in gr.weights:
        gt = leaves[name].grad
        tval = 0.0 if gt is None else float(gt)
        errs.append(abs(tval - ev.grads[name]) / max(1.0, abs(tval)))
        e.para(f"dL/d{name} = {e.num(ev.grads[name])}",
               f"$\\frac{{\\partial {gr.loss}}}{{\\partial {name}}} = {e.num(ev.grads[name])}$")
    e.check("forward loss against torch", abs(env[gr.loss].item() - ev.values[gr.loss]))
    e.check("every weight gradient against torch autograd", max(errs))
    if lr is not None:
        new = gr.weights[weight] - lr * ev.grads[weight]
        e.heading("Gradient descent step")
        e.para(f"{weight} <- {weight} - lr * dL/d{weight} = {e.num(gr.weights[weight])} - {lr:g} * "
               f"{e.num(ev.grads[weight])} = {e.num(new)}")
        e.values["updated"] = new
    e.values.update({"values": ev.values, "grads": ev.grads, "paths": paths, "total": total})
    return e
