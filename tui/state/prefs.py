"""Remembered preferences: toggle edits, the lesson, theme and view choices survive a restart.

One small JSON file per user (`trainer.paths.settings_file`), written atomically whenever a
choice changes. It is the user's own file, but it is still read like any other: a value of
the wrong shape, an unknown key or a setting the config refuses is dropped with one warning
naming the file and the field, and the rest is used; a file that is not JSON, too big or not
a regular file is ignored with one warning. Plain Python, no Textual.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainer.config import KEYS, ConfigError, normalize
from trainer.files import FileRefused, read_bounded
from trainer.store.atomic import atomic_write
from trainer.text import clean
from tui.state.curves import SMOOTHING_STEPS

VERSION = 1
MAX_BYTES = 256 * 1024
CHART_MODES = ("mean", "runs")


@dataclass
class Preferences:
    lesson: str = ""
    edits: dict[str, dict[str, Any]] = field(default_factory=dict)  # lesson → key → value
    theme: str = ""
    chart_mode: str = "mean"
    grouped: bool = False
    diff_only: bool = False
    every_launch: bool = False
    sort_column: str = "n"
    sort_reverse: bool = False
    smoothing: float = 0.0  # one of SMOOTHING_STEPS
    log_loss: bool = False
    pinned: str = ""  # the baseline run's id ("" none; a run no longer stored is dropped)
    system_pane: bool = False


def _text(doc: dict[str, Any], key: str, problems: list[str], allowed: tuple[str, ...] = (),
          limit: int = 200) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or clean(value) != value \
            or (allowed and value not in allowed):
        what = f"one of {', '.join(allowed)}" if allowed else f"plain text of ≤{limit} chars"
        problems.append(f"{key} (must be {what})")
        return None
    return value


def _flag(doc: dict[str, Any], key: str, problems: list[str]) -> bool | None:
    value = doc.get(key)
    if value is None or isinstance(value, bool):
        return value
    problems.append(f"{key} (must be true or false)")
    return None


def _edits(raw: Any, problems: list[str]) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append("edits (must be an object of lessons)")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for lesson, values in list(raw.items())[:500]:
        if not isinstance(values, dict) or clean(str(lesson)) != lesson:
            problems.append(f"edits.{clean(str(lesson), single_line=True)[:40]}")
            continue
        for key, value in values.items():
            if key not in KEYS:
                problems.append(f"edits.{lesson}.{clean(str(key), single_line=True)[:40]}"
                                " (not a setting)")
                continue
            try:
                v = normalize(key, value)
            except ConfigError as err:
                problems.append(f"edits.{lesson}.{key} ({err.message})")
                continue
            out.setdefault(lesson, {})[key] = list(v) if isinstance(v, tuple) else v
    return out


def load(path: Path) -> tuple[Preferences, list[str]]:
    """The remembered preferences (defaults where none) and warnings about what was not used."""
    prefs = Preferences()
    shown = clean(str(path), single_line=True)
    if not path.exists() and not path.is_symlink():
        return prefs, []
    try:
        doc = json.loads(read_bounded(path, MAX_BYTES))
    except (OSError, ValueError, RecursionError) as exc:
        if isinstance(exc, OSError):
            why = exc.strerror or str(exc)
        elif isinstance(exc, FileRefused):
            why = str(exc)
        else:
            why = "not valid JSON"
        return prefs, [f"{shown}: {clean(why, single_line=True)}; using the defaults"]
    if not isinstance(doc, dict):
        return prefs, [f"{shown}: expected a JSON object; using the defaults"]
    problems: list[str] = []
    for key in ("lesson", "theme", "sort_column", "pinned"):
        value = _text(doc, key, problems)
        if value is not None:
            setattr(prefs, key, value)
    mode = _text(doc, "chart_mode", problems, CHART_MODES)
    if mode is not None:
        prefs.chart_mode = mode
    smoothing = doc.get("smoothing")
    if smoothing is not None:
        if isinstance(smoothing, int | float) and not isinstance(smoothing, bool) \
                and smoothing in SMOOTHING_STEPS:
            prefs.smoothing = float(smoothing)
        else:
            problems.append(f"smoothing (must be one of {', '.join(map(str, SMOOTHING_STEPS))})")
    for key in ("grouped", "diff_only", "every_launch", "sort_reverse", "log_loss",
                "system_pane"):
        flag = _flag(doc, key, problems)
        if flag is not None:
            setattr(prefs, key, flag)
    prefs.edits = _edits(doc.get("edits"), problems)
    if problems:
        return prefs, [f"{shown}: ignored {', '.join(problems[:5])}"
                       + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")]
    return prefs, []


def save(path: Path, prefs: Preferences) -> str | None:
    """Write the preferences (atomically, 0600); returns why not, or None when saved."""
    data = json.dumps({"version": VERSION, **asdict(prefs)}, indent=1, ensure_ascii=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data.encode("utf-8"))
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
    except OSError as exc:
        return f"could not save preferences to {path}: {exc.strerror or exc}"
    return None
