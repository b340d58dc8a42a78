"""Your own nn.Module as a model: references (file.py:Name, package.module:Name, the class itself),
model_args, clear errors, train -> eval that reproduces, studies on a module — tiny synthetic data."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ablab.cli import cli
from ablab.models.construct import instantiate, parse_model_args
from ablab.models.resolve import ModelRefError, is_reference
from ablab.train import TrainConfig, evaluate_checkpoint, fit
from ablab.train.checkpoint import CheckpointError
from ablab.train.config import ConfigError

HERE = Path(__file__).parent
MYMODEL = HERE / "models" / "mymodel.py"
REF = f"{MYMODEL}:LeNet5V1"
DATA = "synthetic:n=200,test=100,shape=1x28x28,classes=10"

sys.path.insert(0, str(HERE / "models"))
import mymodel  # noqa: E402  (the student's file, imported the way a notebook would)


def cli_run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("text, expected", [
    ("models/mymodel.py:LeNet5V1", True), ("mymodel.py:make_mlp", True), ("pkg.models:Net", True),
    ("pkg.models:Outer.Inner", True), ("mlp:256,10", False), ("lenet5", False),
    ("conv(6,5) relu flatten linear(10)", False), ("net.json", False), ("file.py:", False),
])
def test_what_counts_as_a_reference(text, expected):
    assert is_reference(text) is expected


def test_model_args_are_toml_literals():
    assert parse_model_args(["use_dropout=true", "width=64", "p=0.25", "act=relu", 'name="x y"', "ks=[3, 5]",
                             "bn=False", "x=NONE"]) == {
        "use_dropout": True, "width": 64, "p": 0.25, "act": "relu", "name": "x y", "ks": [3, 5], "bn": False, "x": None}
    with pytest.raises(ModelRefError, match="expected KEY=VALUE"):
        parse_model_args(["use_dropout"])
    with pytest.raises(ModelRefError, match="not a TOML value"):
        parse_model_args(["ks=[3,"])


def test_a_reference_builds_the_same_module_as_torch():
    torch.manual_seed(0)
    mine = instantiate(REF, {"use_batch_norm": True})
    torch.manual_seed(0)
    theirs = mymodel.LeNet5V1(use_batch_norm=True)
    assert type(mine).__name__ == "LeNet5V1"
    assert sum(p.numel() for p in mine.parameters()) == sum(p.numel() for p in theirs.parameters()) == 61_706 + 44
    for a, b in zip(mine.state_dict().values(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # same init seed, same weights
    factory = instantiate(f"{MYMODEL}:make_mlp", {"width": 8})
    assert sum(p.numel() for p in factory.parameters()) == 784 * 8 + 8 + 8 * 10 + 10


@pytest.mark.parametrize("args, message", [
    (["tests/models/nope.py:X"], "error: tests/models/nope.py:X: no such file tests/models/nope.py"),
    (["nopkg.models:Net"], "error: nopkg.models:Net: no module named 'nopkg'"),
    (["tests/models/mymodel.py:LeNet5V2"], "no name 'LeNet5V2' in tests/models/mymodel.py; did you mean 'LeNet5V1'?"),
    (["tests/models/mymodel.py:NotAModel"], "NotAModel is a class but not a torch.nn.Module subclass"),
    (["tests/models/mymodel.py:not_a_factory"], "not_a_factory(...) returned an object of type int, not an nn.Module"),
    (["tests/models/mymodel.py:LeNet5V1", "--model-arg", "use_dropot=true"],
     "LeNet5V1 does not accept 'use_dropot' (did you mean 'use_dropout'?); it takes: use_dropout, use_batch_norm"),
    (["tests/models/mymodel.py:Picky", "--model-arg", "width=0"],
     "Picky(width=0) raised ValueError: width must be positive, got 0"),
    (["tests/models/mymodel.py:SevenWay"], "the model outputs (7,) per sample but dataset synthetic"),
    (["tests/models/mymodel.py:LeNet5V1", "--variant", "bn"],
     "batchnorm: inserting batch norm is a spec transform and cannot change your own model"),
    (["tests/models/mymodel.py:LeNet5V1", "--variant", "dropout"], "model_args = { use_dropout = true }"),
    (["lenet5", "--model-arg", "width=3"], "error: --model-arg: constructor arguments need a model reference"),
])
def test_bad_references_get_one_clear_error(args, message, monkeypatch):
    monkeypatch.chdir(HERE.parent)
    res = cli_run("train", *args, "--data", DATA, "--epochs", "1", "-q")
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.output.count("error:") == 1
    assert message in res.output


def test_summary_of_a_reference_that_is_not_a_model(monkeypatch):
    monkeypatch.chdir(HERE.parent)
    res = cli_run("summary", "tests/models/mymodel.py:NotAModel", "--input", "1x28x28")
    assert res.exit_code == 2 and "not a torch.nn.Module subclass" in res.output


def test_the_class_itself_is_stored_as_its_reference():
    cfg = TrainConfig(model=mymodel.LeNet5V1, model_args={"use_dropout": True})
    assert cfg.model == f"{MYMODEL.resolve()}:LeNet5V1"
    assert json.loads(json.dumps(cfg.to_dict()))["model_args"] == {"use_dropout": True}
    assert TrainConfig(model=mymodel.make_mlp).model.endswith("mymodel.py:make_mlp")
    with pytest.raises(ConfigError, match=r"pass the class itself \(LeNet5V1, not LeNet5V1\(\)\)"):
        TrainConfig(model=mymodel.LeNet5V1())


def test_a_notebook_class_trains_in_process_and_is_refused_elsewhere():
    class Tiny(torch.nn.Module):
        def __init__(self, width=4):
            super().__init__()
            self.fc = torch.nn.Linear(784, 10)

        def forward(self, x):
            return self.fc(x.flatten(1))

    Tiny.__module__, Tiny.__qualname__ = "__main__", "Tiny"  # what a notebook cell defines
    cfg = TrainConfig(model=Tiny, dataset=DATA, epochs=1, threads=1)
    assert cfg.model == "__main__:Tiny"
    assert fit(cfg).final["test_acc"] is not None
    with pytest.raises(ModelRefError, match=r"defined in a script or notebook \(__main__\).*move it into a .py file"):
        instantiate("__main__:Other")


def test_model_is_built_after_the_init_seed_once_per_run():
    cfg = TrainConfig(model=REF, dataset=DATA, epochs=1, threads=1, limit=64)
    a, b = fit(cfg), fit(cfg)
    assert a.history == [dict(h, train_time_s=x["train_time_s"], eval_time_s=x["eval_time_s"])
                         for h, x in zip(b.history, a.history, strict=True)]
    c = fit(cfg.replace(init_seed=7))
    assert c.history[0]["train_loss"] != a.history[0]["train_loss"]


def test_train_then_eval_reproduces_and_records_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(HERE.parent)
    out = tmp_path / "run"
    res = cli_run("train", "tests/models/mymodel.py:LeNet5V1", "--model-arg", "use_batch_norm=true",
                  "--model-arg", "use_dropout=true", "--data", DATA, "--epochs", "1", "--threads", "1",
                  "--out", str(out), "-q")
    assert res.exit_code == 0, res.output
    acc_line = res.output.strip().splitlines()[-1]
    meta = json.loads((out / "checkpoint" / "config.json").read_text())
    assert meta["spec"] is None
    assert meta["model"]["reference"] == f"{MYMODEL.resolve()}:LeNet5V1"
    assert meta["model"]["args"] == {"use_batch_norm": True, "use_dropout": True}
    assert meta["config"]["model_args"] == {"use_batch_norm": True, "use_dropout": True}
    import hashlib

    assert meta["model"]["source"]["sha256"] == hashlib.sha256(MYMODEL.read_bytes()).hexdigest()
    ev = cli_run("eval", str(out / "checkpoint"))  # the checkpoint names code: ablab does not run it unasked
    assert ev.exit_code == 2 and "ablab imports no code a checkpoint names on its own" in ev.output, ev.output
    assert "--model FILE.py:NAME" in ev.output and "--trust-code" in ev.output
    for named in (["--model", "tests/models/mymodel.py:LeNet5V1"], ["--trust-code"]):
        ev = cli_run("eval", str(out / "checkpoint"), *named)
        assert ev.exit_code == 0, ev.output
        lines = ev.output.strip().splitlines()
        assert lines[-1] == acc_line and lines[-2].startswith("reproduced: the recorded test accuracy")


def test_eval_warns_when_the_source_changed_and_follows_a_moved_model(tmp_path):
    src = tmp_path / "proj" / "net.py"
    src.parent.mkdir()
    shutil.copy(MYMODEL, src)
    r = fit(TrainConfig(model=f"{src}:FunctionalCNN", model_args={"width": 4}, dataset=DATA, epochs=1,
                        threads=1), out_dir=tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoint"
    src.write_text(src.read_text() + "\n# edited after training\n")
    with pytest.raises(CheckpointError, match="not the code these weights were trained with"):
        evaluate_checkpoint(ckpt, model_ref=f"{src}:FunctionalCNN")  # named, but not the file trained with
    ev = evaluate_checkpoint(ckpt, trust_code=True)  # trusted: evaluated, and the change is said
    assert ev["reproduced"] and ev["test_acc"] == r.final["test_acc"]
    assert any("changed since training" in n for n in ev["notes"])
    moved = tmp_path / "elsewhere.py"
    src.rename(moved)
    res = cli_run("eval", str(ckpt), "--trust-code")
    assert res.exit_code == 2 and "no such file" in res.output and "Traceback" not in res.output
    res = cli_run("eval", str(ckpt), "--model", f"{moved}:FunctionalCNN", "--trust-code")
    assert res.exit_code == 0 and "reproduced" in res.output, res.output


def test_a_checkpoint_never_imports_code_from_its_own_folder(tmp_path, monkeypatch):
    fit(TrainConfig(model=f"{MYMODEL}:make_mlp", model_args={"width": 8}, dataset=DATA, epochs=1, threads=1),
        out_dir=tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoint"
    planted = ckpt / "make_mlp_mod.py"
    planted.write_text("raise SystemExit('planted code ran')\n")
    with pytest.raises(ModelRefError, match="refusing to import code from inside the checkpoint folder"):
        instantiate(f"{planted}:make_mlp", forbid=ckpt)
    monkeypatch.chdir(ckpt)  # even from inside the folder, a module reference does not find the planted file
    with pytest.raises(ModelRefError, match="no module named 'make_mlp_mod'"):
        instantiate("make_mlp_mod:make_mlp", forbid=ckpt)
    monkeypatch.chdir(tmp_path)
    for extra in ([], ["--trust-code"]):
        res = cli_run("eval", str(ckpt), "--model", f"{planted}:make_mlp", *extra)
        assert res.exit_code == 2 and "refusing to import code from inside the checkpoint folder" in res.output


STUDY = """\
[study]
name = "own"
seeds = 2

