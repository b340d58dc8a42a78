"""A store whose JSON columns were edited or corrupted: `runs ls`, the report's analysis and `study compare`
give one error line (exit 2) or a correct answer — never a traceback (issue: trust, item 8)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ablab.cli import cli
from ablab.study.executor import InlineExecutor
from ablab.study.runner import run_study
from ablab.study.studyfile import parse_study

CI = os.environ.get("CI") == "true"  # CI replays the examples checked here; a developer run explores new ones

STUDY = ('[study]\nname = "fz"\nseeds = 2\n[base]\nmodel = "mlp:8,10"\ndataset = "synthetic:n=64,test=32"\n'
         "epochs = 2\n[variants.baseline]\n[variants.wide]\nmodel = \"mlp:16,10\"\n")
COLUMNS = [("runs", "config_json"), ("runs", "point_json"), ("runs", "result_json"), ("runs", "versions_json"),
           ("runs", "diverged_json"), ("studies", "info_json"), ("epochs", "extra_json")]

_leaves = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=5)
json_values = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
payloads = st.one_of(json_values.map(json.dumps), st.text(max_size=20), st.just("{"), st.just('{"a": '))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("fz") / "study"
    run_study(parse_study(STUDY, source="fz.toml"), out, executor=InlineExecutor())
    return out


@settings(max_examples=120, deadline=None, derandomize=CI,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(COLUMNS), payload=payloads)
def test_corrupt_json_columns_never_traceback(finished, tmp_path_factory, column, payload):
    out = tmp_path_factory.mktemp("copy") / "study"
    shutil.copytree(finished, out)
    table, name = column
    db = sqlite3.connect(out / "study.sqlite")
    db.execute(f"UPDATE {table} SET {name} = ? WHERE rowid = (SELECT MIN(rowid) FROM {table})", (payload,))
    db.commit()
    db.close()
    for args in (["runs", "ls", str(out)], ["study", "compare", str(out), str(out)]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code in (0, 1, 2) and "Traceback" not in res.output, (args, res.output)
        assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), (
            args, repr(res.exception), res.output)
    from ablab.errors import UserError
    from ablab.report.analysis import analyze
    from ablab.report.terminal import report_view

    with contextlib.suppress(UserError):
        report_view(analyze(out))


KEYS = {("studies", "info_json"): ["cells", "comparisons", "variants", "seeds", "base", "grid", "confidence",
                                   "metric", "baseline"],
        ("runs", "result_json"): ["info", "final", "fingerprint", "status", "seeds", "versions", "wall_time_s"],
        ("runs", "config_json"): ["model", "dataset", "model_args", "epochs", "seed"]}


@settings(max_examples=120, deadline=None, derandomize=CI,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(sorted(KEYS)), data=st.data(), value=json_values)
def test_wrong_shapes_inside_json_columns_never_traceback(finished, tmp_path_factory, column, data, value):
    """The columns stay valid JSON objects, but a key ablab reads holds something else."""
    from ablab.errors import UserError
    from ablab.report.analysis import analyze
    from ablab.report.terminal import report_view

    key = data.draw(st.sampled_from(KEYS[column]))
    out = tmp_path_factory.mktemp("copy") / "study"
    shutil.copytree(finished, out)
    table, name = column
    db = sqlite3.connect(out / "study.sqlite")
    rowid, text = db.execute(f"SELECT rowid, {name} FROM {table} ORDER BY rowid LIMIT 1").fetchone()
    doc = json.loads(text)
    doc[key] = value
    db.execute(f"UPDATE {table} SET {name} = ? WHERE rowid = ?", (json.dumps(doc), rowid))
    db.commit()
    db.close()
    res = CliRunner().invoke(cli, ["runs", "ls", str(out)])
    assert "Traceback" not in res.output and (res.exception is None or isinstance(res.exception, SystemExit)), (
        repr(res.exception), res.output)
    with contextlib.suppress(UserError):
        report_view(analyze(out))
