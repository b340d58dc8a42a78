"""Fuzzing the study-file loader: random bytes and random structured garbage (real keys with wrong,
huge, non-finite or nested values) never give a traceback — the CLI answers with exit 0 (a valid study)
or one ``error:`` and exit 2 — and each input is handled in bounded time (issue 13, "Done when").

Under CI=true hypothesis is derandomized (tests/conftest.py), so a CI failure replays locally."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ablab.cli import cli
from ablab.errors import UserError
from ablab.study.studyfile import STUDY_KEYS, parse_study
from ablab.train.config import FIELDS

SECONDS = 10.0  # per input, generous for a loaded machine; a valid study's dry run takes ~0.1 s

names = st.sampled_from([*STUDY_KEYS, *FIELDS, "use", "description", "baseline", "x", ""]) | st.text(max_size=12)
scalars = (st.integers(min_value=-(2**80), max_value=2**80) | st.sampled_from([0, 1, 3, 10**7, 2**63 - 1])
           | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.text(max_size=20)
           | st.sampled_from(["lenet5", "mlp:8,10", "conv(6,", "synthetic:n=abc", "synthetic:n=50", "fashion-mnist",
                              "cifar10", "adam", "test_acc", "best_val_acc", "mlp:-5,10", "linear(" + "9" * 40 + ")"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(names, inner, max_size=3), max_leaves=8)


def toml_str(s: str) -> str:
    """A TOML basic string: control characters, quotes and backslashes escaped, everything else raw."""
    return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or c in '"\\\x7f' else c for c in s) + '"'


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{toml_str(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


tables = st.fixed_dictionaries({}, optional={
    "study": st.dictionaries(st.sampled_from(list(STUDY_KEYS)) | names, values, max_size=5),
    "base": st.dictionaries(st.sampled_from(list(FIELDS)) | names, values, max_size=5),
    "variants": st.dictionaries(names, st.dictionaries(names, values, max_size=3) | values, max_size=3),
    "grid": st.dictionaries(st.sampled_from(list(FIELDS)) | names, st.lists(values, max_size=4) | values, max_size=3),
})


def study_text(doc: dict[str, Any]) -> str:
    lines = []
    for table, body in doc.items():
        lines.append(f"[{table}]")
        lines += [f"{toml_str(k)} = {toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def _check_cli(tmp_path_factory: Any, data: bytes) -> None:
    f = tmp_path_factory.mktemp("fuzz") / "study.toml"
    f.write_bytes(data)
    t0 = time.perf_counter()
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--dry-run", "--no-measure", "--out",
                                   str(f.parent / "out")])
    assert time.perf_counter() - t0 < SECONDS
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 2), res.output
    if res.exit_code == 2:
        assert res.output.startswith("error: ") and "Traceback" not in res.output, res.output


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(tmp_path_factory, data):
    _check_cli(tmp_path_factory, data)


@FUZZ
@given(doc=tables)
def test_structured_garbage_through_the_cli(tmp_path_factory, doc):
    _check_cli(tmp_path_factory, study_text(doc).encode())


@settings(max_examples=100, deadline=None)
@given(doc=tables)
def test_structured_garbage_through_the_parser(doc):
    """The library entry point: a Study or a UserError, nothing else."""
    t0 = time.perf_counter()
    with contextlib.suppress(UserError):
        parse_study(study_text(doc), source="fuzz.toml")
    assert time.perf_counter() - t0 < SECONDS
