"""Every ``ablab explain`` subcommand: its printed numbers against an independent computation (torch
autograd or a case done by hand), its Markdown form, and its errors (exit 2); ``ablab check``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from ablab.cli import cli

RTOL = 1e-5  # numbers are printed with 6 significant digits


def run(*args: str, code: int = 0) -> str:
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == code, res.output
    return res.output


def grab(out: str, name: str) -> np.ndarray:
    """The numbers printed as ``name = [a, b]``, ``name = a`` or ``name =`` followed by matrix rows."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line == f"{name} =":
            rows = []
            for row in lines[i + 1:]:
                if not row.startswith("  ["):
                    break
                rows.append([float(v) for v in row.strip()[1:-1].split()])
            return np.array(rows)
        if line.startswith(f"{name} = "):
            rest = line[len(name) + 3:]
            return np.array([float(v) for v in rest.strip("[]").split(", ")])
    raise AssertionError(f"{name!r} not printed:\n{out}")


def close(printed: np.ndarray, expected: np.ndarray | torch.Tensor) -> None:
    exp = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    np.testing.assert_allclose(printed.reshape(exp.shape), exp, rtol=RTOL, atol=1e-6)


X = [[1.0, 2.0], [3.0, 5.0], [-2.0, 0.5]]
XS = "1,2;3,5;-2,0.5"


def test_bn_forward_numbers_against_torch() -> None:
    out = run("explain", "bn-forward", "--x", XS, "--gamma", "2,0.5", "--beta", "1,-1", "--eps", "0.001")
    x = torch.tensor(X, dtype=torch.float64)
    close(grab(out, "mu"), x.mean(0))
    close(grab(out, "var"), x.var(0, unbiased=False))
    rm, rv = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    y = F.batch_norm(x, rm, rv, torch.tensor([2.0, 0.5], dtype=torch.float64),
                     torch.tensor([1.0, -1.0], dtype=torch.float64), True, 0.1, 1e-3)
    close(grab(out, "y"), y)
    close(grab(out, "running_var"), rv)
    assert "mu_1 = (1 + 3 + (-2)) / 3 = 0.666667" in out  # the arithmetic is shown
    assert "FAILED" not in out


def test_bn_forward_by_hand() -> None:
    """x = [[0], [2]], eps -> 0: mu = 1, var = 1, x_hat = [-1, 1] (to ~1e-6 with eps=1e-12)."""
    out = run("explain", "bn-forward", "--x", "0;2", "--eps", "1e-12")
    close(grab(out, "mu"), [1.0])
    close(grab(out, "var"), [1.0])
    close(grab(out, "x_hat"), [[-1.0], [1.0]])


def test_bn_backward_every_intermediate_against_autograd(tmp_path: Path) -> None:
    dy = [[0.5, -1.0], [0.25, 0.0], [-2.0, 1.0]]
    f = tmp_path / "bn.json"
    f.write_text(json.dumps({"x": X, "gamma": [2.0, 0.5], "beta": [1.0, -1.0], "dy": dy}))
    out = run("explain", "bn-backward", "--file", str(f))
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    g = torch.tensor([2.0, 0.5], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    mu = x.mean(0)
    mu.retain_grad()
    var = ((x - mu) ** 2).mean(0)
    var.retain_grad()
    xh = (x - mu) / torch.sqrt(var + 1e-5)
    xh.retain_grad()
    ((g * xh + b) * torch.tensor(dy, dtype=torch.float64)).sum().backward()
    close(grab(out, "dgamma"), g.grad)
    close(grab(out, "dbeta"), b.grad)
    close(grab(out, "dx_hat"), xh.grad)
    close(grab(out, "dvar"), var.grad)
    close(grab(out, "dmu"), mu.grad)
    close(grab(out, "dx"), x.grad)
    assert out.count("against torch autograd") == 6 and "FAILED" not in out


def test_conv_matrix_symbolic_and_numbers() -> None:
    out = run("explain", "conv-matrix", "--layer", "conv(1,2)", "--input", "1x3x3")
    a_rows = [line for line in out.splitlines() if line.startswith("  [ ") and "w[" in line]
    # by hand: row (0,0) of A reads x[0,0], x[0,1], x[1,0], x[1,1] with w[0,0,0,0..1], w[0,0,1,0..1]
    assert a_rows[0].split()[1:-1] == ["w[0,0,0,0]", "w[0,0,0,1]", "0", "w[0,0,1,0]", "w[0,0,1,1]",
                                       "0", "0", "0", "0"]
    w = torch.tensor(grab(out, "w").reshape(1, 1, 2, 2), requires_grad=True)
    x = torch.tensor(grab(out, "x").reshape(1, 1, 3, 3), requires_grad=True)
    g = torch.tensor(grab(out, "g").reshape(1, 1, 2, 2))
    y = F.conv2d(x, w)
    close(grab(out, "y = A x"), y[0])
    (y * g).sum().backward()
    close(grab(out, "A^T g"), x.grad[0])
    close(grab(out, "rot180 conv of g"), F.conv_transpose2d(g, w.detach())[0])
    close(grab(out, "dL/dw"), w.grad.reshape(1, 4))


def test_conv_matrix_from_file_with_stride_padding_groups(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    w, x = rng.normal(size=(4, 1, 2, 2)), rng.normal(size=(2, 3, 4))
    g = rng.normal(size=(4, 2, 3))
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"layer": "conv(4,2,s=(2,1),p=((1,0),(0,0)),g=2)", "input": [2, 3, 4],
                             "w": w.tolist(), "x": x.tolist(), "g": g.tolist()}))
    out = run("explain", "conv-matrix", "--file", str(f), "--digits", "12")
    wt, xt = torch.tensor(w, requires_grad=True), torch.tensor(x[None], requires_grad=True)
    y = F.conv2d(F.pad(xt, (0, 0, 1, 0)), wt, None, (2, 1), 0, 1, 2)
    close(grab(out, "y = A x"), y[0])
    (y * torch.tensor(g[None])).sum().backward()
    close(grab(out, "A^T g"), xt.grad[0])
    close(grab(out, "dL/dw"), wt.grad.reshape(4, 4))
    assert out.count(" ok") == 5


