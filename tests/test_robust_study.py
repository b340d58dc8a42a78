"""Study files an adversary writes: expansion limits computed before anything is built, huge and
non-finite numbers, deep nesting, non-UTF-8 bytes; and the one split-size rule shared by the splitter
and the dry-run estimate (issue 13 items 2-4, issue 12 item 5)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from ablab.cli import cli
from ablab.study.expand import expand
from ablab.study.studyfile import DEFAULT_MAX_RUNS, StudyError, parse_study, read_study

BASE = """\
[study]
name = "s"
seeds = 2
[base]
model = "mlp:8,10"
dataset = "synthetic:n=200,test=100"
epochs = 1
"""

GB = 1 << 30


def run_limited(args: list[str], cwd: Path, address_space: int = GB,
                timeout: float = 120) -> subprocess.CompletedProcess:
    """``ablab ARGS`` in a subprocess whose address space is capped (RLIMIT_AS): a command that tried to
    build 10**8 runs (or inflate a bomb) dies with MemoryError instead of passing."""
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({address_space}, {address_space}))
        from ablab.cli import main
        main(sys.argv[1:])
    """)
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def one_error(res: subprocess.CompletedProcess | object) -> str:
    out = res.stderr if isinstance(res, subprocess.CompletedProcess) else res.output  # type: ignore[attr-defined]
    code = res.returncode if isinstance(res, subprocess.CompletedProcess) else res.exit_code  # type: ignore[attr-defined]
    assert code == 2, out
    assert out.startswith("error: ") and out.count("\n") == 1 and "Traceback" not in out, out
    return out.strip()


def grid_axes(n_axes: int, n_values: int) -> str:
    keys = ["lr", "weight_decay", "momentum", "label_smoothing"][:n_axes]
    lines = ["[grid]"]
    for k in keys:
        values = ", ".join(f"{(i + 1) * 1e-4:.6g}" if k != "momentum" else f"{i / (n_values + 1):.6g}"
                           for i in range(n_values))
        lines.append(f"{k} = [{values}]")
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_four_axes_of_100_values_refused_before_building_under_1gb(tmp_path):
    f = tmp_path / "big.toml"
    f.write_text(BASE.replace('optimizer = "sgd"', "") + 'optimizer = "sgd"\n' + grid_axes(4, 100))
    res = run_limited(["study", "run", str(f), "--dry-run", "--no-measure"], tmp_path)
    msg = one_error(res)
    assert "expands to 200,000,000 runs (100,000,000 cell(s) × 2 seed(s)), more than the limit of 10,000" in msg
    assert "--max-runs N" in msg and f"{f}:" in msg


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
@pytest.mark.parametrize("seeds", ["10000000", "9223372036854775807"])
def test_huge_seed_counts_are_one_error_in_bounded_memory(tmp_path, seeds):
    f = tmp_path / "seeds.toml"
    f.write_text(BASE.replace("seeds = 2", f"seeds = {seeds}"))
    msg = one_error(run_limited(["study", "run", str(f), "--dry-run", "--no-measure"], tmp_path))
    assert f"{f}:3: study.seeds: the study expands to {int(seeds):,} runs" in msg


def test_limit_is_raised_by_flag_or_key_and_checked_by_expand(tmp_path):
    text = BASE.replace("seeds = 2", "seeds = 6") + grid_axes(1, 3)  # 18 runs
    with pytest.raises(StudyError, match="expands to 18 runs"):
        parse_study(text.replace('name = "s"', 'name = "s"\nmax_runs = 10'))
    assert len(expand(parse_study(text.replace('name = "s"', 'name = "s"\nmax_runs = 18')))) == 18
    f = tmp_path / "s.toml"
    f.write_text(text.replace('name = "s"', 'name = "s"\nmax_runs = 10'))
    assert len(expand(read_study(f, max_runs=20))) == 18  # the flag wins over the file
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--dry-run", "--no-measure", "--max-runs", "5"])
    assert "more than the limit of 5" in one_error(res)
    s = parse_study(BASE)
    assert s.max_runs == DEFAULT_MAX_RUNS == 10_000
    from dataclasses import replace

    with pytest.raises(StudyError, match="expands to 2 runs, more than the limit of 1"):
        expand(replace(s, max_runs=1))  # a Study built in Python is checked too


