"""The notebook layer: HTML reprs, DataFrames, progress only when interactive, run_study writes the
CLI's report, and the example notebook runs top to bottom."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import ablab
from ablab.api import progress as progress_mod
from ablab.api import scope_css
from ablab.cli import cli
from ablab.study.studyfile import parse_study

CFG = ablab.TrainConfig(model="mlp:16,10", dataset="synthetic:n=300,test=100", epochs=2, threads=1)
STUDY = """[study]
name = "nb"
seeds = 2

[base]
model = "mlp:16,10"
dataset = "synthetic:n=300,test=100"
epochs = 2

[variants.baseline]
[variants.wide]
model = "mlp:64,10"
"""


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.f1, self.f2 = nn.Linear(400, 120), nn.Linear(120, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.c2(x)), 2)
        return self.f2(torch.relu(self.f1(x.flatten(1))))


def test_summary_html_and_dataframe():
    s = ablab.summary(LeNet(), (1, 28, 28))
    page = s._repr_html_()
    assert page.count("<table") == 1 and "<th class='l'>layer</th>" in page
    assert f"{s.totals.params:,}" in page and "Conventions:" in page
    df = s.to_pandas()
    assert list(df["params"]) == [row.params for row in s.layers] and df["params"].sum() == s.totals.params
    spec = ablab.summary("input(1,8,8) conv(4,3) relu flatten linear(10)")
    assert "<table" in spec._repr_html_() and len(spec.to_pandas()) == 4


def test_run_result_html_dataframe_and_quiet_outside_a_session(capsys):
    r = ablab.fit(CFG)
    page = r._repr_html_()
    assert "<table id='history'>" in page and "data:image/png;base64," in page
    assert f"{100 * r.final['test_acc']:.2f}" in page and "synthetic:n=300,test=100" in page
    df = r.to_pandas()
    assert list(df.index) == [1, 2] and df.loc[2, "test_acc"] == r.final["test_acc"]
    assert capsys.readouterr() == ("", "")  # a script/test is not interactive: no bar


def test_progress_bar_in_a_notebook(monkeypatch):
    shown: list[str] = []

    class Handle:
        def update(self, obj) -> None:
            shown.append(obj.data)

    def display(obj, display_id=False):
        shown.append(obj.data)
        return Handle()

    import IPython.display

    monkeypatch.setattr(progress_mod, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    seen: list[str] = []
    r = ablab.fit(CFG, callback=lambda event, data: seen.append(event))
    assert seen[0] == "start" and seen[-1] == "end"  # the user's callback still gets every event
    assert shown[0].startswith("<div><progress value='0'")
    last = shown[-1]
    assert f"value='{2 * r.info['steps_per_epoch']}'" in last and "epoch 2:" in last
    assert f"test {100 * r.final['test_acc']:.2f}%" in last


def test_run_study_writes_the_cli_report_and_load_study_gives_frames(tmp_path):
    res = ablab.run_study(parse_study(STUDY, "nb.toml"), tmp_path / "py", workers=0)
    assert res.outcome.ran == 4 and res.report_paths["html"].is_file()
    cli_run = CliRunner().invoke(cli, ["study", "run", str(_write(tmp_path)), "--out", str(tmp_path / "cli"),
                                       "--workers", "0"])
    assert cli_run.exit_code == 0, cli_run.output
    py_files = sorted(p.relative_to(tmp_path / "py" / "report") for p in (tmp_path / "py" / "report").rglob("*"))
    cli_files = sorted(p.relative_to(tmp_path / "cli" / "report") for p in (tmp_path / "cli" / "report").rglob("*"))
    assert py_files == cli_files
    py_json = json.loads((tmp_path / "py" / "report" / "report.json").read_text())
    cli_json = json.loads((tmp_path / "cli" / "report" / "report.json").read_text())
    assert py_json["summary"] == cli_json["summary"]  # same runs, same seeds, same numbers

    study = ablab.load_study(tmp_path / "py")
    runs = study.to_pandas()
    assert len(runs) == 4 and set(runs["label"]) == {"baseline/seed0", "baseline/seed1", "wide/seed0", "wide/seed1"}
    assert set(runs["status"]) == {"done"}
    epochs = study.to_pandas("epochs")
    assert len(epochs) == 8 and set(epochs["epoch"]) == {1, 2}
    summary = study.to_pandas("summary")
    assert list(summary["cell"]) == ["baseline", "wide"] and list(summary["n"]) == [2, 2]
    page = study._repr_html_()
    assert "<table id='summary'>" in page and "data:image/png;base64," in page
    assert "<html" not in page and ".ablab-report table{" in page  # the report's CSS, scoped
    with pytest.raises(ablab.UserError, match="table: expected one of runs, epochs, summary, comparisons"):
        study.to_pandas("cells")
    with pytest.raises(ablab.UserError, match="holds 2 studies"):
        ablab.load_study(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ablab.UserError, match="no study store"):
        ablab.load_study(tmp_path / "empty")


def _write(tmp_path: Path) -> Path:
    f = tmp_path / "nb.toml"
    f.write_text(STUDY)
    return f


def test_missing_pandas_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ablab.UserError, match=r"pip install 'ablab\[pandas\]'"):
        ablab.summary("lenet5").to_pandas()


def test_scope_css():
    assert scope_css("body{a:1}\nh1,h2{b:2}", ".x") == ".x{a:1}.x h1,.x h2{b:2}"


def test_example_notebook_runs_top_to_bottom():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    root = Path(__file__).resolve().parents[1]
    nb = nbformat.read(root / "examples" / "quickstart.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(root / "examples")}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    htmls = [o["data"]["text/html"] for o in outputs if "data" in o and "text/html" in o["data"]]
    assert any("<table id='layers'>" in h for h in htmls)  # the module's size-up
    assert any("<table id='history'>" in h for h in htmls)  # the training run
    assert any("<table id='summary'>" in h for h in htmls)  # the study report
    assert not [o for o in outputs if o.get("output_type") == "error"]


def test_progress_bar_in_a_terminal_session(monkeypatch, capsys):
    monkeypatch.setattr(progress_mod, "is_interactive", lambda: True)
    r = ablab.fit(CFG)
    out, err = capsys.readouterr()
    assert out == ""  # the bar is on stderr, transient; the closing line stays
    assert err.strip().endswith(f"test {100 * r.final['test_acc']:.2f}%")
    assert ablab.fit(CFG, progress=False) and capsys.readouterr() == ("", "")
