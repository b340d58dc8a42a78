"""The notebook layer: ``fit`` and ``run_study`` with a progress bar when the session is interactive,
``load_study`` for a finished study folder, and :class:`StudyResult`, which shows the study's report
inline and turns its tables into DataFrames. Exposed at the top level as ``ablab.fit``,
``ablab.run_study`` and ``ablab.load_study``.

    >>> result = ablab.fit(ablab.TrainConfig(model="lenet5", epochs=1, limit=2000))   # bar in Jupyter
    >>> result                                   # metrics table + learning curves
    >>> study = ablab.run_study("studies/own.toml", workers=0)   # writes runs/<name>/report/, like the CLI
    >>> study.to_pandas()                        # one row per run; "epochs", "summary", "comparisons" too

Importing this package is cheap (no torch); each function loads what it needs.
"""

from __future__ import annotations

import html
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ablab.api import progress as _progress
from ablab.api.progress import FitProgress, StudyProgress
from ablab.display import require_pandas
from ablab.errors import UserError
from ablab.store import Store, find_stores
from ablab.study.ownloop import in_process_only, register_in_process
from ablab.study.runner import default_out_dir
from ablab.study.runner import run_study as runner_run_study
from ablab.study.studyfile import Study, parse_study, read_study
from ablab.train.config import TrainConfig

TABLES = ("runs", "epochs", "summary", "comparisons", "per_class")


def fit(config: Any = None, *, dataset: Any = None, callback: Any = None, out_dir: str | Path | None = None,
        progress: bool | None = None, **fields: Any) -> Any:
    """Train one run: ``ablab.train.fit`` plus a progress bar when ``progress`` is True, or (None) when
    the session is interactive. ``config`` is a TrainConfig (or None: defaults); ``fields`` override
    its fields, e.g. ``ablab.fit(model="lenet5", epochs=1)``. ``dataset``: an ablab Dataset or a torch
    dataset. Returns the :class:`RunResult` (rendered as a table and curves in a notebook)."""
    from ablab.train.trainer import fit as train_fit

    if config is None:
        config = TrainConfig()
    if not isinstance(config, TrainConfig):
        raise UserError(f"config: expected an ablab.TrainConfig, got {type(config).__name__}")
    if fields:
        config = config.replace(**fields)
    bar = FitProgress(config.epochs) if (_progress.is_interactive() if progress is None else progress) else None
    if bar is None:
        return train_fit(config, callback=callback, out_dir=out_dir, dataset=dataset)

    def both(event: str, data: dict[str, Any]) -> None:
        bar(event, data)
        if callback is not None:
            callback(event, data)

    return train_fit(config, callback=both, out_dir=out_dir, dataset=dataset)


def run_study(study: Any, out_dir: str | Path | None = None, *, workers: int | None = None,
              executor: Any = "local", address: str | None = None, device: str | None = None,
              runs_per_gpu: int = 1, rerun_changed: bool = False, report: bool = True,
              progress: bool | None = None, on_event: Any = None, train: Any = None,
              tensorboard: bool | None = None) -> StudyResult:
    """Run (or resume) a study — a ``Study``, a study file path, a preset name or a dict shaped like a
    study file — into ``out_dir`` (default ``runs/<name>``) and write the same report ``ablab study run``
    writes. ``workers=0`` runs in this process. ``executor``: a registered name (``local``, ``inline``,
    ``ray`` with ``address``, see :mod:`ablab.study.executor_registry`) or an Executor. ``train``: your own
    training function ``train(run)`` (docs/own-loop.md), set as ``[base] train``; one defined inside a
    function or a notebook cannot be imported by worker processes, so its runs execute in this process.
    ``tensorboard``: write TensorBoard event files per run (default: the study's ``tensorboard`` key).
    Returns the :class:`StudyResult`."""
    from ablab.report.render import write_report

    if train is not None:
        ref = register_in_process(train)
        if isinstance(study, Study):
            raise UserError("run_study(train=...): pass the study as a file or a dict, not a parsed Study")
        doc = dict(study) if isinstance(study, dict) else tomllib.loads(read_study(study).text)
        doc["base"] = {**doc.get("base", {}), "train": ref}
        source = str(study) if not isinstance(study, dict) else "<dict>"
        study = parse_study(doc, source)
        if in_process_only(ref) and executor == "local":
            workers = 0
    if isinstance(study, dict):
        study = parse_study(study, "<dict>")
    s = study if isinstance(study, Study) else read_study(study)
    out = Path(out_dir) if out_dir is not None else default_out_dir(s)
    bar = StudyProgress() if (_progress.is_interactive() if progress is None else progress) else None

    def events(kind: str, info: dict[str, Any]) -> None:
        for cb in (bar, on_event):
            if cb is not None:
                cb(kind, info)

    outcome = runner_run_study(s, out, workers=workers, executor=executor, address=address, device=device,
                               runs_per_gpu=runs_per_gpu, rerun_changed=rerun_changed, on_event=events,
                               tensorboard=tensorboard)
    result = StudyResult(out, outcome)
    if report:
        result.report_paths = write_report(out)
    return result


def load_study(study_dir: str | Path) -> StudyResult:
    """A finished (or partly finished) study folder, for display and DataFrames."""

    stores = find_stores(study_dir)
    if not stores:
        raise UserError(f"{study_dir}: no study store (study.sqlite) here; run the study first "
                        "(ablab.run_study or 'ablab study run')")
    if len(stores) > 1:
        raise UserError(f"{study_dir}: holds {len(stores)} studies ({', '.join(str(p.parent) for p in stores)}); "
                        "load one of those folders")
    return StudyResult(stores[0].parent)


