"""Results that know what made them: a study refuses to mix runs made from another version of your model
file or your data files with new ones, and --rerun-changed re-runs exactly those."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.report.analysis import analyze
from ablab.store import Store
from ablab.study.executor import InlineExecutor
from ablab.study.runner import run_study
from ablab.study.studyfile import StudyError, parse_study

HERE = Path(__file__).parent
STUDY = """\
[study]
name = "fp"
seeds = 2

[base]
model = "{model}"
model_args = {{ width = 4 }}
dataset = "{data}"
epochs = 1
batch_size = 32

[variants.baseline]
"""


def make_study(tmp_path: Path, data: str = "synthetic:n=96,test=32,shape=1x28x28,classes=10"):
    src = tmp_path / "mymodel.py"
    shutil.copy(HERE / "models" / "mymodel.py", src)
    return src, parse_study(STUDY.format(model=f"{src}:FunctionalCNN", data=data), source=str(tmp_path / "fp.toml"))


def test_an_edited_model_file_is_not_silently_reused(tmp_path):
    src, s = make_study(tmp_path)
    out = tmp_path / "out"
    first = run_study(s, out, executor=InlineExecutor())
    assert first.ran == 2
    again = run_study(s, out, executor=InlineExecutor())  # unchanged: nothing to do
    assert again.ran == 0 and again.skipped == 2
    src.write_text(src.read_text().replace("nn.Dropout(0.5)", "nn.Dropout(0.9)") + "\n# edited\n")
    with pytest.raises(StudyError, match=r"2 run\(s\) were made with another mymodel.py.*--rerun-changed"):
        run_study(s, out, executor=InlineExecutor())
    with Store(out) as store:  # refused: nothing was reset or run
        assert [r.status for r in store.runs("fp")] == ["done", "done"]
    rerun = run_study(s, out, executor=InlineExecutor(), rerun_changed=True)
    assert rerun.ran == 2 and rerun.skipped == 0
    assert run_study(s, out, executor=InlineExecutor()).ran == 0  # now recorded with the new file
    notes = " ".join(analyze(out).notes)
    assert "Made with: mymodel.py SHA-256" in notes


def test_edited_data_files_are_not_silently_reused(tmp_path):
    gen = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    x = gen.integers(0, 256, size=(96, 28, 28), dtype=np.uint8)
    y = np.arange(96) % 10
    np.savez(data, x_train=x, y_train=y)
    _, s = make_study(tmp_path, f"npz:{data}")
    out = tmp_path / "out"
    assert run_study(s, out, executor=InlineExecutor()).ran == 2
    np.savez(data, x_train=255 - x, y_train=y)
    with pytest.raises(StudyError, match=r"2 run\(s\) were made with other files of npz:"):
        run_study(s, out, executor=InlineExecutor())


def test_the_cli_says_it_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src, s = make_study(tmp_path)
    f = tmp_path / "fp.toml"
    f.write_text(s.text)
    args = ["study", "run", str(f), "--out", str(tmp_path / "out"), "--workers", "0", "--no-report"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    src.write_text(src.read_text() + "\n# edited\n")
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "--rerun-changed" in res.output and "Traceback" not in res.output, res.output
    res = CliRunner().invoke(cli, [*args, "--rerun-changed"])
    assert res.exit_code == 0 and "2 run(s) finished" in res.output, res.output
