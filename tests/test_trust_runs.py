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


MODELS = '''
import sys
import torch
from torch import nn


class NaNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(x.flatten(1)) * float("nan")


class ExitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 3)
        self.calls = 0  # exits at its first real training step, after ablab's pre-flight step

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls >= 2:
                sys.exit(0)
        return self.fc(x.flatten(1))


class Reseed(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Inplace(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x.add_(1)
        return self.fc(x.flatten(1))
'''
DATA3 = "synthetic:n=64,test=50,shape=1x4x4,classes=3"


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.py").write_text(MODELS)
    return tmp_path / "bad.py"


def train(*args):
    return CliRunner().invoke(cli, ["train", *args, "--data", DATA3, "--epochs", "1", "--threads", "1", "-q"])


def test_a_model_that_exits_the_process_is_a_failure_not_exit_0(models, tmp_path):
    res = train(f"{models}:ExitNet", "--out", str(tmp_path / "r"))
    assert res.exit_code == 2 and "stopped by sys.exit(0) inside your code" in res.output, res.output
    f = tmp_path / "s.toml"
    f.write_text(f'[study]\nname = "x"\nseeds = 1\n[base]\nmodel = "{models}:ExitNet"\ndataset = "{DATA3}"\n'
                 "epochs = 1\n[variants.baseline]\n")
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "o"), "--workers", "0",
                                   "--no-report"])
    assert res.exit_code == 3, res.output  # a failed run, not exit 0 with the run pending
    with Store(tmp_path / "o") as store:
        (run,) = store.runs("x")
        assert run.status == "failed" and "sys.exit(0)" in run.error


def test_a_diverged_run_says_the_real_test_split_size(models):
    res = train(f"{models}:NaNNet")
    assert res.exit_code == 0 and "diverged: loss nan at epoch 1" in res.output
    assert "the test split has 50 samples" in res.output and "empty test split" not in res.output


def test_a_model_writing_its_input_cannot_change_the_data(models, tmp_path):
    res = train(f"{models}:Inplace", "--out", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    ev = CliRunner().invoke(cli, ["eval", str(tmp_path / "r" / "checkpoint"), "--model", f"{models}:Inplace"])
    assert ev.exit_code == 0 and "reproduced" in ev.output, ev.output  # eval sees the same test split


def test_seeds_that_give_identical_results_are_flagged(models, tmp_path):
    s = parse_study(f'[study]\nname = "r"\nseeds = 3\n[base]\nmodel = "{models}:Reseed"\ndataset = "{DATA3}"\n'
                    "epochs = 1\ndata_seed = 1\ndropout_seed = 1\n[variants.baseline]\n", source="r.toml")
    run_study(s, tmp_path / "o", executor=InlineExecutor())
    assert any("All 3 seeds of baseline gave identical results" in n for n in analyze(tmp_path / "o").notes)


def test_an_empty_study_file_is_an_error(tmp_path):
    for text in ("", "# nothing yet\n", '[study]\nname = "x"\n'):
        f = tmp_path / "e.toml"
        f.write_text(text)
        res = CliRunner().invoke(cli, ["study", "run", str(f), "--dry-run", "--no-measure"])
        assert res.exit_code == 2 and "defines nothing to train" in res.output, res.output


def test_dry_run_times_a_model_with_fewer_than_10_classes(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(f'[study]\nname = "c3"\nseeds = 1\n[base]\nmodel = "mlp:8,3"\ndataset = "{DATA3}"\nepochs = 1\n'
                 "[variants.baseline]\n[variants.bn]\nbatchnorm = true\n")  # batch norm: timed in train mode too
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "o"), "--dry-run"])
    assert res.exit_code == 0 and "estimated time" in res.output, res.output


def _foreign_wal_db(folder: Path) -> dict[str, bytes]:
    """Another program's SQLite file in WAL mode with committed data still in its -wal file (copied while
    that program had it open): the exact bytes ablab must leave alone."""
    import sqlite3

    live = folder.parent / "live"
    live.mkdir()
    db = sqlite3.connect(live / "study.sqlite")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE notes (x TEXT)")
    db.execute("INSERT INTO notes VALUES ('theirs')")
    db.commit()
    folder.mkdir(exist_ok=True)
    for f in live.iterdir():
        shutil.copy(f, folder / f.name)
    db.close()
    return {f.name: f.read_bytes() for f in folder.iterdir()}


