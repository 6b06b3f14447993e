"""CSV export of stored runs: one row per run (and, on request, one per run and epoch), for
spreadsheets, pandas or R.

The columns most people compare come first (identity, the lesson knobs, results), then every
other config key, so a file is self-describing and can be re-run. Accuracies are fractions
0–1 (as stored) so the numbers need no unit guessing. Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
    "run_id", "preset", "launch", "variant", "repeat",
    *_LEAD_CONFIG,
    *_RESULTS,
    *(k for k in KEYS if k not in _LEAD_CONFIG),
    "created", "error",
)
"""Columns of the run CSV. `launch`: the id shared by the runs of one press of `r` (or one
`cnn-tui run`); `repeat`: 1-based, as the app shows it ("BN on #2")."""

HISTORY_COLUMNS: tuple[str, ...] = (
    "run_id", "preset", "launch", "variant", "repeat", "epoch", "train_loss", "train_acc",
    "val_loss", "val_acc", "lr", "seconds", "is_best", "lr_dropped",
)
"""Columns of the history CSV: one row per run and finished epoch (1-based), to plot the
curves elsewhere."""

__all__ = ["CSV_COLUMNS", "HISTORY_COLUMNS", "ExportError", "default_export_path",
           "history_path", "history_rows", "record_row", "summary_path", "write_csv",
           "write_history_csv"]


def record_row(record: RunRecord) -> dict[str, str]:
    """One CSV row (every column of CSV_COLUMNS) for a run record."""
    s = record.summary
    values: dict[str, Any] = {
        "run_id": record.run_id, "preset": record.preset, "launch": record.group,
        "variant": record.variant, "repeat": record.repeat + 1,
        "status": record.status.value,
        "epochs_done": record.epochs_done, "params": record.params,
        "device": record.env.device or None, "seconds_per_epoch": record.seconds_per_epoch,
        "created": record.created,
        # One line: the first line is the reason; the rest (fix-it text) stays in the store.
        "error": " ".join(record.error_line.split()) or None,
        "best_epoch": record.best_epoch, "best_val_acc": s.best_val_acc,
        "best_val_loss": s.best_val_loss, "test_acc": s.test_acc, "test_loss": s.test_loss,
        "train_seconds": s.train_seconds, "images_per_s": s.images_per_s,
    }
    for key in KEYS:
        values[key] = record.config.get(key)
    return cells(values, CSV_COLUMNS)


def history_rows(records: Iterable[RunRecord]) -> Iterator[dict[str, str]]:
    """The history CSV's rows (HISTORY_COLUMNS), run by run, epoch by epoch."""
    for rec in records:
        lead = {"run_id": rec.run_id, "preset": rec.preset, "launch": rec.group,
                "variant": rec.variant, "repeat": rec.repeat + 1}
        for h in rec.history:
            yield cells({**lead, **h._asdict()}, HISTORY_COLUMNS)


def history_path(path: str | Path) -> Path:
    """Where the history goes next to a run CSV: results.csv → results-history.csv."""
    return companion_path(path, "history")


def write_history_csv(records: Iterable[RunRecord], path: str | Path) -> Path:
    """Write every epoch of every record (HISTORY_COLUMNS); returns the absolute path."""
    return write_rows(history_rows(records), HISTORY_COLUMNS, path)


def summary_path(path: str | Path) -> Path:
    """Where the lesson summary goes next to a run CSV: results.csv → results-summary.csv."""
    return companion_path(path, "summary")


def write_csv(records: Iterable[RunRecord], path: str | Path) -> Path:
    """Write every record as a row (CSV_COLUMNS); returns the absolute path written."""
    return write_rows((record_row(rec) for rec in records), CSV_COLUMNS, path)
