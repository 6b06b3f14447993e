"""`cnn-tui` command line: run lessons headless, list presets, export results, start the TUI.

Parsing lives in `parser`, each command in its module, Rich rendering in `render`. Nothing
here imports torch or Textual: `cnn-tui run` starts in a blink and the worker pays the torch
import.

Exit codes: 0 all runs finished · 1 a run failed (or I/O failed) · 2 bad usage/config ·
130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.text import Text

from trainer.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, console_err
from trainer.cli.parser import UsageError, build_parser, resolve_overrides
from trainer.config import ConfigError
from trainer.lab.place import LabError

if TYPE_CHECKING:
    from trainer.cli.run import MakeTrainer

LaunchTui = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None, launch_tui: LaunchTui | None = None,
         make_trainer: MakeTrainer | None = None) -> int:
    """Parse `argv` and run the command; returns the exit code (never raises for user errors).

    `make_trainer` builds the trainer handle of `cnn-tui run` (default: the real process).
    """
    err = console_err()
    try:
        try:
            args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
        except SystemExit as exit_:  # --help / --version
            return int(exit_.code or 0)
        if args.command is None:
            resolve_overrides(args)  # fail on a bad --set before the screen switches
            if launch_tui is None:
                err.print("cnn-tui: the terminal app is not available in this entry point; "
                          "use 'cnn-tui run', 'cnn-tui presets' or 'cnn-tui export'.")
                return EXIT_USAGE
            return int(launch_tui(args) or 0)
        # Each command's module is imported when it runs (the TUI's start needs none of them).
        if args.command == "run":
            from trainer.cli.run import cmd_run

            return cmd_run(args, make_trainer)
        if args.command == "lab":
            from trainer.cli.lab import cmd_lab

            return cmd_lab(args)
        from trainer.cli.commands import cmd_export, cmd_presets

        return {"presets": cmd_presets, "export": cmd_export}[args.command](args)
    except UsageError as e:
        err.print(Text(f"cnn-tui: error: {e}"))
        return EXIT_USAGE
    except ConfigError as e:
        err.print(Text(f"cnn-tui: error: {e.message}"))
        return EXIT_USAGE
    except LabError as e:
        err.print(Text(f"cnn-tui: lab: {e}"))
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.print("cnn-tui: interrupted")
        return EXIT_INTERRUPTED
