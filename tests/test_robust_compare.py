"""`study compare` pairs cells by name but checks their settings: an MLP on Fashion-MNIST against one on
synthetic data is not "beyond seed noise" without a word (issue 13 item 7)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ablab.cli import cli
from ablab.report.compare import compare_studies
from ablab.study.runner import prepare
from ablab.study.studyfile import parse_study

STUDY = """\
[study]
name = "{name}"
seeds = 4
[base]
model = "mlp:16,10"
dataset = "{dataset}"
epochs = {epochs}
[variants.baseline]
[variants.bn]
batchnorm = true
"""


def make(folder: Path, name: str, dataset: str = "synthetic", epochs: int = 3, shift: float = 0.0,
         bn_epochs: int | None = None) -> Path:
    """A study folder with every run finished at known accuracies (no training)."""
    text = STUDY.format(name=name, dataset=dataset, epochs=epochs)
    if bn_epochs is not None:
        text += f"epochs = {bn_epochs}\n"
    store, _, planned, ids = prepare(parse_study(text, source=f"{name}.toml"), folder)
    for r in planned:
        acc = 0.80 + shift + 0.002 * r.seed + (0.03 if r.variant == "bn" else 0.0)
        h = [{"epoch": 1, "train_loss": 0.5, "train_acc": acc, "val_loss": 0.5, "val_acc": acc, "test_loss": 0.5,
              "test_acc": acc, "lr": 1e-3, "train_time_s": 0.1, "eval_time_s": 0.1}]
        store.start_run(ids[r.key])
        store.finish_run(ids[r.key], {"status": "done", "history": h, "final": h[0], "best_epoch": 1,
                                      "wall_time_s": 1.0, "info": {"n_test": 500}})
    store.close()
    return folder


def test_unrelated_studies_are_refused(tmp_path):
    a = make(tmp_path / "a", "fashion", dataset="fashion-mnist", epochs=12)
    b = make(tmp_path / "b", "synth", dataset="synthetic", epochs=3, shift=-0.6)
    res = CliRunner().invoke(cli, ["study", "compare", str(a), str(b)])
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: {a} and {b}: no common cell has the same settings")
    assert "dataset 'fashion-mnist' vs 'synthetic'" in res.output and "epochs 12 vs 3" in res.output
    assert "beyond seed noise" not in res.output


def test_a_cell_whose_settings_differ_is_flagged_not_tested(tmp_path):
    a = make(tmp_path / "a", "v1")
    b = make(tmp_path / "b", "v2", shift=0.05, bn_epochs=9)  # bn runs 9 epochs in B, 3 in A
    _, _, deltas, _ = compare_studies(a, b)
    by = {d.cell: d for d in deltas}
    assert by["bn"].differs == {"epochs": (3, 9)} and by["bn"].sentence.startswith("bn: +5.00 points (B − A), not "
                                                                                   "tested: the two cells differ in "
                                                                                   "epochs 3 vs 9")
    assert by["baseline"].comparable and by["baseline"].p < 0.001 and "beyond seed noise" in by["baseline"].sentence
    assert by["baseline"].p_holm == by["baseline"].p  # Holm over the one tested cell only
    res = CliRunner().invoke(cli, ["study", "compare", str(a), str(b)])
    assert res.exit_code == 0, res.output
    assert "settings differ" in res.output and "not tested: the two cells differ in epochs 3 vs 9" in res.output


def test_same_settings_other_seeds_are_compared(tmp_path):
    a = make(tmp_path / "a", "v1")
    b = make(tmp_path / "b", "v1b")
    _, _, deltas, _ = compare_studies(a, b)
    assert all(d.comparable for d in deltas) and [round(100 * d.diff, 6) for d in deltas] == [0.0, 0.0]