def test_graph_mazur_by_hand_and_sgd_step() -> None:
    out = run("explain", "graph", "--weight", "w5", "--lr", "0.5", "--digits", "12")

    def printed(label: str) -> float:
        m = re.search(rf"^\s*{re.escape(label)} = (\S+)$", out, re.M)
        assert m, f"{label} not printed:\n{out}"
        return float(m.group(1))

    # Mazur (2015), worked by hand to 9 decimals
    assert abs(printed("dE/dout_o1") - 0.741365069) < 1e-9
    assert abs(printed("dout_o1/dnet_o1") - 0.186815602) < 1e-9
    assert abs(printed("dnet_o1/dw5") - 0.593269992) < 1e-9
    assert abs(printed("dL/dw5") - 0.082167041) < 1e-9
    assert abs(float(out.rsplit("= ", 1)[1]) - 0.35891648) < 1e-8  # w5 after one step of lr 0.5


def test_graph_file_against_torch(tmp_path: Path) -> None:
    f = tmp_path / "net.graph"
    f.write_text("input x = 2\nweight w = -0.75\nweight v = 1.5\ntarget t = 0.5\n"
                 "h = tanh(w*x)\no = v*h\nloss L = (o - t)**2\n")
    out = run("explain", "graph", str(f), "--weight", "w", "--digits", "10")
    w = torch.tensor(-0.75, dtype=torch.float64, requires_grad=True)
    v = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    loss = (v * torch.tanh(w * 2.0) - 0.5) ** 2
    loss.backward()
    printed = float(re.search(r"^dL/dw = (\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    assert abs(printed - w.grad.item()) < 1e-9
    printed_v = float(re.search(r"^dL/dv = (\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    assert abs(printed_v - v.grad.item()) < 1e-9


def test_collapse_against_torch(tmp_path: Path) -> None:
    layers = [{"w": [[1, 2], [0, -1], [3, 1]], "b": [1, 0, -1]}, {"w": [[1, 1, 1]], "b": [2]}]
    f = tmp_path / "l.json"
    f.write_text(json.dumps({"layers": layers}))
    out = run("explain", "collapse", "--file", str(f))
    # by hand: W = [1 1 1] @ [[1,2],[0,-1],[3,1]] = [4, 2];  b = [1 1 1] @ [1,0,-1] + 2 = 2
    w_print = grab(out, "W")
    np.testing.assert_allclose(w_print, [[4.0, 2.0]])
    close(grab(out, "b"), [2.0])
    assert "rank(W) = 1" in out


def test_collapse_random_sizes_against_torch() -> None:
    out = run("explain", "collapse", "--sizes", "3,4,4,2", "--seed", "2")
    ws = [grab(out, f"W_{k}") for k in (1, 2, 3)]
    bs = [grab(out, f"b_{k}") for k in (1, 2, 3)]
    net = torch.nn.Sequential(*[torch.nn.Linear(w.shape[1], w.shape[0]).double() for w in ws])
    with torch.no_grad():
        for lin, w, b in zip(net, ws, bs, strict=True):
            lin.weight.copy_(torch.tensor(w))
            lin.bias.copy_(torch.tensor(b))
        eye = torch.eye(3, dtype=torch.float64)
        b_eff = net(torch.zeros(1, 3, dtype=torch.float64))[0]
        w_eff = (net(eye) - b_eff).T  # columns: images of the basis vectors
    lines = out.split("The single affine map")[1]
    close(grab(lines, "W"), w_eff)
    close(grab(lines, "b"), b_eff)


@pytest.mark.parametrize("name, fn", [
    ("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("gelu", F.gelu), ("softplus", F.softplus),
    ("leaky_relu", lambda t: F.leaky_relu(t, 0.2)),
])
def test_activation_values_and_derivatives_against_autograd(name: str, fn) -> None:  # noqa: ANN001
    out = run("explain", "activation", name, "--x", "-1.5,-0.2,0.3,2", "--slope", "0.2")
    x = torch.tensor([-1.5, -0.2, 0.3, 2.0], dtype=torch.float64, requires_grad=True)
    y = fn(x)
    y.sum().backward()
    close(grab(out, "f(x)"), y)
    close(grab(out, "f'(x) by the formula"), x.grad)
    assert "FAILED" not in out


def test_activation_tanh_identity_by_hand() -> None:
    out = run("explain", "activation", "tanh", "--x", "0,1")
    # tanh(0) = 0 = 2 sigma(0) - 1; tanh'(0) = 1
    assert "tanh(x) = 2 sigma(2x) - 1" in out
    close(grab(out, "f'(x) by the formula")[:1], [1.0])
    close(grab(out, "rhs 1"), np.tanh([0.0, 1.0]))


def test_activation_softmax_jacobian() -> None:
    out = run("explain", "activation", "softmax", "--x", "1,2,0.5")
    z = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    close(grab(out, "s"), torch.softmax(z, 0))
    close(grab(out, "J"), torch.autograd.functional.jacobian(lambda t: torch.softmax(t, 0), z))


@pytest.mark.parametrize("args", [
    ["bn-forward"], ["bn-backward"], ["conv-matrix"], ["graph"], ["collapse"], ["activation", "sigmoid"],
])
def test_markdown_has_latex(args: list[str]) -> None:
    out = run("explain", *args, "--format", "markdown")
    assert out.startswith("### ") and "$$" in out and "✅" in out and "❌" not in out


@pytest.mark.parametrize("args, message", [
    (["bn-forward", "--x", "1,2;3"], "--x: row 2 has 1 values, row 1 has 2"),
    (["bn-forward", "--x", "1,2;3,4", "--gamma", "1"], "gamma: expected 2 values"),
    (["bn-forward", "--x", "1,2"], "N >= 2 rows"),
    (["bn-backward", "--x", "1;2", "--dy", "1,2;3,4"], "dy: expected the shape of x"),
    (["conv-matrix", "--layer", "maxpool(2)"], "--layer: expected one conv"),
    (["conv-matrix", "--layer", "conv(1,5)", "--input", "1x3x3"], "larger than its padded input"),
    (["conv-matrix", "--layer", "conv1d(1,2)", "--input", "1x3x3"], "takes a CxL input"),
    (["graph", "--weight", "nope"], "--weight: 'nope' is not a weight"),
    (["collapse", "--sizes", "3,x"], "--sizes: expected integers"),
    (["collapse", "--sizes", "3,2"], "at least 3 positive widths"),
    (["activation", "swish"], "unknown name 'swish'"),
    (["activation", "tanh", "--x", "a,b"], "--x: row 1"),
])
def test_bad_input_exits_2_with_a_message(args: list[str], message: str) -> None:
    res = CliRunner().invoke(cli, ["explain", *args])
    assert res.exit_code == 2, res.output
    assert "error: " in res.output and message in res.output
    assert "Traceback" not in res.output


def test_bad_file_names_the_file_and_key(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{"x": [[1, 2], [3, 4]], "gama": [1, 1]}')
    out = run("explain", "bn-forward", "--file", str(f), code=2)
    assert "bad.json: unknown key(s) gama" in out
    f.write_text('{"x": [[1, 2], [3, 4]],\n "gamma": [1, 1, }')
    out = run("explain", "bn-forward", "--file", str(f), code=2)
    assert "bad.json:2:" in out and "invalid JSON" in out


def test_check_command_table_and_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    out = run("check", "-k", "sigmoid")
    assert "sigmoid" in out and "1 checks, 0 failed" in out
    out = run("check", "-k", "conv1d[im2col", "--all", "--no-fd")
    assert "3 checks, 0 failed" in out

    from ablab.reference import checks
    from ablab.reference.gradcheck import CheckResult

    bad = checks.Case("broken", "deliberately wrong", lambda: CheckResult("x", 1.0))
    checks.CHECKS.register(bad.name, bad)
    try:
        res = CliRunner().invoke(cli, ["check", "-k", "broken"])
    finally:
        checks.CHECKS.unregister(bad.name)
    assert res.exit_code == 1 and "FAILED" in res.output
    res = CliRunner().invoke(cli, ["check", "-k", "no-such-family"])
    assert res.exit_code == 2 and "no check matches" in res.output
