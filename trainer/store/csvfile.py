"""Writing CSV files: one cell formatter, one atomic writer, for every CSV cnn-tui makes.

Cells are what spreadsheets, pandas and R read back without guessing: blanks for missing
values (not "None"), true/false for flags, floats to 10 significant digits. Text that a
spreadsheet would run as a formula (a label starting with `=`, `+`, `-`, `@`, TAB or CR —
lesson files are shared, so labels are untrusted) gets a leading `'` (OWASP's advice), while
real numbers stay numeric.
"""

from __future__ import annotations

import csv
import io
import math
import operator
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trainer.store.atomic import atomic_write

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(Exception):
    """A CSV could not be written; `message` names the path and what to do."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def csv_cell(value: Any) -> str:
    """The text of one CSV cell (lists as comma-joined values, e.g. widths "32,64,128")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return format(value, ".10g")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return ",".join(csv_cell(v) for v in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def default_export_path(directory: str | Path | None = None) -> Path:
    """A new, timestamped file name in `directory` (default: the current folder)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(directory or Path.cwd()) / f"cnn-tui-results-{stamp}.csv"


def companion_path(path: str | Path, kind: str) -> Path:
    """A file next to a run CSV: results.csv → results-summary.csv (kind "summary")."""
    path = Path(path)
    return path.with_name(f"{path.stem}-{kind}{path.suffix or '.csv'}")


def cells(values: Mapping[str, Any], columns: Sequence[str]) -> dict[str, str]:
    """One row of raw values as CSV cells, every column present."""
    return {col: csv_cell(values.get(col)) for col in columns}


def _csv_text(rows: list[Mapping[str, str]], columns: Sequence[str]) -> io.StringIO:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    if len(columns) > 1:
        try:  # rows made by `cells` hold every column: one C-level lookup per row
            writer.writerows(map(operator.itemgetter(*columns), rows))
            return buffer
        except KeyError:
            buffer = io.StringIO(newline="")
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(columns)
    writer.writerows([row.get(k, "") for k in columns] for row in rows)
    return buffer


def write_rows(rows: Iterable[Mapping[str, str]], columns: Sequence[str],
               path: str | Path) -> Path:
    """Write rows of cells (see `cells`) under a header; returns the absolute path.

    Never leaves a partial file (see atomic_write). Raises ExportError, naming the path, for
    a missing or unwritable folder, a path that is a folder, or a full disk."""
    target = Path(path).expanduser().absolute()
    folder = target.parent
    if target.is_dir():
        raise ExportError(f"cannot write {target}: it is a folder; give a file name such as "
                          f"{target / default_export_path().name}", target)
    if not folder.is_dir():
        raise ExportError(f"cannot write {target}: the folder {folder} does not exist "
                          "(create it or choose another path)", target)
    buffer = _csv_text(list(rows), columns)
    try:
        atomic_write(target, buffer.getvalue().encode("utf-8"))
    except OSError as exc:
        why = exc.strerror or str(exc)
        hint = " (choose a folder you can write to)" if isinstance(exc, PermissionError) else ""
        raise ExportError(f"cannot write {target}: {why}{hint}", target) from exc
    return target
