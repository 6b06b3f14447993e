"""What every headless command shares: exit codes, consoles, the runs folder, lessons."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console
from rich.text import Text

from trainer import paths
from trainer.cli.parser import UsageError, presets_dirs
from trainer.lessons.preset import Preset, PresetProblem
from trainer.lessons.presets import load_presets
from trainer.store.csvfile import ExportError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def console_err() -> Console:
    """Stderr console that never wraps: an error stays one line for scripts and humans."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def console_out() -> Console:
    """Stdout console; when piped (CI logs, tests) use a width the results table fits in."""
    console = Console(highlight=False)
    if not console.is_terminal:
        width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else 0
        console = Console(highlight=False, width=max(width, 160))
    return console


def runs_dir(args: argparse.Namespace) -> Path:
    return Path(args.runs_dir).expanduser() if args.runs_dir else paths.runs_dir()


def check_output(path: str | None, option: str) -> None:
    """Refuse before training, not after an hour of it, when the CSV folder is missing."""
    if path and not Path(path).expanduser().resolve().parent.is_dir():
        raise UsageError(f"{option}: folder {Path(path).expanduser().resolve().parent} "
                         "does not exist")


def export_failed(err: Console, error: ExportError) -> int:
    """Say why a CSV was not written (the message names the path); the exit status."""
    err.print(Text(f"cnn-tui: {error.message}", style="red"))
    return EXIT_FAILED


def load_lessons(args: argparse.Namespace) -> tuple[dict[str, Preset], list[PresetProblem]]:
    return load_presets(presets_dirs(args))
