"""Hostile input to the spec, the graph and the worked examples: one ``error:`` line naming the place and
the limit, exit 2, no traceback, bounded time (issue 13, items 3, 9 and 10; issue 11's misreads)."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ablab.cli import cli
from ablab.errors import UserError
from ablab.layers.values import MAX_SIZE
from ablab.models.source import load_spec
from ablab.reference.autodiff import GraphError, evaluate, parse_graph_json, parse_graph_text
from ablab.spec import Spec, SpecError, parse_shape, parse_spec

HUGE = "9" * 400


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def assert_user_error(args: list[str], *needles: str) -> str:
    code, out = run(*args)
    assert code == 2, out
    assert out.startswith("error: ") and "Traceback" not in out, out
    for n in needles:
        assert n in out, out
    return out


# ------------------------------------------------------------------------------- files: UTF-8


def test_spec_file_not_utf8_names_the_byte(tmp_path: Path) -> None:
    f = tmp_path / "net.spec"
    f.write_bytes(b"conv(6,5) relu\n# caf\xe9\nflatten linear(10)\n")
    assert_user_error(["summary", str(f), "--input", "1x28x28"], str(f), "not UTF-8", "byte 0xe9 at byte offset 20")


def test_explain_file_and_graph_file_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "bn.json"
    f.write_bytes(b'{"x": [[1, 2], [3, 4]], "name\xff": 1}')
    assert_user_error(["explain", "bn-forward", "--file", str(f)], "not UTF-8", "byte 0xff at byte offset 29")
    g = tmp_path / "net.graph"
    g.write_bytes(b"weight w = 1\n\xc3\x28 = w\n")
    assert_user_error(["explain", "graph", str(g)], "not UTF-8", "byte offset 13")


# ----------------------------------------------------------------------------- depth and size


def test_deep_parentheses_are_refused_without_recursion() -> None:
    with pytest.raises(SpecError, match="nested deeper than 8 levels"):
        parse_spec("conv(6," + "(" * 1000 + "1" + ")" * 1000 + ")")
    assert_user_error(["summary", "linear(" + "[" * 5000 + "1" + "]" * 5000 + ")", "--input", "4"], "nested deeper")


def test_deep_json_spec_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "deep.json"
    f.write_text('{"layers": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert_user_error(["summary", str(f)], "JSON nested deeper than 32 levels")


def test_a_50k_term_graph_formula_is_a_clear_error() -> None:
    text = "weight w = 0.5\nL = " + " + ".join(["w"] * 50_000) + "\n"
    with pytest.raises(GraphError, match="split it into named steps"):
        parse_graph_text(text)


def test_complex_power_in_a_graph_is_an_error() -> None:
    g = parse_graph_text("weight w = -1\nL = w ** 0.5\n")
    with pytest.raises(GraphError, match="negative number to a fractional power"):
        evaluate(g)


def test_too_many_layers_is_refused_with_the_limit() -> None:
    with pytest.raises(SpecError, match="more than 10 layers"):
        parse_spec("relu " * 11, max_layers=10)


@pytest.mark.parametrize(("args", "needles"), [
    (["summary", f"linear({HUGE})", "--input", "4"], ["digits", f"{MAX_SIZE:,}"]),
    (["summary", f"linear({2**40})", "--input", "4"], ["out_features", f"at most {MAX_SIZE:,}"]),
    (["summary", "lenet5", "--input", f"1x28x{HUGE}"], ["--input", f"at most {MAX_SIZE:,}"]),
    (["summary", f"mlp:{HUGE},10"], ["mlp:", f"between 1 and {MAX_SIZE:,}"]),
    (["summary", "lenet5", "--batch", "1" + "0" * 400], ["--batch: expected a positive integer", f"{MAX_SIZE:,}"]),
    (["summary", "mlp:-5,10"], ["expected positive sizes like mlp:1000,10"]),
    (["summary", "mlp:"], ["expected positive sizes like mlp:1000,10"]),
    (["summary", "lenet5", "--input", "1_0x28x28"], ["--input '1_0x28x28'", "expected positive integers"]),
    (["summary", "conv(6,3,pad=((1.5,1),(1,1)))", "--input", "1x8x8"], ["padding: expected integers"]),
    (["summary", "conv(6,3,pad=((inf,1),(1,1)))", "--input", "1x8x8"], ["padding: expected integers"]),
    (["summary", "linear(10,bias=false,bias=true)", "--input", "4"], ["argument 'bias' given twice"]),
    (["summary", "linear(10,out=3)", "--input", "4"], ["argument 'out_features' given twice"]),
    (["summary", "bn(eps=true)", "--input", "4"], ["eps: expected a positive number, got True"]),
    (["summary", "bn(eps=1e999)", "--input", "4"], ["eps: expected a positive number (finite)"]),
    (["summary", "bn(momentum=false)", "--input", "4"], ["momentum: expected a number in [0, 1]"]),
    (["summary", "dropout(nan)", "--input", "4"], ["p: expected a probability"]),
])
def test_strict_values_one_error_line(args: list[str], needles: list[str]) -> None:
    assert_user_error(args, *needles)


def test_json_spec_layers_must_be_a_list(tmp_path: Path) -> None:
    for bad in ("5", "null", "[]", '"relu"'):
        f = tmp_path / "bad.json"
        f.write_text('{"input": [4], "layers": ' + bad + "}")
        assert_user_error(["summary", str(f)], "'layers' must be a non-empty list")
    f.write_text('{"input": [4], "layers": [{"kind": "bn", "eps": 1e999}]}')
    assert_user_error(["summary", str(f)], "layers[0]", "eps")


def test_conv_matrix_refuses_a_huge_matrix_and_says_how_to_raise_it() -> None:
    out = assert_user_error(["explain", "conv-matrix", "--layer", "conv(1000,3)", "--input", "1000x3x3"],
                            "9,000,000 entries", "limit of 1,000,000", "--max-entries")
    assert "x 9,000" in out
    assert_user_error(["explain", "conv-matrix", "--input", "1x10000x10000"], "limit of 1,000,000")
    code, _ = run("explain", "conv-matrix", "--layer", "conv(2,2)", "--input", "1x5x5", "--max-entries", "1000")
    assert code == 0


@pytest.mark.parametrize(("args", "needles"), [
    (["explain", "conv-matrix", "--seed", "-1"], ["--seed: expected an integer from 0 to 4,294,967,295"]),
    (["explain", "collapse", "--seed", HUGE], ["--seed: expected an integer"]),
    (["explain", "graph", "--lr", "inf"], ["--lr: expected a finite number"]),
    (["explain", "bn-forward", "--eps", "nan"], ["--eps: expected a finite number"]),
])
def test_explain_numbers_are_checked(args: list[str], needles: list[str]) -> None:
    assert_user_error(args, *needles)


def test_collapse_refuses_huge_widths() -> None:
    assert_user_error(["explain", "collapse", "--sizes", "9999,9999,9999"], "--sizes", "199,960,002 weights",
                      "limit of 100,000")
    assert_user_error(["explain", "collapse", "--sizes", "3," + HUGE + ",2"], "--sizes", "expected integers")


# ---------------------------------------------------------------------- misreads (issue 11)


@pytest.mark.parametrize(("text", "form"), [
    ("Conv2d(1,6,5)", "write conv2d(6,5)"),
    ("Conv2d(1, 6, kernel_size=5, stride=2)", "write conv2d(6,5,stride=2)"),
    ("Linear(400,120)", "write linear(120)"),
    ("BatchNorm2d(6)", "write batchnorm"),
    ("GroupNorm(2, 6)", "write groupnorm(2)"),
])
def test_pytorch_constructor_gets_the_ablab_form(text: str, form: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_spec(text)
    assert "is PyTorch's nn." in str(e.value) and form in str(e.value)


def test_pytorch_names_without_input_sizes_still_parse() -> None:
    assert parse_spec("MaxPool2d(2) ReLU Dropout(0.5)").layers == parse_spec("maxpool(2) relu dropout(0.5)").layers


def test_input_given_hxwxc_warns_with_the_likely_cxhxw() -> None:
    code, out = run("summary", "flatten linear(10)", "--input", "28x28x1")
    assert code == 0
    assert "warning: input 28x28x1 looks like HxWxC, but ablab reads CxHxW (28 channels); did you mean 1x28x28?" in out
    _, out = run("summary", "flatten linear(10)", "--input", "12x12x50")
    assert "looks like HxWxC" not in out
    _, out = run("summary", "conv(6,3) flatten linear(10)", "--input", "3x32x32")
    assert "looks like HxWxC" not in out


# ----------------------------------------------------------------------------------- speed


def test_table_of_10000_layers_is_linear() -> None:
    """The table is drawn without rich's per-cell layout: 10,000 layers in well under the 25 s it took."""
    from ablab.calc import render
    from ablab.sizeup import summary

    s = summary("input(8) " + " ".join(["linear(8) relu"] * 5_000))
    t = time.perf_counter()
    text = render.render_text(s)
    took = time.perf_counter() - t
    assert text.count("\n") > 10_000 and " linear_5000 " in text
    assert took < 10.0  # generous: ~0.3 s on a quiet machine (docs/summary.md)
    assert render.rendered_with_rich(s, 120) is False


