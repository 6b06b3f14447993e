"""CSV export of stored runs: one row per run, for spreadsheets, pandas or R.

The columns most people compare come first (identity, the lesson knobs, results), then every
other config key, so a file is self-describing and can be re-run. Accuracies are fractions
0–1 (as stored) so the numbers need no unit guessing. The write is atomic: a reader never sees
a partial file, and a failure leaves nothing behind. Torch-free.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trainer.config import KEYS, format_value
from trainer.store.runstore import atomic_write

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


class ExportError(Exception):
    """The CSV could not be written; `message` names the path and what to do."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def default_export_path(directory: str | Path | None = None) -> Path:
    """A new, timestamped file name in `directory` (default: the current folder)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(directory or Path.cwd()) / f"cnn-tui-results-{stamp}.csv"


def _cell(value: Any, key: str = "") -> str:
    """Text of one cell: config values as the user types them, floats to 6 significant digits,
    missing values empty (not "None") so spreadsheets see blanks."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return format(value, ".6g")
    if isinstance(value, list | tuple):
        return format_value(key, value)
    return str(value)


def record_row(record: dict[str, Any]) -> dict[str, str]:
    """One CSV row (every column of CSV_COLUMNS) for a stored run record."""
    config = record.get("config") or {}
    summary = record.get("summary") or {}
    history = record.get("history") or []
    env = record.get("env") or {}
    error = record.get("error") or {}
    seconds = [h.get("seconds") for h in history if isinstance(h.get("seconds"), int | float)]
    values: dict[str, Any] = {
        "run_id": record.get("run_id"),
        "preset": record.get("preset"),
        "variant": record.get("variant"),
        "repeat": record.get("repeat"),
        "status": record.get("status"),
        "epochs_done": summary.get("epochs_done", len(history)),
        "params": record.get("params"),
        "device": env.get("device"),
        "seconds_per_epoch": sum(seconds) / len(seconds) if seconds else None,
        "group": record.get("group"),
        "created": record.get("created"),
        # One line: the first line is the reason; the rest (fix-it text) stays in the store.
        "error": " ".join(str(error.get("message", "")).split("\n", 1)[0].split()) or None,
    }
    for key in ("best_epoch", "best_val_acc", "best_val_loss", "test_acc", "test_loss",
                "train_seconds", "images_per_s"):
        values[key] = summary.get(key)
    for key in KEYS:
        values[key] = config.get(key)
    return {col: _cell(values.get(col), col) for col in CSV_COLUMNS}


def summary_path(path: str | Path) -> Path:
    """Where the lesson summary goes next to a run CSV: results.csv → results-summary.csv."""
    path = Path(path)
    return path.with_name(f"{path.stem}-summary{path.suffix or '.csv'}")


def write_csv(records: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write every record as a row (CSV_COLUMNS); returns the absolute path written."""
    return write_rows((record_row(rec) for rec in records), CSV_COLUMNS, path)


def write_rows(rows: Iterable[Mapping[str, Any]], columns: Sequence[str],
               path: str | Path) -> Path:
    """Write rows (cells already formatted) under a header; returns the absolute path.

    Never leaves a partial file (see store.atomic_write). Raises ExportError, naming the path,
    for a missing or unwritable folder, a path that is a folder, or a full disk.
    """
    target = Path(path).expanduser().absolute()
    folder = target.parent
    if target.is_dir():
        raise ExportError(f"cannot write {target}: it is a folder; give a file name such as "
                          f"{target / default_export_path().name}", target)
    if not folder.is_dir():
        raise ExportError(f"cannot write {target}: the folder {folder} does not exist "
                          "(create it or choose another path)", target)
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    try:
        atomic_write(target, buffer.getvalue().encode("utf-8"))
    except OSError as exc:
        why = exc.strerror or str(exc)
        hint = " (choose a folder you can write to)" if isinstance(exc, PermissionError) else ""
        raise ExportError(f"cannot write {target}: {why}{hint}", target) from exc
    return target
