"""CSV export of stored runs: one row per run, for spreadsheets, pandas or R.

The columns most people compare come first (identity, the lesson knobs, results), then every
other config key, so a file is self-describing and can be re-run. Accuracies are fractions
0–1 (as stored) so the numbers need no unit guessing. Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trainer.config import KEYS
from trainer.store.csvfile import (
    ExportError,
    cells,
    companion_path,
    default_export_path,
    write_rows,
)
from trainer.store.record import RunRecord

_LEAD_CONFIG = ("seed", "dataset", "batch_norm", "init", "shuffle", "batch_size", "head", "l2",
                "lr", "optimizer", "epochs")
_RESULTS = ("status", "epochs_done", "best_epoch", "best_val_acc", "best_val_loss", "test_acc",
            "test_loss", "params", "train_seconds", "images_per_s", "device",
            "seconds_per_epoch")

CSV_COLUMNS: tuple[str, ...] = (
    "run_id", "preset", "variant", "repeat",
    *_LEAD_CONFIG,
    *_RESULTS,
    *(k for k in KEYS if k not in _LEAD_CONFIG),
    "group", "created", "error",
)

__all__ = ["CSV_COLUMNS", "ExportError", "default_export_path", "record_row", "summary_path",
           "write_csv"]


def record_row(record: RunRecord) -> dict[str, str]:
    """One CSV row (every column of CSV_COLUMNS) for a run record."""
    s = record.summary
    values: dict[str, Any] = {
        "run_id": record.run_id, "preset": record.preset, "variant": record.variant,
        "repeat": record.repeat, "status": record.status.value,
        "epochs_done": record.epochs_done, "params": record.params,
        "device": record.env.device or None, "seconds_per_epoch": record.seconds_per_epoch,
        "group": record.group, "created": record.created,
        # One line: the first line is the reason; the rest (fix-it text) stays in the store.
        "error": " ".join(record.error_line.split()) or None,
        "best_epoch": record.best_epoch, "best_val_acc": s.best_val_acc,
        "best_val_loss": s.best_val_loss, "test_acc": s.test_acc, "test_loss": s.test_loss,
        "train_seconds": s.train_seconds, "images_per_s": s.images_per_s,
    }
    for key in KEYS:
        values[key] = record.config.get(key)
    return cells(values, CSV_COLUMNS)


def summary_path(path: str | Path) -> Path:
    """Where the lesson summary goes next to a run CSV: results.csv → results-summary.csv."""
    return companion_path(path, "summary")


def write_csv(records: Iterable[RunRecord], path: str | Path) -> Path:
    """Write every record as a row (CSV_COLUMNS); returns the absolute path written."""
    return write_rows((record_row(rec) for rec in records), CSV_COLUMNS, path)
