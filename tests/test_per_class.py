"""Per-class results: the confusion matrix a run records, eval --per-class / --data / --split, predict(),
and the study report's per-class table and confusion figure."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ablab
from ablab.cli import cli
from ablab.data.load import load_dataset
from ablab.errors import UserError
from ablab.report.analysis import analyze
from ablab.report.stats import t_interval
from ablab.store import Store
from ablab.study.executor import InlineExecutor
from ablab.study.runner import run_study
from ablab.study.studyfile import parse_study
from ablab.train import fit
from ablab.train.config import TrainConfig

DATA = "synthetic:n=400,test=200,shape=1x12x12,classes=4,noise=0.6"
OTHER = "synthetic:n=400,test=200,shape=1x12x12,classes=4,noise=0.6,seed=5"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    cfg = TrainConfig(model="mlp:16,4", dataset=DATA, epochs=2, batch_size=32)
    return fit(cfg, out_dir=out), out, cfg


def test_a_run_records_the_confusion_matrix_of_its_final_weights(trained):
    result, _, cfg = trained
    m = result.test_confusion
    ds = load_dataset(cfg.dataset, val_fraction=cfg.val_fraction, split_seed=cfg.split_seed)
    counts = torch.bincount(ds.test.y, minlength=4).tolist()
    assert [sum(row) for row in m] == counts  # rows: the true classes of the test split
    assert sum(m[i][i] for i in range(4)) / sum(counts) == result.final["test_acc"]  # exactly the accuracy
    assert result.info["classes"] == list(ds.classes)


def test_eval_per_class_gives_the_same_matrix_and_reproduces(trained):
    result, out, _ = trained
    res = ablab.evaluate(out / "checkpoint")
    assert res["reproduced"] is True and res["confusion"] == result.test_confusion
    table = res.to_pandas()
    assert list(table["correct"]) == [result.test_confusion[k][k] for k in range(4)]
    assert table["accuracy"].tolist() == pytest.approx([r[k] / sum(r) for k, r in enumerate(result.test_confusion)])
    assert res.to_pandas("confusion").values.tolist() == result.test_confusion


def test_cli_eval_per_class_prints_the_table_and_matrix(trained):
    result, out, _ = trained
    res = CliRunner().invoke(cli, ["eval", str(out / "checkpoint"), "--per-class"])
    assert res.exit_code == 0, res.output
    assert "reproduced: the recorded test accuracy" in res.output
    m = result.test_confusion
    row0 = res.output.split("confusion matrix")[1].splitlines()[2].split()
    assert [int(v) for v in row0[-4:]] == m[0]
    acc0 = 100 * m[0][0] / sum(m[0])
    assert f"{acc0:.2f}%" in res.output


def test_eval_on_another_dataset_reports_without_comparing(trained):
    _, out, _ = trained
    res = ablab.evaluate(out / "checkpoint", data=OTHER)
    assert res["reproduced"] is None and res["n"] == 200 and res["dataset"].endswith("seed=5")
    assert any("different test split" in n for n in res["notes"])
    cli_res = CliRunner().invoke(cli, ["eval", str(out / "checkpoint"), "--data", OTHER])
    assert cli_res.exit_code == 0 and "different test split" in cli_res.output
    assert f"test accuracy: {res['test_acc']:.4f}" in cli_res.output


def test_eval_on_the_same_source_compares(trained):
    _, out, _ = trained
    assert ablab.evaluate(out / "checkpoint", data=DATA)["reproduced"] is True


def test_eval_of_another_split_is_not_compared(trained):
    result, out, _ = trained
    res = CliRunner().invoke(cli, ["eval", str(out / "checkpoint"), "--split", "val"])
    assert res.exit_code == 0, res.output
    assert "val accuracy:" in res.output and "not compared" in res.output
    n_val = result.info["n_val"]
    assert f"/{n_val})" in res.output


def test_eval_on_data_with_other_classes_is_one_error(trained):
    _, out, _ = trained
    res = CliRunner().invoke(cli, ["eval", str(out / "checkpoint"), "--data", DATA.replace("classes=4", "classes=5")])
    assert res.exit_code == 2 and res.output.startswith("error:") and "classes" in res.output, res.output


def test_predict_gives_probabilities_whose_argmax_is_the_evaluated_accuracy(trained):
    result, out, cfg = trained
    ds = load_dataset(cfg.dataset, val_fraction=cfg.val_fraction, split_seed=cfg.split_seed)
    probs = ablab.predict(out / "checkpoint", ds.test.x)
    assert probs.shape == (200, 4) and torch.allclose(probs.sum(1), torch.ones(200))
    pred = probs.argmax(1)
    assert (pred == ds.test.y).float().mean().item() == pytest.approx(result.final["test_acc"])
    one = ablab.predict(out / "checkpoint", ds.test.x[0].numpy())  # one sample, as NumPy
    assert one.shape == (4,) and torch.allclose(one, probs[0])
    assert torch.allclose(ablab.predict(out / "checkpoint", ds.test.x[:3, 0]), probs[:3])  # (N, H, W) greyscale


def test_predict_refuses_wrong_shapes_and_types_in_one_line(trained):
    _, out, _ = trained
    with pytest.raises(UserError, match=r"expected images of shape 1x12x12 .* got 2x3x12x12"):
        ablab.predict(out / "checkpoint", torch.zeros(2, 3, 12, 12))
    with pytest.raises(UserError, match=r"got 12x13"):
        ablab.predict(out / "checkpoint", torch.zeros(12, 13))
    with pytest.raises(UserError, match="expected a torch tensor or a NumPy array"):
        ablab.predict(out / "checkpoint", [[0.0]])
    with pytest.raises(UserError, match="uint8 pixel values"):
        ablab.predict(out / "checkpoint", torch.zeros(2, 1, 12, 12, dtype=torch.int32))


def test_predict_on_a_module_uses_its_inputs_as_given():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.randn(5, 4)
    with torch.no_grad():
        want = torch.softmax(model(x), 1)
    assert torch.allclose(ablab.predict(model, x), want)


STUDY = f"""\
[study]
name = "pc"
seeds = 3

