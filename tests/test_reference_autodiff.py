"""The scalar autodiff against float64 torch (micrograd's own test), Mazur's published numbers, and
graph-file errors that name the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ablab.reference.autodiff import (
    MAZUR_EXAMPLE,
    GraphError,
    Value,
    evaluate,
    load_graph,
    parse_graph_json,
    parse_graph_text,
)


def test_value_matches_torch_on_a_mixed_expression() -> None:
    def f(a, b):  # noqa: ANN001, ANN202
        c = a * b + b**3 - a / b
        d = (c * 0.5).tanh() + (-a).sigmoid() * 2.0 if isinstance(a, Value) else \
            torch.tanh(c * 0.5) + torch.sigmoid(-a) * 2.0
        e = (d.exp() if isinstance(d, Value) else torch.exp(d)) + (b.relu() if isinstance(b, Value) else torch.relu(b))
        return (e.log() if isinstance(e, Value) else torch.log(e)) * (1 - a)

    a, b = Value(-1.5), Value(2.0)
    out = f(a, b)
    out.backward()
    at = torch.tensor(-1.5, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    ot = f(at, bt)
    ot.backward()
    assert abs(out.data - ot.item()) < 1e-12
    assert abs(a.grad - at.grad.item()) < 1e-12
    assert abs(b.grad - bt.grad.item()) < 1e-12


def test_mazur_published_numbers() -> None:
    """Mazur (2015): E_total = 0.298371109, dE/dw5 = 0.082167041, dE/dw1 = 0.000438568."""
    ev = evaluate(parse_graph_text(MAZUR_EXAMPLE, "mazur"))
    assert round(ev.values["E"], 9) == 0.298371109
    assert round(ev.grads["w5"], 9) == 0.082167041
    assert round(ev.grads["w1"], 9) == 0.000438568
    assert round(ev.values["out_h1"], 9) == 0.593269992
    assert ev.paths("w5") == [["w5", "net_o1", "out_o1", "E"]]
    assert len(ev.paths("w1")) == 2


def test_json_form_with_loss_kind_equals_text_form(tmp_path: Path) -> None:
    data = {
        "inputs": {"x": 1.5}, "weights": {"w": -0.5, "b": 0.25}, "targets": {"t": 1.0},
        "nodes": {"z": "w*x + b", "o": "sigmoid(z)"},
        "loss": {"kind": "bce", "outputs": ["o"], "targets": ["t"]},
    }
    p = tmp_path / "g.json"
    p.write_text(json.dumps(data))
    ev = evaluate(load_graph(p))
    # by hand: BCE with a sigmoid output has dL/dz = o - t, so dL/dw = (o - t) x
    o = ev.values["o"]
    assert abs(ev.grads["w"] - (o - 1.0) * 1.5) < 1e-12
    assert abs(ev.grads["b"] - (o - 1.0)) < 1e-12


@pytest.mark.parametrize("text, message", [
    ("weight w = 1\ny = w * q", r"g:2: unknown name 'q'"),
    ("weight w = 1\ny = __import__('os')", r"g:2: only one-argument calls"),
    ("weight w = 1\ny = w.real", r"g:2: Attribute not allowed"),
    ("weight w = 1\ny = w ** w", r"g:2: exponents must be numbers"),
    ("weight w = abc\ny = w", r"g:1: weight 'w' must be a number"),
    ("weight w = 1\nweight w = 2\ny = w", r"g:2: 'w' is defined twice"),
    ("input x = 1\ny = x", r"no weights"),
    ("weight w = 1\nthis is not a line", r"g:2: expected 'input\|weight\|target"),
    ("weight w = 1\ny = log(w - 1)", r"log of a non-positive number"),
])
def test_graph_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(GraphError, match=message):
        evaluate(parse_graph_text(text, "g"))


def test_json_errors_name_the_key() -> None:
    with pytest.raises(GraphError, match="unknown key"):
        parse_graph_json({"weights": {"w": 1}, "nodes": {}, "extra": 1}, "f.json")
    with pytest.raises(GraphError, match="f.json: weights.w: weight 'w' must be a finite number"):
        parse_graph_json({"weights": {"w": "x"}, "nodes": {"y": "w"}}, "f.json")