def test_a_foreign_store_and_study_file_are_left_exactly_as_they_were(tmp_path):
    _, s = make_study(tmp_path)
    out = tmp_path / "theirs"
    before = _foreign_wal_db(out)
    assert "study.sqlite-wal" in before
    f = tmp_path / "fp.toml"
    f.write_text(s.text)
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(out), "--workers", "0"])
    assert res.exit_code == 2 and "not an ablab study store" in res.output, res.output
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".lock"}
    assert after == before  # no study.toml written, no WAL merged, nothing else created
    other = tmp_path / "other"
    other.mkdir()
    (other / "study.toml").write_text("# someone else's study\n")
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(other), "--workers", "0"])
    assert res.exit_code == 2 and "ablab does not overwrite it" in res.output, res.output
    assert (other / "study.toml").read_text() == "# someone else's study\n"


def test_reading_a_study_creates_no_file_beside_its_store(tmp_path):
    _, s = make_study(tmp_path)
    out = tmp_path / "out"
    run_study(s, out, executor=InlineExecutor())
    before = sorted(p.name for p in out.iterdir())
    for args in (["runs", "ls", str(out)], ["study", "compare", str(out), str(out)]):
        res = CliRunner().invoke(cli, args)
        assert "Traceback" not in res.output
        assert sorted(p.name for p in out.iterdir()) == before, args
    analyze(out)
    assert sorted(p.name for p in out.iterdir()) == before


def test_two_seeds_get_no_verdict_no_effect_size_and_no_bootstrap(tmp_path):
    s = parse_study('[study]\nname = "two"\nseeds = 2\n[base]\nmodel = "mlp:8,10"\n'
                    'dataset = "synthetic:n=96,test=64"\nepochs = 2\n[variants.baseline]\n[variants.wide]\n'
                    'model = "mlp:64,10"\n', source="two.toml")
    run_study(s, tmp_path / "o", executor=InlineExecutor())
    r = analyze(tmp_path / "o")
    (c,) = r.comparisons
    assert c.verdict == "few" and c.bootstrap is None and all(np.isnan(c.effect))
    assert r.notes[0].startswith("TOO FEW SEEDS TO CONCLUDE") and "too few seeds to conclude" in c.sentence
    res = CliRunner().invoke(cli, ["study", "report", str(tmp_path / "o")])
    assert res.exit_code == 0 and "too few seeds" in res.output and "yes, " not in res.output, res.output


def test_an_accuracy_outside_0_1_in_the_store_is_refused(tmp_path):
    import sqlite3

    _, s = make_study(tmp_path)
    out = tmp_path / "out"
    run_study(s, out, executor=InlineExecutor())
    db = sqlite3.connect(out / "study.sqlite")
    db.execute("UPDATE epochs SET test_acc = 17 WHERE run_id = (SELECT MIN(id) FROM runs)")
    db.commit()
    db.close()
    res = CliRunner().invoke(cli, ["study", "report", str(out)])
    assert res.exit_code == 2 and "= 17.0 in the study store is not a fraction in [0, 1]" in res.output
    assert "Traceback" not in res.output


PREFLIGHT = '''
import torch
from torch import nn


class Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 3)


class NoParams(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :3]


class Detached(Base):
    def forward(self, x):
        return self.fc(x.flatten(1)).detach()


class WrongBatch(Base):
    def forward(self, x):
        return self.fc(x.flatten(1))[:1]


class IntLogits(Base):
    def forward(self, x):
        return self.fc(x.flatten(1)).long()


class TrainOnly(Base):
    def forward(self, x):
        if self.training:
            raise RuntimeError("boom in training")
        return self.fc(x.flatten(1))


class Hook(Base):
    def __init__(self):
        super().__init__()
        self._register_state_dict_hook(lambda m, sd, prefix, local: sd.__setitem__(prefix + "extra", torch.zeros(1)))

    def forward(self, x):
        return self.fc(x.flatten(1))
'''


@pytest.mark.parametrize("name, says", [
    ("NoParams", "has no trainable parameters"), ("Detached", "does not depend on the trainable parameters"),
    ("WrongBatch", "returned 1 row(s) for a batch of 2"), ("IntLogits", "returned int64 logits"),
    ("TrainOnly", "fails in training mode"),
])
def test_a_model_that_cannot_train_is_refused_before_training(tmp_path, monkeypatch, name, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pre.py").write_text(PREFLIGHT)
    res = train(f"{tmp_path / 'pre.py'}:{name}")
    assert res.exit_code == 2 and says in res.output and "Traceback" not in res.output, res.output


def test_a_state_dict_hook_that_adds_keys_is_one_error_at_eval(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pre.py").write_text(PREFLIGHT)
    assert train(f"{tmp_path / 'pre.py'}:Hook", "--out", str(tmp_path / "r")).exit_code == 0
    ckpt = str(tmp_path / "r" / "checkpoint")
    res = CliRunner().invoke(cli, ["eval", ckpt, "--model", f"{tmp_path / 'pre.py'}:Hook"])
    assert res.exit_code == 2 and "does a state-dict hook" in res.output and "Traceback" not in res.output, res.output