[base]
model = "mlp:16,4"
dataset = "{DATA}"
epochs = 2
batch_size = 32

[variants.baseline]
[variants.wide]
model = "mlp:48,4"
"""


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    run_study(parse_study(STUDY, source="pc.toml"), out, executor=InlineExecutor())
    return out


def test_report_per_class_is_the_interval_of_each_seeds_recall(study_dir):
    r = analyze(study_dir)
    pc = r.per_class
    assert pc is not None and len(pc.classes) == 4
    with Store(study_dir, readonly=True) as store:
        runs = [x for x in store.runs() if x.cell == "wide"]
    recalls = [[run.result["test_confusion"][k][k] / sum(run.result["test_confusion"][k]) for run in runs]
               for k in range(4)]
    for k in range(4):
        want = t_interval(recalls[k], r.confidence)
        got = pc.accuracy["wide"][k]
        assert got.n == 3 and got.mean == pytest.approx(want.mean) and got.lo == pytest.approx(want.lo)
    summed = [[sum(run.result["test_confusion"][i][j] for run in runs) for j in range(4)] for i in range(4)]
    assert pc.confusion["wide"] == summed


def test_report_files_have_the_per_class_table_and_confusion_figure(study_dir):
    from ablab.report.render import write_report

    paths = write_report(study_dir)
    md = paths["markdown"].read_text()
    assert "## Per-class test accuracy" in md
    assert (paths["markdown"].parent / "figures" / "confusion.png").is_file()
    rows = paths["per_class_csv"].read_text().splitlines()
    assert rows[0].startswith("class,cell,accuracy") and len(rows) == 1 + 4 * 2
    doc = json.loads(paths["json"].read_text())
    assert len(doc["per_class"]["table"]) == 8 and len(doc["per_class"]["confusion"]["baseline"]) == 4
    frame = ablab.load_study(study_dir).to_pandas("per_class")
    assert len(frame) == 8 and set(frame["cell"]) == {"baseline", "wide"}


def test_an_edited_confusion_matrix_is_refused(study_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(study_dir, copy)
    con = sqlite3.connect(copy / "study.sqlite")
    rid, text = con.execute("SELECT id, result_json FROM runs LIMIT 1").fetchone()
    doc = json.loads(text)
    doc["test_confusion"][0][0] += 1
    con.execute("UPDATE runs SET result_json = ? WHERE id = ?", (json.dumps(doc), rid))
    con.commit()
    con.close()
    with pytest.raises(UserError, match="test_confusion in the study store does not match"):
        analyze(copy)


def test_confusion_counts_are_exact_on_a_known_model():
    from ablab.train.runtime import evaluate_confusion

    model = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3, 2))  # predicts class 0 when x0 > x1, class 1 otherwise (never 2)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
    y = torch.tensor([0, 1, 2, 2])
    loss, acc, m = evaluate_confusion(model, x, y, 3, 3)
    assert m == [[1, 0, 0], [0, 1, 0], [2, 0, 0]] and acc == 0.5
    assert np.isfinite(loss)