@pytest.mark.parametrize("text, expected", [
    (BASE + "[grid]\nlr = [" + "[" * 5000 + "]" * 5000 + "]\n", "nested too deeply"),
    ("x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n", "nested too deeply"),
    (BASE.replace("seeds = 2", "seeds = [0, 4294967296]"), "seeds must be in 0..4,294,967,295"),
    (BASE.replace("seeds = 2", "seeds = [-1, 2]"), "seeds must be in 0..4,294,967,295"),
    (BASE + "lr = inf\n", "base.lr: expected a finite number, got inf"),
    (BASE + "lr = nan\n", "base.lr: expected a finite number, got nan"),
    (BASE + "weight_decay = inf\n", "base.weight_decay: expected a finite number, got inf"),
    (BASE + "l2_penalty = -inf\n", "base.l2_penalty: expected a finite number, got -inf"),
    (BASE + "split_seed = -5\n", "base.split_seed: expected an integer in 0..4,294,967,295, got -5"),
    (BASE + "batch_size = " + "9" * 400 + "\n", "base.batch_size: expected an integer of at most 2,147,483,647"),
    (BASE + "[variants." + "v" * 300 + "]\n", "variant names are at most 64"),
    (BASE.replace('name = "s"', 'name = "' + "n" * 65 + '"'), "study.name: expected at most 64"),
    (BASE.replace('name = "s"', 'name = "s"\nmax_runs = 0'), "study.max_runs: expected a positive integer"),
], ids=lambda v: v if len(v) < 50 else f"text{len(v)}")
def test_bad_study_files_are_one_error(tmp_path, text, expected):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--dry-run", "--no-measure"])
    msg = one_error(res)
    assert expected in msg and len(msg) < 400, msg


def test_non_utf8_study_file_names_the_byte(tmp_path):
    f = tmp_path / "latin1.toml"
    f.write_bytes(BASE.encode() + "# café\n".encode("latin-1"))
    msg = one_error(CliRunner().invoke(cli, ["study", "run", str(f), "--dry-run"]))
    offset = len(BASE.encode()) + len("# caf")
    assert msg == f"error: {f}:8: not UTF-8 text: byte 0xe9 at byte offset {offset:,}; study files are UTF-8 TOML"


# ---------------------------------------------------------------- one split-size function


@pytest.mark.parametrize("limit", [None, 1000, 37])
@pytest.mark.parametrize("dataset, val_fraction", [("fashion-mnist", 0.1), ("synthetic:n=300,test=120", 0.25),
                                                   ("cifar10", 0.0)])
def test_dry_run_counts_follow_the_splitter(dataset, val_fraction, limit):
    """The estimate counts what split_indices returns (it used to count 6,000 val / 10,000 test for
    fashion-mnist with limit=1000 where the split gives 111 / 1,000)."""
    import torch

    from ablab.data.catalog import get_spec
    from ablab.data.split import split_indices
    from ablab.study.cost import sample_counts
    from ablab.train.config import TrainConfig

    config = TrainConfig(dataset=dataset, val_fraction=val_fraction, limit=limit)
    n_train, n_val, n_test, shape = sample_counts(config)
    spec = get_spec(dataset)
    n_tr_off, n_te_off = (300, 120) if dataset.startswith("synthetic") else (spec.n_train, spec.n_test)
    y = torch.arange(n_tr_off) % 10
    tr, va, te = split_indices(y, n_te_off, val_fraction=val_fraction, split_seed=3, stratified=True, limit=limit,
                               y_test=torch.arange(n_te_off) % 10)
    assert (n_train, n_val, n_test) == (len(tr), len(va), len(te))
    if dataset == "fashion-mnist" and limit == 1000:
        assert (n_train, n_val, n_test) == (1000, 111, 1000)
    assert shape == ((1, 28, 28) if dataset != "cifar10" else (3, 32, 32))


@pytest.mark.parametrize("limit", [None, 150])
def test_dry_run_counts_equal_the_real_runs(tmp_path, limit):
    """End to end: the estimate's sample counts are the trainer's own counts for the same config."""
    from ablab.store import Store
    from ablab.study.cost import sample_counts
    from ablab.study.executor import InlineExecutor
    from ablab.study.runner import run_study

    text = BASE.replace("seeds = 2", "seeds = 1") + ("limit = 150\n" if limit else "") + "val_fraction = 0.15\n"
    s = parse_study(text)
    run_study(s, tmp_path, executor=InlineExecutor())
    with Store(tmp_path, readonly=True) as store:
        (run,) = store.runs()
        info = run.result["info"]
    n_train, n_val, n_test, _ = sample_counts(expand(s)[0].config)
    assert (n_train, n_val, n_test) == (info["n_train"], info["n_val"], info["n_test"])


# ---------------------------------------------------------------- the whole study is checked first


