"""The extension points are registries: a new executor (and, with it, the CLI choice and the Python
argument) is one ``register_executor`` call; nothing else in ablab is edited."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from click.testing import CliRunner

import ablab
from ablab.cli import cli
from ablab.study.executor import Executor, RunEvent, RunSpec, execute_run
from ablab.study.executor_registry import EXECUTORS, Placement, make_executor, placement, register_executor

TINY = """\
[study]
name = "ext"
seeds = 2

[base]
model = "mlp:8,10"
dataset = "synthetic:n=200,test=100"
epochs = 1
batch_size = 50

[variants.baseline]
[variants.wide]
model = "mlp:32,10"
"""


class CountingExecutor(Executor):
    """Runs specs in this process, newest first, and remembers what it was given."""

    built: list[Placement] = []
    labels: list[str] = []

    def __init__(self, where: Placement) -> None:
        self.workers = 1
        CountingExecutor.built.append(where)

    def run(self, specs: Iterable[RunSpec]) -> Iterator[RunEvent]:
        for spec in reversed(list(specs)):
            CountingExecutor.labels.append(spec.label)
            events: list[RunEvent] = []
            execute_run(spec, events.append)
            yield from events


@pytest.fixture
def counting():
    CountingExecutor.built, CountingExecutor.labels = [], []
    register_executor("counting", CountingExecutor, help="test executor")
    yield CountingExecutor
    EXECUTORS.unregister("counting")


def test_a_registered_executor_runs_a_study_from_python(tmp_path, counting):
    f = tmp_path / "ext.toml"
    f.write_text(TINY)
    result = ablab.run_study(f, tmp_path / "out", executor="counting", report=False, progress=False)
    assert result.outcome.ran == 4 and not result.outcome.failed
    assert sorted(counting.labels) == ["baseline/seed0", "baseline/seed1", "wide/seed0", "wide/seed1"]
    # runs on device "auto" (the default) may go to a GPU: the placement says so, the executor decides
    assert [(p.max_workers, p.gpu, p.device) for p in counting.built] == [(4, True, None)]
    again = ablab.run_study(f, tmp_path / "out", executor="counting", report=False, progress=False)
    assert again.outcome.skipped == 4 and again.outcome.ran == 0


def test_a_registered_executor_is_a_cli_choice(tmp_path, counting):
    f = tmp_path / "ext.toml"
    f.write_text(TINY)
    # the option's choices are read when the command is built: build it anew, as a new process would
    import importlib

    import ablab.cli.study as study_cli

    fresh = importlib.reload(study_cli)
    res = CliRunner().invoke(fresh.study, ["run", str(f), "--out", str(tmp_path / "cli"), "--executor", "counting",
                                           "--no-report"])
    assert res.exit_code == 0, res.output
    assert "4 run(s) finished" in res.output and len(counting.labels) == 4
    importlib.reload(study_cli)


def test_unknown_executor_names_the_known_ones():
    known = r"unknown executor 'rya'; did you mean 'ray'\? \(known: local, inline, ray"
    with pytest.raises(ablab.UserError, match=known):
        make_executor("rya", placement(["cpu"]))
    res = CliRunner().invoke(cli, ["study", "run", "mlp-sweeps", "--executor", "rya"])
    assert res.exit_code == 2 and "'rya' is not one of 'local', 'inline', 'ray'" in res.output


def test_device_is_placed_by_one_rule():
    assert placement(["auto", "cpu"]).gpu and not placement(["cpu"]).gpu
    assert not placement(["auto"], device="cpu").gpu and placement(["cpu"], device="cuda").gpu
    assert placement(["auto"], device="cuda:1").pinned == "cuda:1"
    assert placement(["auto"], device="cuda").pinned is None and placement(["cpu"]).pinned is None
    with pytest.raises(ablab.UserError, match="only the ray executor joins a cluster"):
        make_executor("local", placement(["cpu"], address="auto"))


def _read_csv(path):
    """label, then pixels: a 2x2 grey image per row."""
    import numpy as np

    rows = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    return rows[:, 1:].reshape(-1, 1, 2, 2), rows[:, 0].astype(np.int64), None, None, {"format": "csv"}


def _csv_sizes(path):
    with open(path) as f:
        return sum(1 for line in f if line.strip()), 0, (1, 2, 2)


@pytest.fixture
def csv_source(tmp_path):
    import numpy as np

    from ablab.data.source_registry import SOURCES, register_source

    register_source("csv", read=_read_csv, files=lambda p: [p], sizes=_csv_sizes, help="test source")
    gen = np.random.default_rng(0)
    y = np.arange(120) % 3
    x = np.clip(0.2 + 0.3 * y[:, None] + 0.1 * gen.normal(size=(120, 4)), 0, 1)  # pixels in [0, 1]
    f = tmp_path / "tiny.csv"
    np.savetxt(f, np.column_stack([y, x]), delimiter=",", fmt="%.6f")
    yield f
    SOURCES.unregister("csv")


def test_a_registered_data_source_loads_and_sizes_a_study(tmp_path, csv_source, counting):
    from ablab.data import load_dataset, source_sizes

    ds = load_dataset(f"csv:{csv_source}")
    assert ds.input_shape == (1, 2, 2) and ds.num_classes == 3
    assert source_sizes(f"csv:{csv_source}") == (96, 24, (1, 2, 2))  # 20% held out as the test split
    f = tmp_path / "csv.toml"
    text = TINY.replace('dataset = "synthetic:n=200,test=100"', f'dataset = "csv:{csv_source}"')
    f.write_text(text.replace('"mlp:32,10"', '"mlp:32,3"').replace('"mlp:8,10"', '"mlp:8,3"'))
    result = ablab.run_study(f, tmp_path / "out", executor="counting", report=False, progress=False)
    assert result.outcome.ran == 4 and not result.outcome.failed, result.outcome.errors
    res = CliRunner().invoke(cli, ["study", "run", str(f), "--out", str(tmp_path / "dry"), "--dry-run",
                                   "--no-measure"])
    assert res.exit_code == 0 and "4 runs" in res.output, res.output


def test_an_unknown_source_prefix_says_what_is_known():
    from ablab.data.source_registry import parse_source

    with pytest.raises(ablab.UserError, match=r"unknown data source 'nzp:'.*known: folder, idx, npz"):
        parse_source("nzp:x.npz")