[base]
model = "models/mymodel.py:LeNet5V1"
model_args = { use_dropout = false }
dataset = "synthetic:n=96,test=64,shape=1x28x28,classes=10"
epochs = 1
batch_size = 32

[variants.baseline]
[variants.bn]
model_args = { use_batch_norm = true }
"""


def test_study_on_a_module_with_model_args_variants(tmp_path):
    from ablab.store import Store
    from ablab.study.executor import LocalExecutor
    from ablab.study.runner import run_study
    from ablab.study.studyfile import read_study

    f = HERE / "own_study.toml"  # next to tests/models: the reference is relative to the study file
    f.write_text(STUDY)
    try:
        study = read_study(f)
    finally:
        f.unlink()
    assert study.base["model"] == f"{MYMODEL.resolve()}:LeNet5V1"
    out = run_study(study, tmp_path / "out", executor=LocalExecutor(workers=2))
    assert (out.total, out.failed) == (4, [])
    with Store(tmp_path / "out") as store:
        configs = {(r.variant, r.seed): r.config for r in store.runs()}
    assert configs[("bn", 0)]["model_args"] == {"use_dropout": False, "use_batch_norm": True}
    assert configs[("baseline", 1)]["model_args"] == {"use_dropout": False}


def test_study_dry_run_on_a_module_traces_its_cost(tmp_path):
    from ablab.study.cost import estimate
    from ablab.study.studyfile import read_study

    f = _write(tmp_path / "own.toml", STUDY.replace("models/mymodel.py", str(MYMODEL)))
    costs = estimate(read_study(f), tmp_path / "out", measure=True)
    assert [c.label for c in costs] == ["baseline/seed0", "bn/seed0", "baseline/seed1", "bn/seed1"]
    assert {c.macs for c in costs} == {416_520}  # the module's forward, traced as `ablab summary` does
    assert all(c.seconds and c.seconds > 0 for c in costs)
    res = cli_run("study", "run", str(f), "--out", str(tmp_path / "out"), "--dry-run", "--no-measure")
    assert res.exit_code == 0, res.output
    assert "416,520" in res.output


def test_study_file_errors_on_module_models(tmp_path):
    from ablab.study.studyfile import StudyError, parse_study

    bad = STUDY.replace("models/mymodel.py", "models/nope.py")
    with pytest.raises(StudyError, match=r"own.toml:6: base.model: no such file models/nope.py"):
        parse_study(bad, source=str(_write(tmp_path / "own.toml", bad)))
    bn = STUDY + "[variants.inserted]\nuse = ['bn']\n"
    with pytest.raises(StudyError, match="variants.inserted.use: .*set it with model_args"):
        parse_study(bn, source=str(_write(HERE / "models" / ".." / "tmp_own.toml", bn)))
    (HERE / "tmp_own.toml").unlink()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_study_refuses_model_args_the_module_rejects_before_any_run(tmp_path):
    """A typo in a variant's model_args fails at once, naming the variant's key and line — not after the
    baseline's seeds have trained."""
    bad = STUDY.replace("use_batch_norm = true", "use_batchnorm = true")
    f = _write(tmp_path / "own.toml", bad.replace("models/mymodel.py", str(MYMODEL)))
    res = cli_run("study", "run", str(f), "--out", str(tmp_path / "out"))
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    msg = " ".join(res.output.split())
    assert f"{f}:14: variants.bn.model_args:" in msg
    assert "does not accept 'use_batchnorm' (did you mean 'use_batch_norm'?)" in msg
    assert not (tmp_path / "out").exists()  # nothing created, nothing trained


def test_study_refuses_a_module_whose_output_does_not_fit_the_dataset(tmp_path):
    wrong = STUDY.replace("classes=10", "classes=3")
    f = _write(tmp_path / "own.toml", wrong.replace("models/mymodel.py", str(MYMODEL)))
    res = cli_run("study", "run", str(f), "--out", str(tmp_path / "out"), "--dry-run", "--no-measure")
    msg = " ".join(res.output.split())
    assert res.exit_code == 2 and f"{f}:6: base.model:" in msg, res.output
    assert "outputs (10,) per sample but dataset synthetic:n=96,test=64,shape=1x28x28,classes=3 has 3 classes" in msg