@pytest.mark.parametrize("width", [120, 100, 80])
@pytest.mark.parametrize("model", ["lenet5", "cifar-lenet", "mlp:1000,10", "input(2,11) conv1d(4,3) relu",
                                   "input(3,7,7) conv(6,3,pad=1) layernorm groupnorm(2) adaptiveavgpool2d(3)"])
def test_the_linear_table_is_rich_s_table_character_for_character(model: str, width: int) -> None:
    """The oracle of the fast layout: rich's own ``Table`` with the same columns, printed alike."""
    import io

    from rich.console import Console

    from ablab.calc import render
    from ablab.sizeup import summary

    s = summary(model)
    lines = render.table_lines(s, width)
    if lines is None:
        pytest.skip("wider than the console: rich folds it")
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False).print(render.table(s, width))
    assert "\n".join(lines) + "\n" == buf.getvalue()


# ------------------------------------------------------------------------------------ fuzz

FUZZ = settings(max_examples=150, deadline=2000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TOKENS = ["conv", "linear", "relu", "(", ")", "[", "]", ",", "=", "->", ">", "|", "pad", "same", "1", "-3",
          "1.5", "1e999", HUGE, "true", "groupnorm", "layernorm", "adaptiveavgpool2d", "input", "#", "\n", " ",
          "Conv2d", "bn", "eps", "x", "é", "\x00"]


def _only_user_errors(fn: object, *args: object) -> None:
    t = time.perf_counter()
    with contextlib.suppress(UserError):
        fn(*args)  # type: ignore[operator]
    assert time.perf_counter() - t < 2.0


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_spec_parser_random_bytes(data: bytes) -> None:
    _only_user_errors(parse_spec, data.decode("utf-8", "replace"))


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_fuzz_spec_parser_structured_garbage(tokens: list[str]) -> None:
    _only_user_errors(parse_spec, "".join(tokens))


@FUZZ
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["kind", "layers", "input", "name", "out_features", "padding", "eps",
                                         "groups", "output_size", "p"]), inner, max_size=4), max_leaves=20))