@pytest.mark.parametrize("extra, expected", [
    ('model = "conv(6,"\n', "s.toml:7: base.model: 'conv(6,' does not build for synthetic"),
    ('[variants.baseline]\n[variants.x]\ndataset = "synthetic:n=abc"\n',
     "s.toml:10: variants.x.dataset: dataset 'synthetic:n=abc': option n='abc' is not valid"),
    ('[variants.baseline]\n[variants.big]\nmodel = "conv(6,5) linear(10)"\ndataset = "synthetic:n=50,shape=1x3x3"\n',
     "s.toml:9: variants.big.model: 'conv(6,5) linear(10)' does not build for synthetic"),
    ('data_dir = "{empty}"\ndataset = "fashion-mnist"\n',
     "s.toml:8: base.dataset: dataset 'fashion-mnist' not found in --data-dir"),
    ('val_fraction = 0\n[variants.baseline]\n[grid]\nlr = [0.1, 0.01]\n',
     "s.toml:9: base.val_fraction: is 0, but the study's metric 'best_val_acc' needs a validation split"),
], ids=["bad-spec", "bad-dataset-option", "shape-mismatch", "absent-dataset", "metric-without-val"])
def test_a_study_that_can_only_fail_is_refused_before_anything_runs(tmp_path, extra, expected):
    text = BASE.replace('model = "mlp:8,10"\n', "") if "model" in extra else BASE
    text = text.replace('dataset = "synthetic:n=200,test=100"\n', "") if "dataset =" in extra.split("[")[0] else text
    text = text.replace('name = "s"', 'name = "s"\nmetric = "best_val_acc"') if "val_fraction" in extra else text
    (tmp_path / "empty").mkdir()
    f = tmp_path / "s.toml"
    f.write_text(text + extra.replace("{empty}", str(tmp_path / "empty")))
    for args in (["--workers", "0"], ["--dry-run", "--no-measure"]):
        res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "out"), *args])
        assert res.exit_code == 2, res.output
        assert res.output.startswith(f"error: {tmp_path / expected.split(':')[0]}:") and expected.split(":", 1)[1] in \
            res.output, res.output
        assert "Traceback" not in res.output
        assert not (tmp_path / "out").exists()  # nothing was created, nothing ran


@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL of a worker")
def test_a_killed_worker_makes_the_study_exit_3_and_say_which_run(tmp_path):
    """`study run` used to exit 0 after a worker was killed; now it names the run and exits 3."""
    import signal
    import time

    from ablab.store import Store

    f = tmp_path / "s.toml"
    f.write_text(BASE.replace("seeds = 2", "seeds = 1").replace("n=200,test=100", "n=20000,test=100")
                 .replace("epochs = 1", "epochs = 50"))
    out = tmp_path / "out"
    code = "import sys; from ablab.cli import main; main(sys.argv[1:])"
    p = subprocess.Popen([sys.executable, "-c", code, "study", "run", str(f), "--out", str(out), "--workers", "1",
                          "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    pid = None
    deadline = time.time() + 120
    while pid is None and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
        if (out / "study.sqlite").exists():
            try:
                with Store(out, readonly=True) as store:
                    row = store.db.execute("SELECT pid FROM runs WHERE status = 'running'").fetchone()
                    pid = row[0] if row and row[0] else None
            except Exception:  # the driver may be creating the store right now
                pid = None
    assert pid is not None, "the run never started"
    os.kill(pid, signal.SIGKILL)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 3, (stdout, stderr)
    assert stderr.startswith("error: 1 of 1 run(s) failed; the same command retries them"), stderr
    assert "baseline/seed0: worker process died (exit code -9)" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("args, expected", [
    (["--seed", "-1"], "error: --seed: expected an integer in 0..4,294,967,295, got -1"),
    (["--seed", "99999999999999999999999"], "error: --seed: expected an integer in 0..4,294,967,295, got 9999999"),
    (["--batch-size", "9" * 30], "error: --batch-size: expected an integer of at most 2,147,483,647, got 999"),
    (["--lr", "inf"], "error: --lr: expected a finite number, got inf"),
    (["--lr", "nan"], "error: --lr: expected a finite number, got nan"),
])
def test_train_flags_are_range_checked_before_anything_runs(args, expected):
    res = CliRunner().invoke(cli, ["train", "mlp:8,10", "--data", "synthetic", "--epochs", "1", "-q", *args])
    assert one_error(res).startswith(expected)


def test_oversized_study_file_is_refused_before_reading(tmp_path):
    f = tmp_path / "huge.toml"
    f.write_bytes(BASE.encode() + b"#" * (1 << 20))  # a valid study followed by 1 MiB of comment
    msg = one_error(CliRunner().invoke(cli, ["study", "run", str(f), "--dry-run"]))
    size = f.stat().st_size
    assert msg == f"error: {f}: {size:,} bytes is more than the limit of {1 << 20:,} for this file"


def test_study_file_with_utf8_bom_reads(tmp_path):
    f = tmp_path / "bom.toml"
    f.write_bytes(b"\xef\xbb\xbf" + BASE.encode())  # Windows editors write one
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--dry-run", "--no-measure"])
    assert res.exit_code == 0, res.output
