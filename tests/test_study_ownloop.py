"""A study over the user's own training loop (ablab.study.ownloop): a course-style PyTorch loop as
``train(run)``, killed mid-study and resumed to the same numbers, on local workers and Ray; a script that
prints JSON per epoch, and one that fails."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.errors import UserError
from ablab.store import Store
from ablab.study.executor import InlineExecutor
from ablab.study.runner import run_study
from ablab.study.studyfile import StudyError, parse_study, read_study

# a plain loop as course solutions write it: DataLoader, own loss, optimizer.step(), state dicts to resume
LOOP = '''
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return TensorDataset(x, y)


def my_loss(logits, y):
    return nn.functional.cross_entropy(logits, y) + 1e-3 * logits.pow(2).mean()


def accuracy(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / total


def train(run):
    cfg = run.config
    model = nn.Sequential(nn.Linear(8, cfg["hidden"]), nn.ReLU(), nn.Linear(cfg["hidden"], 2))
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9)
    train_loader = DataLoader(make_data(256, 1), batch_size=32, shuffle=True)
    val_loader = DataLoader(make_data(128, 2), batch_size=64)
    test_loader = DataLoader(make_data(128, 3), batch_size=64)
    start = 0
    state = run.load_state()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"]
    for epoch in range(start, cfg["epochs"]):
        model.train()
        total = 0.0
        for x, y in train_loader:
            opt.zero_grad()
            loss = my_loss(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
        time.sleep(cfg["pause"])  # slow enough to be killed mid-run (no effect on the numbers)
        run.log(epoch=epoch + 1, loss=total / 256, val_acc=accuracy(model, val_loader),
                test_acc=accuracy(model, test_loader), weight_norm=model[0].weight.norm().item())
        run.save_state({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1})
'''

STUDY = """\
[study]
name = "own"
seeds = 3
metric = "val_acc"

[base]
train = "loop.py:train"
epochs = 4
lr = 0.05
hidden = 8
pause = PAUSE

[variants.small]

[variants.wide]
hidden = 32
"""


def _write(tmp_path: Path, pause: float = 0.0) -> Path:
    (tmp_path / "loop.py").write_text(LOOP)
    f = tmp_path / "own.toml"
    f.write_text(STUDY.replace("PAUSE", repr(pause)))
    return f


def _metrics(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Per run label: its epochs' metrics (timings aside), from the store."""
    with Store(out) as store:
        assert store.integrity_check() == "ok"
        return {r.label: [{k: v for k, v in e.items() if v is not None and not k.endswith("time_s")}
                          for e in store.epochs(r.id)] for r in store.runs() if r.status == "done"}


def _cli(*args: str) -> subprocess.Popen[bytes]:
    code = "import sys; from ablab.cli import main; main(sys.argv[1:])"
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_mid_study_resumes_to_the_metrics_of_an_uninterrupted_run(tmp_path):
    reference = tmp_path / "ref"
    f = _write(tmp_path, pause=0.3)
    clean = run_study(read_study(f), reference, workers=2)
    assert clean.counts == {"done": 6}
    expected = _metrics(reference)
    assert len(expected) == 6 and all(len(v) == 4 for v in expected.values())
    assert set(expected["wide/seed0"][0]) == {"epoch", "train_loss", "val_acc", "test_acc", "weight_norm"}
    assert expected["small/seed0"] != expected["small/seed1"]  # seeds matter

    out = tmp_path / "out"
    args = ("study", "run", str(f), "--out", str(out), "--workers", "2", "--no-report")
    p = _cli(*args)
    deadline = time.time() + 120
    resumable = []
    while time.time() < deadline and not resumable:  # kill once a run in flight has saved an epoch's state
        assert p.poll() is None, "the study finished before it could be killed"
        if (out / "study.sqlite").exists():
            with Store(out) as store:
                running = [r for r in store.runs() if r.status == "running"]
                resumable = [r for r in running if r.out_dir and (Path(r.out_dir) / "own-state.pt").is_file()
                             and 1 <= len(store.epochs(r.id)) < 4]
        time.sleep(0.05)
    assert resumable, "no run was caught mid-way"
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(1.0)  # workers notice their driver is gone

    p = _cli(*args)
    _, err = p.communicate(timeout=180)
    assert p.returncode == 0, err.decode()
    assert _metrics(out) == expected  # every epoch of every run, to the last digit


@pytest.mark.ray
def test_own_loop_study_on_ray_equals_local(tmp_path):
    ray = pytest.importorskip("ray")
    from ablab.study.ray_executor import RayExecutor

    f = _write(tmp_path)
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    local = run_study(read_study(f), tmp_path / "local", workers=2)
    remote = run_study(read_study(f), tmp_path / "ray", executor=RayExecutor())
    assert local.counts == remote.counts == {"done": 6}
    assert _metrics(tmp_path / "local") == _metrics(tmp_path / "ray")


