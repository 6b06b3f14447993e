"""What can be measured about one run: the metrics claims, statistics and tables name.

The one list of metric names (`METRICS`): lesson files are checked against it, statistics
summarise each of them, and the report formats them by their unit.
"""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any, NamedTuple

from trainer.store.record import RunRecord


class Metric(NamedTuple):
    label: str  # human name, used in sentences: "test accuracy"
    unit: str  # "acc" | "loss" | "epochs" | "seconds" | "count" | "ratio"
    higher_is_better: bool | None  # None: neither direction is "better" by itself


METRICS: dict[str, Metric] = {
    "test_acc": Metric("test accuracy", "acc", True),
    "test_loss": Metric("test loss", "loss", False),
    "best_val_acc": Metric("best validation accuracy", "acc", True),
    "best_epoch": Metric("best epoch", "epochs", None),
    "seconds_per_epoch": Metric("time per epoch", "seconds", False),
    "params": Metric("parameters", "count", None),
    # Stability: sample std of the epoch-to-epoch changes of val accuracy (a zig-zag detector
    # that ignores the steady upward trend a plain std of the curve would pick up).
    "val_acc_std": Metric("epoch-to-epoch swing of validation accuracy", "acc", False),
    "final_train_loss": Metric("final training loss", "loss", False),
    "epoch1_val_acc": Metric("validation accuracy after epoch 1", "acc", True),
}
"""Metric name → (label, unit kind, higher_is_better). Claims in presets name these keys."""


def _num(value: Any) -> float | None:
    """A finite float, or None (missing, non-numeric, NaN/inf from a diverged run)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def run_metrics(record: RunRecord) -> dict[str, float | None]:
    """Every METRICS value of one run record (None where it is not known yet)."""
    s = record.summary
    history = record.history
    val_accs = [v for v in (_num(h.val_acc) for h in history) if v is not None]
    changes = [b - a for a, b in itertools.pairwise(val_accs)]
    epoch1 = next((h for h in history if h.epoch == 1), None)
    return {
        "test_acc": _num(s.test_acc),
        "test_loss": _num(s.test_loss),
        "best_val_acc": _num(s.best_val_acc),
        "best_epoch": _num(s.best_epoch) if s.best_epoch else None,  # 0: no best epoch yet
        "seconds_per_epoch": record.seconds_per_epoch,
        "params": _num(record.params),
        # Two changes (three epochs) are the fewest that give a sample std.
        "val_acc_std": statistics.stdev(changes) if len(changes) >= 2 else None,
        "final_train_loss": _num(history[-1].train_loss) if history else None,
        "epoch1_val_acc": _num(epoch1.val_acc) if epoch1 else None,
    }
