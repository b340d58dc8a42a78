"""Per-class test accuracy: for each cell, the accuracy on each class's test samples, mean ± interval over
seeds, and the confusion matrix summed over the seeds of one cell.

Each finished run of ablab's trainer records the confusion matrix of the weights behind its final metrics
(``test_confusion``: ``[true][predicted]`` counts; its trace over the test size is exactly the run's test
accuracy, checked here). A class's accuracy in one run is its diagonal count over its row sum (recall);
the interval is the Student-t interval over seeds, as for every other metric. Runs of your own training
loop record no confusion matrix, and a study of them has no per-class table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ablab.errors import UserError
from ablab.report.stats import Interval, t_interval


@dataclass
class PerClass:
    classes: list[str]
    accuracy: dict[str, list[Interval]]  # cell -> one interval per class (fractions), over seeds
    confusion: dict[str, list[list[int]]]  # cell -> [true][predicted] counts summed over its seeds
    seeds: dict[str, int]  # cell -> finished runs with a confusion matrix

    def table(self) -> list[dict[str, Any]]:
        """One row per class × cell: mean, interval and n (finished seeds), for CSV and DataFrames."""
        return [{"class": name, "cell": cell, "accuracy": iv[k].mean, "lo": iv[k].lo, "hi": iv[k].hi, "n": iv[k].n}
                for k, name in enumerate(self.classes) for cell, iv in self.accuracy.items()]


def _confusion(r: Any) -> list[list[int]] | None:
    """The run's recorded confusion matrix, checked against its size and its recorded test accuracy."""
    result = r.result or {}
    m = result.get("test_confusion")
    if m is None:
        return None
    k = len(m) if isinstance(m, list) else 0
    ok = k > 0 and all(isinstance(row, list) and len(row) == k for row in m) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for row in m for v in row)
    n = sum(sum(row) for row in m) if ok else 0
    acc = (result.get("final") or {}).get("test_acc")
    n_test = (result.get("info") or {}).get("n_test")
    if not ok or n == 0 or (n_test is not None and n != n_test) or (
            acc is not None and sum(m[i][i] for i in range(k)) / n != acc):
        raise UserError(f"run {r.label}: test_confusion in the study store does not match the run's test size and "
                        "accuracy; the store was edited or is corrupt")
    return m


@dataclass
class PerClassBuilder:
    """Gathers the per-class results while the runs stream past (one cell at a time, any number of runs):
    per cell, each seed's per-class accuracies and the summed confusion matrix — never a run's matrix kept."""

    classes: list[str] | None = None
    disagree: bool = False  # runs name different classes: no per-class number is comparable across them
    accs: dict[str, list[list[float | None]]] = field(default_factory=dict)  # cell -> per seed, per class
    confusion: dict[str, list[list[int]]] = field(default_factory=dict)

    def add(self, r: Any) -> None:
        if r.status != "done" or (m := _confusion(r)) is None:
            return
        names = ((r.result or {}).get("info") or {}).get("classes")
        names = [str(c) for c in names] if isinstance(names, list) and len(names) == len(m) else \
            [str(i) for i in range(len(m))]
        if self.classes is not None and names != self.classes:
            self.disagree = True
            return
        self.classes = names
        k = len(m)
        self.accs.setdefault(r.cell, []).append([m[i][i] / sum(m[i]) if sum(m[i]) else None for i in range(k)])
        total = self.confusion.setdefault(r.cell, [[0] * k for _ in range(k)])
        for i in range(k):
            for j in range(k):
                total[i][j] += m[i][j]

    def build(self, cells: list[str], confidence: float) -> PerClass | None:
        """The per-class table, cells in report order (None when no run recorded a matrix, or runs disagree)."""
        if self.classes is None or self.disagree:
            return None
        order = [c for c in cells if c in self.accs] + sorted(self.accs.keys() - set(cells))
        k = len(self.classes)
        accuracy = {c: [t_interval([a[i] for a in self.accs[c] if a[i] is not None], confidence) for i in range(k)]
                    for c in order}
        return PerClass(self.classes, accuracy, {c: self.confusion[c] for c in order},
                        {c: len(self.accs[c]) for c in order})


def confusion_cell(pc: PerClass, best: str | None) -> str | None:
    """The cell whose confusion matrix the report draws: the best on validation, else the only one."""
    if best in pc.confusion:
        return best
    return next(iter(pc.confusion)) if len(pc.confusion) == 1 else None