def test_run_study_from_python_with_a_function(tmp_path):
    import ablab

    seen = []

    def train(run):
        seen.append((run.seed, run.config["a"]))
        for epoch in (1, 2):
            run.log(epoch=epoch, val_acc=0.5 + 0.01 * run.seed + 0.1 * run.config["a"], test_acc=0.5)

    study = {"study": {"name": "fn", "seeds": 2, "metric": "val_acc"},
             "variants": {"a0": {"a": 0}, "a1": {"a": 1}}}
    outcome = ablab.run_study(study, tmp_path / "fn", train=train, workers=0)
    assert outcome.outcome.counts == {"done": 4}
    assert sorted(seen) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    with Store(tmp_path / "fn") as store:
        finals = {r.label: store.epochs(r.id)[-1]["val_acc"] for r in store.runs()}
    assert finals == {"a0/seed0": 0.5, "a1/seed0": 0.6, "a0/seed1": 0.51, "a1/seed1": 0.61}


def test_validation_names_a_bad_train_function(tmp_path):
    (tmp_path / "loop.py").write_text("def train(run, extra):\n    pass\nVALUE = 3\n")
    f = tmp_path / "s.toml"
    f.write_text('[study]\nseeds = 1\n\n[base]\ntrain = "loop.py:train"\n')
    with pytest.raises(UserError, match=r"s\.toml:5: base\.train: .*exactly one argument"):
        run_study(read_study(f), tmp_path / "o")
    f.write_text('[study]\nseeds = 1\n\n[base]\ntrain = "loop.py:trian"\n')
    with pytest.raises(UserError, match="did you mean 'train'"):
        run_study(read_study(f), tmp_path / "o")
    assert not (tmp_path / "o").exists()  # nothing ran, no folder


# ------------------------------------------------------------------------------------------ script form

SCRIPT = '''
import json, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
lr, seed = float(args["--lr"]), int(args["--seed"])
print("starting", flush=True)
for epoch in (1, 2):
    if lr > 1:
        print("Traceback: lr too large, loss is nan", file=sys.stderr)
        sys.exit(7)
    print(json.dumps({"epoch": epoch, "val_acc": round(0.5 + lr + 0.01 * seed + 0.1 * epoch, 6),
                      "test_acc": 0.5}), flush=True)
'''

SCRIPT_STUDY = """\
[study]
name = "script"
seeds = 2
metric = "val_acc"

[base]
command = ["PYTHON", "train.py", "--lr", "{lr}", "--seed", "{seed}"]
lr = 0.1

[variants.low]
[variants.high]
lr = LR
"""


def _script_study(tmp_path: Path, high_lr: float) -> Path:
    (tmp_path / "train.py").write_text(SCRIPT)
    f = tmp_path / "script.toml"
    f.write_text(SCRIPT_STUDY.replace("PYTHON", sys.executable).replace("LR", repr(high_lr)))
    return f


def test_script_study_records_each_printed_epoch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = _script_study(tmp_path, 0.2)
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "o"), "--workers", "0"])
    assert res.exit_code == 0, res.output
    with Store(tmp_path / "o") as store:
        got = {r.label: [(e["epoch"], e["val_acc"]) for e in store.epochs(r.id)] for r in store.runs()}
        run = store.runs()[0]
    assert got["high/seed1"] == [(1, pytest.approx(0.81)), (2, pytest.approx(0.91))]
    assert got["low/seed0"] == [(1, pytest.approx(0.7)), (2, pytest.approx(0.8))]
    assert (Path(run.out_dir) / "stdout.txt").read_text() == "starting\n"


def test_failing_script_fails_its_runs_with_stderr_and_the_cli_exits_3(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = _script_study(tmp_path, 5.0)
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "o"), "--workers", "0"])
    assert res.exit_code == 3, res.output
    with Store(tmp_path / "o") as store:
        status = {r.label: (r.status, r.error) for r in store.runs()}
    assert status["low/seed0"][0] == "done"
    st, error = status["high/seed0"]
    assert st == "failed" and "exited with status 7" in error and "lr too large, loss is nan" in error
    run_dir = next((tmp_path / "o" / "runs").glob("high*seed0*"))
    assert "lr too large" in (run_dir / "stderr.txt").read_text()


def test_unknown_placeholder_is_refused_with_its_line(tmp_path):
    f = _script_study(tmp_path, 0.2)
    f.write_text(f.read_text().replace("{seed}", "{sede}"))
    with pytest.raises(UserError, match=r"script\.toml:7: base\.command: placeholder \{sede\}"):
        run_study(read_study(f), tmp_path / "o")


