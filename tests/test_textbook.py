"""The course's questions, answered through the CLI as they are asked (issue 14, item 7): each test runs the
command a student would type and checks the number the textbook's answer gives."""

from __future__ import annotations

import math
import re

from click.testing import CliRunner

from ablab.cli import cli


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return res.exit_code, res.output


def column(text: str, name: str) -> list[float]:
    """The numbers of a printed column vector ``name =`` (one ``[ v ]`` line per row)."""
    block = text.split(f"\n{name} =\n", 1)[1]
    out = []
    for line in block.splitlines():
        m = re.fullmatch(r"\s*\[\s*(\S+)\s*\]\s*", line)
        if not m:
            break
        out.append(float(m.group(1)))
    return out


def test_bn_forward_with_eps_zero_gives_the_textbook_normalization():
    # x = 1, 2, 3, 4: mean 2.5, biased variance 1.25, so x_hat = (x - 2.5)/sqrt(1.25) = ±3/√5, ±1/√5 exactly
    code, out = run("explain", "bn-forward", "--x", "1;2;3;4", "--gamma", "1", "--beta", "0", "--eps", "0")
    assert code == 0, out
    assert "eps = 0, as in the textbook exercise: allowed because every feature's batch variance is non-zero" in out
    expected = [-3 / math.sqrt(5), -1 / math.sqrt(5), 1 / math.sqrt(5), 3 / math.sqrt(5)]
    assert all(abs(a - b) < 5e-6 for a, b in zip(column(out, "x_hat"), expected, strict=True))
    assert "-0.447214" in out  # with the default eps = 1e-5 it would print -0.447212
    assert "check: y against torch.nn.functional.batch_norm" in out and " ok" in out


def test_bn_with_eps_zero_and_a_constant_feature_says_why():
    code, out = run("explain", "bn-forward", "--x", "1,5;2,5;3,5;4,5", "--eps", "0")
    assert code == 2
    assert out.startswith("error: --eps: 0 needs every feature's batch variance to be non-zero, but feature 2")
    assert "would be 0/0" in out and "Traceback" not in out
    code, out = run("explain", "bn-backward", "--x", "1,5;2,5;3,5;4,5", "--eps", "0")
    assert code == 2 and "feature 2" in out
    code, out = run("explain", "bn-forward", "--x", "1;2;3;4", "--eps", "-1")
    assert code == 2 and "--eps: expected a number >= 0" in out


def test_bn_backward_with_eps_zero():
    # dx = (N dy - sum dy - x_hat * sum(dy * x_hat)) / (N sigma); dy = e_1, sigma = sqrt(1.25), N = 4
    code, out = run("explain", "bn-backward", "--x", "1;2;3;4", "--dy", "1;0;0;0", "--gamma", "1", "--beta", "0",
                    "--eps", "0")
    assert code == 0, out
    xh = [-3 / math.sqrt(5), -1 / math.sqrt(5), 1 / math.sqrt(5), 3 / math.sqrt(5)]
    dy = [1.0, 0.0, 0.0, 0.0]
    s = sum(d * x for d, x in zip(dy, xh, strict=True))
    expected = [(4 * d - 1 - x * s) / (4 * math.sqrt(1.25)) for d, x in zip(dy, xh, strict=True)]
    got = column(out, "dx")
    assert all(abs(a - b) < 1e-6 for a, b in zip(got, expected, strict=True)), (got, expected)
    assert "check: dx against torch autograd" in out


def test_summary_explain_prints_weight_shapes_in_both_conventions():
    code, out = run("summary", "lenet5", "--explain")
    assert code == 0, out
    # LeNet-5's first fully connected layer: 400 -> 120
    assert "weight shape: PyTorch (out, in) = (120, 400); X·W textbook (in, out) = (400, 120)" in out
    assert ("weight shape: PyTorch (out, in, kH, kW) = (6, 1, 5, 5); X·W textbook (kH, kW, in, out) = (5, 5, 1, 6)"
            in out)
    assert out.count("bias shape: (120,) in both conventions") == 1


def test_bytes_in_decimal_mb_beside_mib():
    # 784-1000-10 MLP: 795,010 parameters * 4 B = 3,180,040 B: "about 3.18 MB" (3.03 MiB)
    code, out = run("summary", "mlp:1000,10", "--input", "1x28x28")
    assert code == 0, out
    assert "Parameters: 795,010 (795,010 trainable) = 3.03 MiB = 3.18 MB" in out
    code, out = run("summary", "mlp:1000,10", "--input", "1x28x28", "--explain")
    assert "= 3,180,040 B (3.03 MiB = 3.18 MB)" in out


def test_output_to_input_size_ratio_of_a_stack():
    # two stride-2 convolutions take 3x32x32 (3,072 values) to 16x8x8 (1,024): a third of the input's size
    code, out = run("summary", "conv(8,3,s=2,p=1) relu conv(16,3,s=2,p=1)", "--input", "3x32x32")
    assert code == 0, out
    assert "Output/input size: 16x8x8 / 3x32x32 = 1,024 / 3,072 elements = 0.3333" in out


def test_conv_matrix_prints_a_transposed_and_1d_index_formulas():
    # kernel 3 over a length-4 signal: A is the 2 x 4 band matrix, A^T its 4 x 2 transpose
    code, out = run("explain", "conv-matrix", "--layer", "conv1d(1,3)", "--input", "1x4")
    assert code == 0, out
    at = out.split("\nA^T =\n", 1)[1].split("\n\n", 1)[0]
    rows = [re.sub(r"\s+", " ", line.strip()[1:-1].strip()) for line in at.splitlines()]
    assert rows == ["w[0,0,0] 0", "w[0,0,1] w[0,0,0]", "w[0,0,2] w[0,0,1]", "0 w[0,0,2]"]
    assert "y[o, i] = sum_c sum_(k=0..2) w[o, c, k] * x[c, 1*i + 1*k - 0],   i = 0..1" in out
    code, out = run("explain", "conv-matrix", "--layer", "conv1d(1,2,s=2,p=1)", "--input", "1x5")
    assert code == 0, out
    assert "x[c, 2*i + 1*k - 1]" in out and "A^T (numbers) =" in out
