"""The new doors of issue 21 tried as an attacker would: eval --data/--split/--per-class, predict(), the
recorded confusion matrix, the tensorboard and kernels keys — each ends in one error line (exit 2) or a
correct answer, never a traceback."""

from __future__ import annotations

import json
import shutil
import sqlite3

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ablab
from ablab.cli import cli
from ablab.errors import UserError
from ablab.report.analysis import analyze
from ablab.study.executor import InlineExecutor
from ablab.study.runner import run_study
from ablab.study.studyfile import parse_study
from ablab.train import TrainConfig, fit

DATA = "synthetic:n=200,test=100,shape=1x8x8,classes=3"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck")
    fit(TrainConfig(model="mlp:8,3", dataset=DATA, epochs=1, batch_size=32), out_dir=out)
    return out / "checkpoint"


@pytest.mark.parametrize("args, says", [
    (["--data", "npz:/nonexistent/x.npz"], "x.npz"),
    (["--data", "no-such-dataset"], "no-such-dataset"),
    (["--data", DATA.replace("1x8x8", "1x9x9")], "9x9"),
    (["--data", DATA.replace("classes=3", "classes=2")], "classes"),
    (["--data", "synthetic:n=-5"], "synthetic"),
    (["--data", "folder:"], "folder"),
    (["--data", "npz:BAD"], "BAD"),
    (["--split", "holdout"], "holdout"),
    (["--data", "synthetic:n=10,test=1e99"], "test"),
])
def test_eval_refuses_bad_data_in_one_line(ckpt, tmp_path, args, says):
    (tmp_path / "BAD").write_bytes(b"PK\x03\x04 not really a zip")
    res = CliRunner().invoke(cli, ["eval", str(ckpt), *[a.replace("npz:BAD", f"npz:{tmp_path / 'BAD'}")
                                                        for a in args]])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and says in res.output
    assert len([line for line in res.output.splitlines() if line.lower().startswith("error")]) == 1


@pytest.mark.parametrize("x, says", [
    ("a string", "NumPy array"),
    ([[1, 2]], "NumPy array"),
    (np.array(["a", "b"]), "numbers"),
    (torch.zeros(2, 1, 8, 8, dtype=torch.complex64), "complex"),
    (torch.zeros(2, 1, 8, 8, dtype=torch.bool), "bool"),
    (torch.zeros(2, 1, 8, 8).to_sparse(), "sparse"),
    (torch.zeros(2, 2, 8, 8), "1x8x8"),
    (torch.zeros(8), "1x8x8"),
    (torch.zeros(2, 1, 8, 8, dtype=torch.int64), "uint8"),
])
def test_predict_refuses_bad_inputs_in_one_error(ckpt, x, says):
    with pytest.raises(UserError, match=says):
        ablab.predict(ckpt, x)


def test_predict_edge_inputs_are_answered(ckpt):
    assert ablab.predict(ckpt, torch.zeros(0, 1, 8, 8)).shape == (0,)
    p = ablab.predict(ckpt, torch.full((2, 1, 8, 8), 255, dtype=torch.uint8))
    assert p.shape == (2, 3) and torch.allclose(p.sum(1), torch.ones(2))
    with pytest.raises(UserError, match="checkpoint folder or an nn.Module"):
        ablab.predict(42, torch.zeros(1, 1, 8, 8))
    with pytest.raises(UserError):
        ablab.predict(ckpt.parent / "missing", torch.zeros(1, 1, 8, 8))


STUDY = f"""\
[study]
name = "h"
seeds = 1

[base]
model = "mlp:8,3"
dataset = "{DATA}"
epochs = 1

[variants.baseline]
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("st")
    run_study(parse_study(STUDY, source="h.toml"), out, executor=InlineExecutor())
    return out


@pytest.mark.parametrize("value", [
    [], [[1]], [[1, 2, 3]] * 2, [[-1, 0, 0], [0, 0, 0], [0, 0, 0]], [["1", 0, 0]] * 3, [[1.5, 0, 0]] * 3,
    [[True, 0, 0]] * 3, [[0, 0, 0]] * 3, [[10 ** 12, 0, 0], [0, 0, 0], [0, 0, 0]], "matrix", {"a": 1},
])
def test_an_edited_confusion_matrix_is_one_error(study, tmp_path, value):
    copy = tmp_path / "c"
    shutil.copytree(study, copy)
    con = sqlite3.connect(copy / "study.sqlite")
    rid, text = con.execute("SELECT id, result_json FROM runs LIMIT 1").fetchone()
    doc = json.loads(text)
    doc["test_confusion"] = value
    con.execute("UPDATE runs SET result_json = ? WHERE id = ?", (json.dumps(doc), rid))
    con.commit()
    con.close()
    with pytest.raises(UserError, match="edited or (is )?corrupt"):
        analyze(copy)
    res = CliRunner().invoke(cli, ["study", "report", str(copy)])
    assert res.exit_code == 2 and "Traceback" not in res.output


@pytest.mark.parametrize("line, says", [
    ('tensorboard = 1', "true or false"), ('tensorboard = "true"', "true or false"),
    ('tensorboard = [true]', "true or false"),
])
def test_the_tensorboard_key_is_typed(line, says):
    with pytest.raises(UserError, match=says):
        parse_study(STUDY.replace('seeds = 1', f'seeds = 1\n{line}'), source="h.toml")


@pytest.mark.parametrize("value", ["fast", "", "COMPILED", "auto", 1, True, None])
def test_the_kernels_field_takes_its_three_values_only(value):
    with pytest.raises(UserError, match="kernels"):
        TrainConfig(kernels=value)