def test_own_loop_keys_are_free_form_but_seeds_stay_ablabs():
    s = parse_study('[base]\ntrain = "pkg.mod:train"\nmy_key = {a = 1}\n[grid]\nwidth = [1, 2]\n')
    assert s.run_count() == 6
    with pytest.raises(UserError, match="seeds"):
        parse_study('[base]\ntrain = "pkg.mod:train"\nseed = 1\n')
    assert json.dumps(s.base)


@pytest.mark.parametrize(("body", "message"), [
    ('[base]\ntrain = 5\n', r":2: base\.train: expected 'file\.py:function'"),
    ('[base]\ntrain = "nosuch.py:train"\n', r":2: base\.train: no such file nosuch\.py"),
    ('[base]\ncommand = "python train.py"\n', r":2: base\.command: expected a non-empty list of strings"),
    ('[base]\ncommand = []\n', r":2: base\.command: expected a non-empty list"),
    ('[base]\ncommand = ["python", "{lr"]\n', r":2: base\.command: not a valid \{key\} template"),
    ('[base]\ncommand = ["python"]\n[variants.a]\nseed = 3\n', r":4: variants\.a\.seed: set the seeds"),
    ('[base]\ncommand = ["python"]\n[grid]\ncommand = [["a"], ["b"]]\n', r":4: grid\.command: .*own variant"),
    ('[base]\ncommand = ["python"]\n[variants.a]\ndescription = 3\n', r":4: variants\.a\.description"),
])
def test_bad_own_loop_tables_are_refused_with_their_line(tmp_path, body, message):
    f = tmp_path / "s.toml"
    f.write_text(body)
    with pytest.raises(UserError, match=message):
        read_study(f)


def test_a_train_function_that_raises_fails_its_run_with_the_traceback(tmp_path):
    import ablab

    def train(run):
        run.log(epoch=1, val_acc=0.5)
        if run.config["lr"] > 1:
            raise FloatingPointError("loss is nan at step 12")
        run.log(epoch=2, val_acc=0.6)

    study = {"study": {"name": "boom", "seeds": 1, "metric": "val_acc"},
             "variants": {"ok": {"lr": 0.1}, "bad": {"lr": 5.0}}}
    result = ablab.run_study(study, tmp_path / "b", train=train, report=False)
    assert result.outcome.counts == {"done": 1, "failed": 1}
    with Store(tmp_path / "b") as store:
        bad = next(r for r in store.runs() if r.variant == "bad")
    assert bad.error.startswith("FloatingPointError: loss is nan at step 12")
    assert "raise FloatingPointError" in bad.error  # the traceback is kept


def test_report_plan_and_compare_of_an_own_loop_folder_import_no_user_code(tmp_path):
    f = _write(tmp_path)
    f.write_text(f.read_text().replace("seeds = 3", "seeds = 2").replace("epochs = 4", "epochs = 1"))
    run_study(read_study(f), tmp_path / "o", workers=0)
    code = ("import sys; from click.testing import CliRunner; from ablab.cli import cli\n"
            f"for args in (['study', 'report', {str(tmp_path / 'o')!r}], ['study', 'plan', {str(tmp_path / 'o')!r}]):\n"
            "    r = CliRunner().invoke(cli, args); assert r.exit_code == 0, r.output\n"
            "print(sorted(m for m in sys.modules if m.startswith('ablab_user') or m == 'loop'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_an_edited_training_script_is_not_silently_reused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = _script_study(tmp_path, 0.2)
    args = ["study", "run", str(f), "--out", str(tmp_path / "o"), "--workers", "0"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    (tmp_path / "train.py").write_text(SCRIPT.replace("starting", "starting again"))
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "4 run(s) were made with another training code" in res.output, res.output
    res = CliRunner().invoke(cli, [*args, "--rerun-changed"])
    assert res.exit_code == 0, res.output
    with Store(tmp_path / "o") as store:
        run = store.runs()[0]
    assert (Path(run.out_dir) / "stdout.txt").read_text() == "starting again\n"


def test_an_edited_train_function_file_is_not_silently_reused(tmp_path):
    f = _write(tmp_path)
    f.write_text(f.read_text().replace("seeds = 3", "seeds = 1").replace("epochs = 4", "epochs = 1"))
    out = tmp_path / "o"
    run_study(read_study(f), out, executor=InlineExecutor())
    (tmp_path / "loop.py").write_text(LOOP + "\n# edited\n")
    with pytest.raises(StudyError, match=r"were made with another loop.py"):
        run_study(read_study(f), out, executor=InlineExecutor())