class StudyResult:
    """A study folder: its report inline in a notebook, its tables as DataFrames."""

    def __init__(self, study_dir: Path, outcome: Any = None) -> None:
        self.dir = Path(study_dir)
        self.outcome = outcome  # the StudyOutcome of run_study (None when loaded)
        self.report_paths: Mapping[str, Path] = {}  # what write_report wrote (name -> path)

    def __repr__(self) -> str:
        return f"StudyResult({str(self.dir)!r})"

    def report(self) -> Any:
        """The report's numbers (``ablab.report.analysis.StudyReport``)."""
        from ablab.report.analysis import analyze

        return analyze(self.dir)

    def _report_html(self) -> str:
        """The report's HTML: the file ``write_report`` wrote when it is current, else written now."""
        from ablab.report.render import write_report

        page = self.report_paths.get("html") or self.dir / "report" / "report.html"
        store = self.dir / "study.sqlite"
        stale = not page.is_file() or (store.is_file() and store.stat().st_mtime > page.stat().st_mtime)
        if stale:
            self.report_paths = write_report(self.dir)
            page = self.report_paths["html"]
        return page.read_text(encoding="utf-8")

    def _repr_html_(self) -> str:
        """The report (tables and figures) inside a div, its CSS scoped to it so the notebook's own
        styles are untouched."""
        doc = self._report_html()
        css = "".join(re.findall(r"<style>(.*?)</style>", doc, re.S))
        body = re.search(r"<body[^>]*>(.*)</body>", doc, re.S)
        return (f"<div class='ablab-report'><style>{scope_css(css, '.ablab-report')}</style>"
                f"{body.group(1) if body else html.escape(doc)}</div>")

    def to_pandas(self, table: str = "runs") -> Any:
        """``runs`` (one row per run), ``epochs`` (one row per run and epoch), ``summary`` (one row per
        cell: mean, interval, n of every metric), ``comparisons`` or ``per_class`` (one row per class and
        cell: test accuracy mean, interval, n seeds); accuracies as fractions."""

        pd = require_pandas()
        if table not in TABLES:
            raise UserError(f"table: expected one of {', '.join(TABLES)}, got {table!r}")
        if table == "epochs":
            return pd.DataFrame(self._epoch_rows())
        from ablab.report.render import comparison_rows, summary_rows

        r = self.report()
        if table == "per_class" and r.per_class is None:
            raise UserError(f"{self.dir}: no per-class results (no finished run of ablab's trainer recorded a "
                            "confusion matrix; runs of your own training loop record none)")
        rows = {"runs": r.runs, "summary": summary_rows(r), "comparisons": comparison_rows(r),
                "per_class": r.per_class.table() if r.per_class else []}[table]
        return pd.DataFrame(rows)

    def _epoch_rows(self) -> list[dict[str, Any]]:
        rows = []
        with Store(find_stores(self.dir)[0]) as store:
            for run in store.runs():
                for m in store.epochs(run.id):
                    rows.append({"label": run.label, "variant": run.variant, "cell": run.cell, "seed": run.seed,
                                 "status": run.status, **m})
        return rows


def predict(source: Any, x: Any, *, model_ref: str | None = None, trust_code: bool = False,
            device: str | None = None) -> Any:
    """Class probabilities of ``x`` from a checkpoint folder or an ``nn.Module`` (see
    :func:`ablab.train.predict.predict`): ``(N, K)``, or ``(K,)`` for one sample."""
    from ablab.train.predict import predict as _predict

    return _predict(source, x, model_ref=model_ref, trust_code=trust_code, device=device)


def evaluate(checkpoint: str | Path, *, data: str | None = None, split: str = "test", dataset: Any = None,
             model_ref: str | None = None, trust_code: bool = False, device: str | None = None,
             data_dir: str | Path | None = None) -> EvalResult:
    """``ablab eval`` from Python, with per-class results: a checkpoint scored on its test split (or
    ``data``, another source, or ``dataset``, an ablab Dataset; ``split``: test, val or train), the
    recorded accuracy compared where the split is the same. Returns an :class:`EvalResult`."""
    from ablab.train.reload import evaluate_checkpoint

    return EvalResult(evaluate_checkpoint(checkpoint, data=data, split=split, dataset=dataset, model_ref=model_ref,
                                          trust_code=trust_code, device=device, data_dir=data_dir, per_class=True))


class EvalResult(dict):  # type: ignore[type-arg]
    """What :func:`evaluate` measured (a dict: test_acc, test_loss, n, split, reproduced, confusion,
    per_class, notes...); ``to_pandas()`` gives the per-class table, ``to_pandas("confusion")`` the matrix."""

    def to_pandas(self, table: str = "per_class") -> Any:
        pd = require_pandas()
        if table == "per_class":
            return pd.DataFrame(self["per_class"])
        if table == "confusion":
            names = self["classes"]
            return pd.DataFrame(self["confusion"], index=pd.Index(names, name="true"),
                                columns=pd.Index(names, name="predicted"))
        raise UserError(f"table: expected per_class or confusion, got {table!r}")


def scope_css(css: str, scope: str) -> str:
    """Prefix every selector of ``css`` with ``scope`` (``body`` becomes the scope itself)."""
    out = []
    for selectors, rules in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        scoped = []
        for sel in selectors.split(","):
            sel = sel.strip()
            scoped.append(scope if sel in ("body", "html") else f"{scope} {sel}")
        out.append(f"{','.join(scoped)}{{{rules}}}")
    return "".join(out)


__all__ = ["EvalResult", "StudyResult", "evaluate", "fit", "load_study", "predict", "run_study", "scope_css"]
