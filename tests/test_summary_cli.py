"""``ablab summary`` through click's CliRunner: the table, --json, --explain, the conventions flags, spec files,
bad input (exit 2, one clear line, no traceback), and no torch import on the spec path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ablab.cli import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["summary", *args])
    return result.exit_code, result.output


def test_table_with_totals_and_conventions() -> None:
    code, out = run("lenet5", "--input", "1x28x28")
    assert code == 0, out
    assert "conv2d_1" in out and "linear_3" in out
    assert "Parameters: 61,706 (61,706 trainable)" in out
    assert "MACs: 416,520   FLOPs: 833,040" in out
    assert "Conventions: MAC = 1 multiply + 1 add; FLOPs = 2*MACs" in out
    assert "Inference peak: 284,456 B" in out


def test_json_schema_and_values() -> None:
    code, out = run("lenet5", "--input", "1x28x28", "--json", "--batch", "4", "--optimizer", "adam")
    assert code == 0, out
    d = json.loads(out)
    assert [row["name"] for row in d["layers"]][:3] == ["conv2d_1", "tanh_1", "avgpool2d_1"]
    row = d["layers"][0]
    assert row["output_shape"] == [6, 28, 28] and row["params"] == 156 and row["macs"] == 4 * 117_600
    assert row["flops"] == 2 * 4 * 117_600 and row["activation_bytes"] == 4 * 4_704 * 4
    assert row["receptive_field"] == {"size": [5, 5], "stride": [1, 1], "start": [-2, -2]}
    t = d["totals"]
    assert (t["params"], t["trainable_params"], t["macs"], t["flops"]) == (61_706, 61_706, 4 * 416_520, 8 * 416_520)
    assert t["training_bytes"] == (784 + 8_084) * 4 * 4 + 61_706 * 4 * 4  # input + kept for backward + ...
    assert d["conventions"] == {"dot": "2n", "bias": False, "pooling": False, "activation": 0, "norm": False}
    assert d["batch"] == 4 and d["optimizer"] == "adam" and d["warnings"] == []


def test_convention_flags() -> None:
    _, out = run("lenet5", "--json", "--dot", "2n-1", "--bias-flops", "--pool-flops", "--act-flops", "1")
    d = json.loads(out)
    # 2n-1 + bias = 2n; avg pool 4 per output on 1,576 outputs; tanh on 6,508 elements
    assert d["totals"]["flops"] == 833_040 + 4 * 1_576 + 6_508
    _, text = run("lenet5", "--bias-flops")
    assert "bias adds counted (1/output)" in text


def test_explain_prints_worked_formulas() -> None:
    code, out = run("lenet5", "--explain")
    assert code == 0
    assert "H: floor((28 + 2 + 2 - 1*(5-1) - 1) / 1) + 1 = 28" in out
    assert "MACs = 6*28*28 outputs * (1/1)*5*5 per output = 4,704 * 25 = 117,600" in out
    assert "training = (input 3,136 + kept for backward 32,336) + params 246,824" in out


def test_spec_string_file_and_json_file(tmp_path: Path) -> None:
    text = "input(3,32,32)  # CIFAR\nconv(6,5) relu maxpool(2) conv(16,5) relu maxpool(2)\n" \
           "flatten linear(120) relu linear(84) relu linear(10)\n"
    (tmp_path / "net.txt").write_text(text)
    code, out = run(str(tmp_path / "net.txt"), "--json")
    assert code == 0, out
    assert json.loads(out)["totals"]["params"] == 62_006 and json.loads(out)["model"] == "net"
    spec = {"input": [1, 28, 28], "layers": [{"kind": "flatten"}, {"kind": "linear", "out_features": 10}]}
    (tmp_path / "net.json").write_text(json.dumps(spec))
    code, out = run(str(tmp_path / "net.json"), "--json")
    assert code == 0 and json.loads(out)["totals"]["params"] == 7_850
    code, out = run("flatten linear(10)", "--input", "784", "--json")
    assert code == 0 and json.loads(out)["totals"]["macs"] == 7_840


@pytest.mark.parametrize(("args", "message"), [
    (["conv(6,5", "--input", "1x28x28"], "spec:1:9: expected ',' or ')', got end of spec"),
    (["conv(6,5) rleu", "--input", "1x28x28"], "unknown layer 'rleu'; did you mean 'relu'?"),
    (["conv(6,5) maxpol(2)", "--input", "1x28x28"], "did you mean 'maxpool'?"),
    (["conv(6,5) relu", "--input", "1x4x4"], "layer 1 (conv2d_1): the (dilated) kernel 5x5 is larger than its "
                                             "padded input 4x4 (input 1x4x4)"),
    (["lenet5", "--input", "1x8x8"], "layer 4 (conv2d_2)"),
    (["lenet5", "--input", "axb"], "error: --input 'axb': expected positive integers"),
    (["conv(6,5)"], "no input shape: give --input (e.g. 1x28x28)"),
    (["nets/missing.json"], "nets/missing.json: no such spec file"),
    (["conv(6,5,strid=2)", "--input", "1x28x28"], "unknown argument 'strid'; did you mean 'stride'?"),
])
def test_bad_input_exits_2_with_one_clear_message(args: list[str], message: str) -> None:
    code, out = run(*args)
    assert code == 2
    assert out.startswith("error: ")
    assert message in out
    assert "Traceback" not in out


def test_bad_flag_values_are_usage_errors() -> None:
    code, out = run("lenet5", "--dtype", "int3")
    assert code == 2 and "Invalid value for '--dtype'" in out
    code, out = run("lenet5", "--batch", "0")
    assert code == 2 and "--batch" in out


def test_help_has_an_example() -> None:
    code, out = run("--help")
    assert code == 0 and "Example:" in out and "ablab summary lenet5 --input 1x28x28" in out


NO_TORCH = """
import sys
from ablab.cli import cli
for args in ({args}):
    try:
        cli.main(args=list(args), prog_name="ablab", standalone_mode=False)
    except SystemExit:
        pass
from ablab.sizeup import summary
summary("lenet5").render(explain=True)
print("torch" in sys.modules)
"""


def test_spec_path_does_not_import_torch() -> None:
    argsets = repr([["summary", "lenet5", "--input", "1x28x28"], ["summary", "--help"],
                    ["summary", "cifar-lenet", "--json", "--explain"]])
    out = subprocess.run([sys.executable, "-c", NO_TORCH.format(args=argsets)], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