def test_fuzz_json_specs(data: object) -> None:
    _only_user_errors(Spec.from_dict, data)  # type: ignore[arg-type]
    if isinstance(data, dict):
        _only_user_errors(Spec.from_dict, {"input": [3, 8, 8], "layers": [data]})


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_spec_files(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    d = tmp_path_factory.mktemp("fuzz")
    for name in ("net.spec", "net.json"):
        (d / name).write_bytes(data)
        _only_user_errors(load_spec, str(d / name))


@FUZZ
@given(st.lists(st.sampled_from(["input", "weight", "target", "loss", "x", "w", "L", "=", " ", "\n", "0.5", "-1",
                                 "**", "*", "+", "/", "(", ")", "sigmoid", "log", "exp", "1e308", HUGE, "#",
                                 "lambda", "__import__", "é"]), max_size=50))
def test_fuzz_graph_parser(tokens: list[str]) -> None:
    def parse_and_run(text: str) -> None:
        evaluate(parse_graph_text(text))

    _only_user_errors(parse_and_run, "".join(tokens))


@FUZZ
@given(st.dictionaries(st.sampled_from(["inputs", "weights", "targets", "nodes", "loss", "extra"]),
                       st.none() | st.integers() | st.text(max_size=10) | st.lists(st.text(max_size=6), max_size=3)
                       | st.dictionaries(st.text(max_size=4), st.floats() | st.text(max_size=8), max_size=3),
                       max_size=5))
def test_fuzz_graph_json(data: dict[str, object]) -> None:
    _only_user_errors(lambda d: evaluate(parse_graph_json(d)), data)


def test_shape_parser_limits() -> None:
    assert parse_shape("3x32x32") == (3, 32, 32)
    with pytest.raises(SpecError, match=f"at most {MAX_SIZE:,}"):
        parse_shape(f"1x{MAX_SIZE + 1}")
    with pytest.raises(SpecError, match="expected positive integers"):
        parse_shape("１x28x28")  # full-width digit
    json.dumps(parse_spec("conv(6,5) relu").to_dict())
