"""The `cnn-tui` command line's options, shared by the headless commands and the TUI."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from trainer import __version__, paths
from trainer.config import DATASETS, parse_assignment, parse_value
from trainer.events import check_device


def device_name(text: str) -> str:
    """`--device` (argparse type): the shared device rule, its message as the error."""
    try:
        return check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class UsageError(Exception):
    """Bad command line or config: one line on stderr, exit 2, never a traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage block buries the actual problem)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# -- the parser ---------------------------------------------------------------------------


def _add_shared(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options accepted before or after the command (`cnn-tui --epochs 5 run` = `run --epochs
    5`). On subcommands the defaults are SUPPRESS so they don't overwrite values the main parser
    already set (an argparse quirk)."""

    def d(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    g = parser.add_argument_group("settings shared by all commands and the TUI")
    g.add_argument("--dataset", choices=DATASETS, default=d(None),
                   help="training data; 'synthetic' is a built-in offline stand-in")
    g.add_argument("--data-dir", metavar="DIR", default=d(None),
                   help="folder holding CIFAR-10 (default: $CNN_TUI_DATA or a per-user folder)")
    g.add_argument("--runs-dir", metavar="DIR", default=d(None),
                   help=f"where run records are stored (default: {paths.runs_dir()})")
    g.add_argument("--device", type=device_name, metavar="DEVICE", default=d("auto"),
                   help="where to train: auto (CUDA when available, else CPU), cpu, cuda, "
                        "cuda:N")
    g.add_argument("--devices", metavar="LIST", default=d(None),
                   help="workers of a new lab, e.g. cuda:0,cuda:2 (default: $CNN_TUI_DEVICES, "
                        "else every visible CUDA device, else one worker on --device)")
    # Repeatable options get their own dest on subcommands: argparse would otherwise replace
    # the main parser's list, silently dropping `cnn-tui --set a=1 run --set b=2`'s a=1.
    sub = "_sub" if suppress else ""
    g.add_argument("--presets-dir", dest="presets_dir" + sub, metavar="DIR", action="append",
                   default=[], help="extra folder of lesson .toml files (repeatable)")
    g.add_argument("--epochs", type=int, metavar="N", default=d(None),
                   help="epochs per run (overrides the lesson's)")
    g.add_argument("--repeats", type=int, metavar="N", default=d(None),
                   help="runs per variant, with paired seeds")
    g.add_argument("--set", dest="sets" + sub, metavar="KEY=VALUE", action="append", default=[],
                   help="override any run setting, e.g. --set lr=0.01 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """The full `cnn-tui` parser; the TUI reuses it so both accept the same options."""
    parser = _Parser(
        prog="cnn-tui",
        description="Guided CNN experiments: pick a lesson, train its variants, read the verdict."
                    " Without a command the terminal app starts.",
    )
    parser.add_argument("--version", action="version", version=f"cnn-tui {__version__}")
    _add_shared(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="train a lesson (or one custom config) without the TUI",
                         description="Train all variants × repeats of a lesson, or one run "
                                     "from the defaults plus --set overrides.")
    run.add_argument("--preset", metavar="KEY", help="lesson to run (see 'cnn-tui presets')")
    run.add_argument("--csv", metavar="FILE", help="write the runs of this launch as CSV")
    run.add_argument("--history-csv", metavar="FILE",
                     help="write every epoch of this launch's runs as CSV (curves)")
    run.add_argument("--summary-csv", metavar="FILE",
                     help="write the per-variant statistics as CSV, and the claims and "
                          "verdict beside it (FILE-verdict.csv)")
    run.add_argument("--detach", action="store_true",
                     help="queue the runs into the lab and return at once (follow them with "
                          "'cnn-tui' or 'cnn-tui lab status')")
    _add_shared(run, suppress=True)

    lab = sub.add_parser("lab", help="the background lab that trains: status, stop, resume",
                         description="The lab is the per-user service that owns the queue and "
                                     "the workers of one runs folder; training goes on in it "
                                     "when the terminal closes.")
    lab.add_argument("action", choices=("status", "stop", "resume", "cancel", "serve"),
                     help="status: queue, runs and devices · stop: end the lab (asks while "
                          "runs are active) · resume: go on with a held queue · cancel: drop "
                          "the waiting runs")
    lab.add_argument("--force", action="store_true",
                     help="stop: stop the runs in progress without asking")
    _add_shared(lab, suppress=True)

    pre = sub.add_parser("presets", help="list the lesson presets (or show one)",
                         description="List lesson keys, titles and variants, and any lesson "
                                     "file that could not be loaded; with KEY, show that lesson.")
    pre.add_argument("key", nargs="?", metavar="KEY", help="show this lesson in full")
    _add_shared(pre, suppress=True)

    exp = sub.add_parser("export", help="write every stored run as CSV",
                         description="Write every run in the run store as one CSV file.")
    exp.add_argument("--csv", metavar="FILE",
                     help="output file (default: ./cnn-tui-results-<time>.csv)")
    exp.add_argument("--history-csv", metavar="FILE",
                     help="also write every epoch of every run (one row per run and epoch)")
    exp.add_argument("--inside", action="store_true",
                     help="also write layer statistics, confusion matrices and per-class "
                          "accuracy beside the CSV (FILE-layers/-confusion/-class-acc.csv)")
    exp.add_argument("--summary-csv", metavar="FILE",
                     help="also write the statistics of every lesson launch in the store, "
                          "and their claims and verdicts beside it (FILE-verdict.csv)")
    _add_shared(exp, suppress=True)
    return parser


def resolve_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Run-setting overrides from --set/--epochs/--repeats/--dataset, validated.

    Later --set of the same key wins; the dedicated options win over --set. Raises ConfigError
    with a message that names the key and what it accepts.
    """
    out: dict[str, Any] = {}
    for text in [*(getattr(args, "sets", None) or []), *(getattr(args, "sets_sub", None) or [])]:
        key, value = parse_assignment(text)
        out[key] = value
    for key in ("epochs", "repeats", "dataset"):
        value = getattr(args, key, None)
        if value is not None:
            out[key] = parse_value(key, str(value))
    return out


def presets_dirs(args: argparse.Namespace) -> list[str]:
    """Every --presets-dir given, before or after the command."""
    return [*(getattr(args, "presets_dir", None) or []),
            *(getattr(args, "presets_dir_sub", None) or [])]
