"""``ablab study run|report|compare|presets`` and ``ablab runs ls``: thin wrappers over
:mod:`ablab.study.runner`, :mod:`ablab.report.render` and :mod:`ablab.store`.

Heavy imports (torch, matplotlib, scipy) happen inside the commands, so ``--help`` stays instant.
"""

from __future__ import annotations

import math
from itertools import islice
from pathlib import Path
from typing import Any

import click

from ablab.errors import UserError
from ablab.report.text import human_time, wall_line
from ablab.store import STATUSES, Store, find_stores
from ablab.study.cost import estimate
from ablab.study.executor import default_workers
from ablab.study.executor_registry import EXECUTORS, check_executor
from ablab.study.runner import run_study
from ablab.study.studyfile import default_out_dir, list_study_presets, read_study, resolve_study_path
from ablab.study.tensorboard import require_tensorboard
from ablab.study.validate import validate_study
from ablab.train.config import DEVICE_PATTERN

CTX = {"help_option_names": ["-h", "--help"]}


def _console() -> Any:
    """A rich console; when output is not a terminal (pipes, logs, tests) lines are not wrapped at 80."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    return console


@click.group("study", context_settings=CTX)
def study() -> None:
    """Run, report and compare multi-seed ablation studies.

    \b
    Example:
      ablab study run fashion-regularization
      ablab study run mlp-sweeps --out runs/mlp --workers 2
      ablab study report runs/fashion-regularization
    """


@study.command("run", context_settings=CTX)
@click.argument("file")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Study folder (default: runs/<name>).")
@click.option("--workers", "-w", type=click.IntRange(min=0),
              help="Parallel runs, one thread each (default: the number of cores; 0: in this process).")
@click.option("--dry-run", is_flag=True, help="List the runs and estimate their cost; run nothing.")
@click.option("--measure/--no-measure", default=True, show_default=True,
              help="--dry-run: time a few training steps of each model for the time estimate (loads torch).")
@click.option("--report/--no-report", "make_report", default=True, show_default=True,
              help="Write the report when the study is finished.")
@click.option("--executor", "executor_name", type=click.Choice(EXECUTORS.list()), default="local",
              show_default=True, help="Where runs execute: " + "; ".join(f"{e.name}: {e.help}" for e in
                                                                          EXECUTORS.values()) + ".")
@click.option("--address", help="--executor ray: the Ray cluster to join (auto: the one this machine is part "
              "of; ray://HOST:10001); default: start a local Ray instance.")
@click.option("--max-runs", type=click.IntRange(min=1), default=None,
              help="Refuse a study that expands past N runs (default: [study] max_runs, else 10,000).")
@click.option("--device", default=None, metavar="auto|cpu|cuda|cuda:N|mps",
              help="Where every run computes, overriding the study's device key (default: as the study says).")
@click.option("--rerun-changed", is_flag=True,
              help="Re-run the finished runs made with another version of your model file or data files "
                   "(without it, such a study is refused).")
@click.option("--runs-per-gpu", type=click.IntRange(min=1), default=1, show_default=True,
              help="Concurrent runs per GPU when runs go to GPUs (Ray: num_gpus = 1/K per run).")
@click.option("--tensorboard", is_flag=True, default=None,
              help="Write TensorBoard event files per run as epochs finish (OUT/tensorboard; watch with "
                   "tensorboard --logdir OUT/tensorboard). Default: the study's [study] tensorboard key.")
def run_cmd(file: str, out_dir: str | None, workers: int | None, dry_run: bool, measure: bool,
            make_report: bool, executor_name: str = "local", address: str | None = None,
            max_runs: int | None = None, device: str | None = None, rerun_changed: bool = False,
            runs_per_gpu: int = 1, tensorboard: bool | None = None) -> None:
    """Run a study: every variant × grid point × seed; resumes where it stopped.

    FILE is a study file (TOML) or a preset study name (see `ablab study presets`). Running the same
    command again skips finished runs and redoes interrupted or failed ones.

    \b
    Example:
      ablab study run fashion-regularization --dry-run
      ablab study run my-study.toml --out runs/mine --workers 2
      ablab study run mlp-sweeps --executor ray --address auto
    """


    console = _console()
    s = read_study(file, max_runs=max_runs)
    out = Path(out_dir) if out_dir else default_out_dir(s)
    if address is not None and executor_name != "ray":
        raise click.UsageError("--address needs --executor ray")
    if device is not None and not DEVICE_PATTERN.fullmatch(device):
        raise click.BadParameter(f"expected auto, cpu, cuda, cuda:N or mps, got {device!r}", param_hint="--device")
    validate_study(s)  # a study that could only fail stops here: exit 2, nothing created (validated once)
    check_executor(executor_name, address)  # e.g. Ray not installed: said before the progress bar starts
    if dry_run:
        _dry_run(console, s, out, measure, workers)
        return
    if tensorboard or (tensorboard is None and s.tensorboard):
        require_tensorboard()  # before the progress bar starts
    _run(console, s, out, workers, make_report, executor_name, device=device, runs_per_gpu=runs_per_gpu,
         address=address, rerun_changed=rerun_changed, tensorboard=tensorboard)


def _dry_run(console: Any, s: Any, out: Any, measure: bool, workers: int | None) -> None:
    from ablab.report.terminal import cost_view

    for item in cost_view(s.name, out, estimate(s, out, measure=measure), workers or default_workers()):
        console.print(item)


def _run(console: Any, s: Any, out: Any, workers: int | None, make_report: bool, executor: str = "local", *,
         device: str | None = None, runs_per_gpu: int = 1, address: str | None = None,
         rerun_changed: bool = False, tensorboard: bool | None = None) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )


    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("epochs"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=console, transient=False)
    state: dict[str, Any] = {"task": None, "epochs_seen": {}, "epochs": {}}

    def on_event(kind: str, info: dict[str, Any]) -> None:
        if kind == "study_start":
            state["epochs"] = info["epochs"]
            total = sum(info["epochs"].values())
            console.print(f"study {info['name']}: {info['total']} runs, {info['done']} already finished, "
                          f"{info['todo']} to run on {info['workers']} worker(s) → {info['out_dir']}")
            state["task"] = progress.add_task(s.name, total=total or 1)
        elif kind == "epoch":
            state["epochs_seen"][info["run_id"]] = state["epochs_seen"].get(info["run_id"], 0) + 1
            progress.advance(state["task"], 1)
        elif kind == "run_end":
            seen = state["epochs_seen"].get(info["run_id"], 0)
            rest = state["epochs"].get(info["run_id"], 0) - seen
            if rest > 0:  # early stopping, divergence or failure: the run's remaining epochs are done with
                progress.advance(state["task"], rest)
            console.print(_run_line(info))

    try:
        with progress:
            outcome = run_study(s, out, workers=workers, executor=executor, on_event=on_event, device=device,
                                runs_per_gpu=runs_per_gpu, address=address, validate=False,
                                rerun_changed=rerun_changed, tensorboard=tensorboard)
    except KeyboardInterrupt:
        console.print(f"interrupted; finished runs are kept in {out}. Run the same command again to resume.")
        raise SystemExit(130) from None
    if tensorboard or (tensorboard is None and s.tensorboard):
        console.print(f"TensorBoard: tensorboard --logdir {out / 'tensorboard'}")
    console.print(f"{outcome.ran} run(s) finished in this session ({human_time(outcome.session_wall_s)}), "
                  f"{outcome.skipped} were already done, {len(outcome.failed)} failed.")
    if outcome.failed:
        console.print("failed runs (rerun the command to retry; errors in `ablab runs ls --status failed`): "
                      + ", ".join(outcome.failed))
    if make_report:
        _report(console, out)
    else:
        from ablab.report.analysis import analyze

        console.print(wall_line(analyze(out)))
    if outcome.failed:
        _failed_exit(outcome)


RUNS_FAILED = 3  # exit code of a study in which a run failed (2 is a user error: nothing ran)


def _failed_exit(outcome: Any, shown: int = 20) -> None:
    """Say which runs failed and why on stderr, then exit with RUNS_FAILED."""
    lines = [f"error: {len(outcome.failed)} of {outcome.total} run(s) failed; the same command retries them "
             "(errors: ablab runs ls --status failed --errors)"]
    lines += [f"  {label}: {outcome.errors.get(label, 'unknown error')}" for label in outcome.failed[:shown]]
    if len(outcome.failed) > shown:
        lines.append(f"  ... and {len(outcome.failed) - shown} more")
    click.echo("\n".join(lines), err=True)
    raise SystemExit(RUNS_FAILED)


def _run_line(info: dict[str, Any]) -> str:
    status = info["status"]
    if status == "failed":
        return f"[red]✗[/red] {info['label']}  failed: {info.get('error', '')}"
    r = info.get("result", {})
    final = r.get("final") or {}
    acc = final.get("test_acc")
    acc_s = f"test {100 * float(acc):.2f}%" if isinstance(acc, int | float) else "test —"
    mark = "[green]✓[/green]" if status == "done" else "[yellow]![/yellow]"
    extra = ""
    if status == "diverged":
        d = r.get("diverged") or {}
        extra = f"  diverged at epoch {d.get('epoch')} (loss {d.get('loss')})"
    best = r.get("best_epoch")
    return (f"{mark} {info['label']}  {acc_s}  best-val epoch {best if best is not None else '—'}  "
            f"{float(r.get('wall_time_s') or 0):.1f} s{extra}")


def _report(console: Any, out: Any, report_dir: Any = None) -> None:
    from ablab.report.render import write_report
    from ablab.report.terminal import report_view

    written = write_report(out, report_dir)
    for item in report_view(written.analysis, written):
        console.print(item)


@study.command("report", context_settings=CTX)
@click.argument("study_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Report folder (default: DIR/report).")
def report_cmd(study_dir: str, out_dir: str | None) -> None:
    """Write the report of a study folder: HTML, Markdown + PNG, CSV, JSON.

    \b
    Example:
      ablab study report runs/fashion-regularization
    """
    _report(_console(), study_dir, out_dir)


@study.command("compare", context_settings=CTX)
@click.argument("dir_a", type=click.Path(exists=True, file_okay=False))
@click.argument("dir_b", type=click.Path(exists=True, file_okay=False))
@click.option("--metric", help="Metric to compare (default: study A's deciding metric).")
def compare_cmd(dir_a: str, dir_b: str, metric: str | None) -> None:
    """Compare two study folders cell by cell (Welch t-test per common cell, Holm-corrected).

    \b
    Example:
      ablab study compare runs/fashion-regularization runs/fashion-regularization-v2
    """
    from ablab.report.compare import compare_studies
    from ablab.report.terminal import compare_view

    console = _console()
    a, b, deltas, metric = compare_studies(dir_a, dir_b, metric)
    if not deltas:
        console.print(f"no common cells between {a.name} ({dir_a}) and {b.name} ({dir_b})")
        return
    for item in compare_view(a, dir_a, dir_b, deltas, metric):
        console.print(item)


@study.command("plan", context_settings=CTX)
@click.argument("study")
@click.option("--effect", type=float, default=0.5, show_default=True,
              help="The difference to detect, in percentage points of the deciding metric.")
@click.option("--power", "target", type=click.FloatRange(0.5, 0.999), default=0.8, show_default=True,
              help="Probability of detecting a true difference of that size.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="With a study file: the folder it ran into (default: runs/<name>).")
def plan_cmd(study: str, effect: float, target: float, out_dir: str | None) -> None:
    """Plan seeds from a finished (or pilot) study: seeds needed to detect EFFECT points, and the smallest
    difference the current seeds can detect, from the observed spread of the paired differences.

    STUDY is a study folder, or a study file / preset name whose runs (a pilot with a few seeds) are in
    --out or runs/<name>.

    \b
    Example:
      ablab study plan runs/fashion-regularization --effect 0.3
      ablab study plan pilot.toml --out runs/pilot --effect 0.5
    """

    from ablab.report.plan import plan_study
    from ablab.report.terminal import plan_view

    where = Path(study)
    if not where.is_dir():  # a study file or preset name: the folder it ran into

        where = Path(out_dir) if out_dir else default_out_dir(read_study(study))
        if not where.is_dir():
            raise UserError(f"{where}: no such study folder; run 'ablab study run {study}' first (a pilot with "
                            "2 or more seeds is enough), or give the folder with --out")
    try:
        p = plan_study(where, effect, target)
    except UserError as e:  # the library names the key; the CLI names the flag
        raise UserError(str(e).replace("effect:", "--effect:", 1).replace("power:", "--power:", 1)) from None
    console = _console()
    for item in plan_view(p):
        console.print(item)


@study.command("presets", context_settings=CTX)
@click.option("--show", "show", metavar="NAME", help="Print preset NAME's study file (to start your own from).")
def presets_cmd(show: str | None) -> None:
    """List the preset studies (run one with `ablab study run NAME`), or print one.

    \b
    Example:
      ablab study presets
      ablab study presets --show mlp-sweeps
    """

    if show is not None:
        click.echo(resolve_study_path(show.removesuffix(".toml") if "/" not in show else show)[1], nl=False)
        return
    for name in list_study_presets():
        s = read_study(name)
        n = len(s.seeds) * len(s.variants) * math.prod(len(v) for _, v in s.grid)
        click.echo(f"{name:31s} {n:4d} runs  {s.description.splitlines()[0] if s.description else ''}")


@click.group("runs", context_settings=CTX)
def runs() -> None:
    """List runs in study stores.

    \b
    Example:
      ablab runs ls runs/fashion-regularization --status failed
    """


@runs.command("ls", context_settings=CTX)
@click.argument("where", default="runs", type=click.Path())
@click.option("--study", "study_name", help="Only this study.")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--variant", help="Only this variant.")
@click.option("--errors", is_flag=True, help="Print the error of failed runs.")
def runs_ls(where: str, study_name: str | None, status: str | None, variant: str | None, errors: bool) -> None:
    """List runs of the study folder WHERE (or of every study folder under it; default: runs/).

    \b
    Example:
      ablab runs ls
      ablab runs ls runs/mlp-sweeps --variant dropout --status done
    """
    from ablab.report.terminal import runs_lines

    stores = find_stores(where)
    if not stores:
        raise UserError(f"{where}: no study store (study.sqlite) here or in its subfolders")
    query = {"status": status, "variant": variant}
    widths = (0, 0, 0)
    for path in stores:  # the widest columns first (SQLite's MAX), so the lines can stream
        with Store(path, readonly=True) as store:
            widths = tuple(map(max, widths, store.list_widths(study_name, **query)))  # type: ignore[assignment]
    seen, failures = [0], []

    def listed() -> Any:
        for path in stores:
            with Store(path, readonly=True) as store:
                for r in store.list_runs(study_name, **query):
                    seen[0] += 1
                    if errors and r.error:
                        failures.append(f"{r.study} {r.label}: {r.error}")
                    yield r

    lines = runs_lines(listed(), widths)
    while chunk := list(islice(lines, 2000)):  # one write per 2,000 lines
        click.echo("\n".join(chunk))
    click.echo(f"{seen[0]} run(s)")
    for f in failures:
        click.echo(f)
