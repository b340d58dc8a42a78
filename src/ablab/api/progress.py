"""Progress bars for interactive sessions, fed by the library's callbacks (the library never draws).

``fit`` and ``run_study`` of the top-level API pick one when the session is interactive — a Jupyter
kernel (an HTML bar updated in place) or a terminal REPL (a rich bar on stderr) — and stay quiet in
scripts, tests and pipelines. Redraws are throttled to ``MIN_INTERVAL_S``.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any

MIN_INTERVAL_S = 0.25  # seconds between redraws


def _shell() -> str:
    """The IPython shell's class name, or "" outside IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return ""
    try:
        ip = ipython.get_ipython()
    except AttributeError:
        return ""
    return type(ip).__name__ if ip is not None else ""


def in_notebook() -> bool:
    return _shell() == "ZMQInteractiveShell"


def is_interactive() -> bool:
    """A notebook, IPython, or a Python REPL (``python -i`` included) whose stderr is a terminal."""
    if in_notebook():
        return True
    repl = bool(_shell()) or hasattr(sys, "ps1") or bool(sys.flags.interactive)
    return repl and sys.stderr.isatty()


class _Bar:
    """One bar: an HTML ``<progress>`` updated in place in a notebook, else a rich bar on stderr."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done, self.text = max(total, 1), label, 0, ""
        self.last = 0.0
        self.handle: Any = None
        self.rich: Any = None
        if in_notebook():
            from IPython.display import HTML, display

            self.handle = display(HTML(self._html()), display_id=True)
        else:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.rich = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self.rich.start()
            self.task = self.rich.add_task(label, total=self.total)

    def _html(self) -> str:
        return (f"<div><progress value='{self.done}' max='{self.total}' style='width:300px'></progress> "
                f"{html.escape(self.label)} {self.done}/{self.total} {html.escape(self.text)}</div>")

    def update(self, done: int, text: str = "", force: bool = False) -> None:
        self.done, self.text = min(done, self.total), text or self.text
        now = time.monotonic()
        if not force and now - self.last < MIN_INTERVAL_S:
            return
        self.last = now
        if self.handle is not None:
            from IPython.display import HTML

            self.handle.update(HTML(self._html()))
        elif self.rich is not None:
            self.rich.update(self.task, completed=self.done, description=f"{self.label} {self.text}")

    def close(self, text: str = "") -> None:
        self.update(self.done, text, force=True)
        if self.rich is not None:
            self.rich.stop()
            if text:
                print(f"{self.label} {text}", file=sys.stderr)


class FitProgress:
    """A ``fit`` callback: a bar over all training steps, with the last epoch's accuracies."""

    def __init__(self, epochs: int) -> None:
        self.epochs, self.steps = epochs, 1
        self.bar: _Bar | None = None

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "start":
            self.steps = int(data["steps_per_epoch"])
            self.bar = _Bar(self.epochs * self.steps, f"{data.get('dataset_source', '')} ·")
        elif self.bar is None:
            return
        elif event == "progress":
            self.bar.update((int(data["epoch"]) - 1) * self.steps + int(data["batch"]), f"epoch {data['epoch']}")
        elif event == "epoch":
            val = f" val {100 * data['val_acc']:.2f}%" if data.get("val_acc") is not None else ""
            test = f" test {100 * data['test_acc']:.2f}%" if data.get("test_acc") is not None else ""
            self.bar.update(int(data["epoch"]) * self.steps, f"epoch {data['epoch']}:{val}{test}", force=True)
        elif event == "end":
            self.bar.close(self.bar.text)  # the last epoch's line stays


class StudyProgress:
    """A ``run_study`` on_event callback: a bar over all epochs of the runs to do."""

    def __init__(self) -> None:
        self.bar: _Bar | None = None
        self.done = 0
        self.left: dict[int, int] = {}

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        if kind == "study_start":
            self.left = {int(k): int(v) for k, v in info["epochs"].items()}
            self.bar = _Bar(sum(self.left.values()), f"study {info['name']}:")
        elif self.bar is None:
            return
        elif kind == "epoch":
            self.done += 1
            self.left[info["run_id"]] = self.left.get(info["run_id"], 1) - 1
            self.bar.update(self.done, f"{info['label']} epoch {info['epoch']}")
        elif kind == "run_end":
            self.done += max(0, self.left.pop(info["run_id"], 0))  # early stop / failure: its epochs are over
            self.bar.update(self.done, f"{info['label']} {info['status']}", force=True)
        elif kind == "study_end":
            o = info["outcome"]
            self.bar.close(f"{o.ran} run(s) finished, {o.skipped} already done, {len(o.failed)} failed")
