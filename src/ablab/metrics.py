"""The metric names, defined once: what the trainer records per epoch, what the store keeps, what a study
may decide on and what the report summarizes. Accuracies are fractions in [0, 1]; losses are mean
cross-entropy in nats; times are seconds.
"""

from __future__ import annotations

CONFIDENCE = 0.95  # the level of every interval and test unless a study sets `confidence`

# recorded after every epoch (besides the epoch number), in this order: trainer history, store columns, CSV
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
                 "train_time_s", "eval_time_s")

# one number per finished run, derived from its epochs: key -> (short title, what it means)
RUN_METRICS: dict[str, tuple[str, str]] = {
    "test_acc": ("final test acc", "test accuracy after the last epoch"),
    "test_acc_at_best_val": ("test acc @ best val", "test accuracy at the epoch of best validation accuracy"),
    "train_acc": ("train acc", "training accuracy of the last epoch"),
    "gap": ("generalization gap", "train acc − test acc, last epoch (points)"),
    "val_acc": ("val acc", "validation accuracy after the last epoch"),
    "best_val_acc": ("best val acc", "best validation accuracy over the epochs"),
}

# what a study may decide on ([study] metric): key -> what it means
DECIDING_METRICS: dict[str, str] = {k: RUN_METRICS[k][1]
                                    for k in ("test_acc", "test_acc_at_best_val", "val_acc", "best_val_acc")}

# accuracies live in [0, 1] (figures clip their bands to it); losses in [0, inf)
BOUNDS: dict[str, tuple[float, float]] = {"acc": (0.0, 1.0), "loss": (0.0, float("inf"))}


def bounds(metric: str) -> tuple[float, float]:
    """The range a metric's values (and so its intervals) can take: accuracies [0, 1], losses [0, inf)."""
    if metric.endswith("acc") or "_acc_" in metric:
        return BOUNDS["acc"]
    if metric.endswith("loss"):
        return BOUNDS["loss"]
    return (float("-inf"), float("inf"))
