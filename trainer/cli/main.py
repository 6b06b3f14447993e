"""`cnn-tui` command line: run lessons headless, list presets, export results, start the TUI.

Headless runs take exactly the TUI's path — RunRequests built by `trainer.lessons.presets`, trained by
`TrainerProcess` in a spawned worker, records updated with `store.apply_event` — so a result
from a script and a result from the app mean the same thing. This module never imports torch
(or Textual): `cnn-tui run` starts in a blink and the worker pays the torch import.

Exit codes: 0 all runs finished · 1 a run failed (or I/O failed) · 2 bad usage/config ·
130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from trainer import __version__, paths
from trainer.config import DATASETS, ConfigError, RunConfig, describe, parse_assignment, parse_value
from trainer.events import (
    EpochEnd,
    Event,
    Notice,
    RunFailed,
    RunFinished,
    RunRequest,
    RunStarted,
    RunStopped,
)
from trainer.events import Progress as ProgressEvent
from trainer.lessons.presets import (
    Preset,
    PresetProblem,
    build_requests,
    custom_requests,
    load_presets,
    overrides_shadowed,
    unknown_preset_message,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEVICES = ("auto", "cpu", "cuda")
STOP_WAIT_S = 8.0  # how long Ctrl-C waits for the current run to stop at a batch boundary

LaunchTui = Callable[[argparse.Namespace], int]


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
    g.add_argument("--device", choices=DEVICES, default=d("auto"),
                   help="where to train (auto: CUDA when available, else CPU)")
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
    run.add_argument("--summary-csv", metavar="FILE",
                     help="write the per-variant summary (mean, CI, claims) as CSV")
    _add_shared(run, suppress=True)

    pre = sub.add_parser("presets", help="list the lesson presets (or show one)",
                         description="List lesson keys, titles and variants, and any lesson "
                                     "file that could not be loaded; with KEY, show that lesson.")
    pre.add_argument("key", nargs="?", metavar="KEY", help="show this lesson in full")
    _add_shared(pre, suppress=True)

    exp = sub.add_parser("export", help="write every stored run as CSV",
                         description="Write every run in the run store as one CSV file.")
    exp.add_argument("--csv", metavar="FILE",
                     help="output file (default: ./cnn-tui-results-<time>.csv)")
    exp.add_argument("--summary-csv", metavar="FILE",
                     help="also write per-variant summaries of every lesson in the store")
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


# -- entry point ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, launch_tui: LaunchTui | None = None) -> int:
    """Parse `argv` and run the command; returns the exit code (never raises for user errors)."""
    err = _err_console()
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
        command = {"run": cmd_run, "presets": cmd_presets, "export": cmd_export}[args.command]
        return command(args)
    except UsageError as e:
        err.print(f"cnn-tui: error: {escape(str(e))}")
        return EXIT_USAGE
    except ConfigError as e:
        err.print(f"cnn-tui: error: {escape(e.message)}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("cnn-tui: interrupted")
        return EXIT_INTERRUPTED


def _err_console() -> Console:
    """Stderr console that never wraps: an error stays one line for scripts and humans."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _console() -> Console:
    """Stdout console; when piped (CI logs, tests) use a width the results table fits in."""
    console = Console(highlight=False)
    if not console.is_terminal:
        width = int(os.environ["COLUMNS"]) if os.environ.get("COLUMNS", "").isdigit() else 0
        console = Console(highlight=False, width=max(width, 160))
    return console


def _runs_dir(args: argparse.Namespace) -> Path:
    return Path(args.runs_dir).expanduser() if args.runs_dir else paths.runs_dir()


def _check_output(path: str | None, option: str) -> None:
    """Refuse before training, not after an hour of it, when the CSV folder is missing."""
    if path and not Path(path).expanduser().resolve().parent.is_dir():
        raise UsageError(f"{option}: folder {Path(path).expanduser().resolve().parent} "
                         "does not exist")


# -- presets ------------------------------------------------------------------------------


def presets_dirs(args: argparse.Namespace) -> list[str]:
    """Every --presets-dir given, before or after the command."""
    return [*(getattr(args, "presets_dir", None) or []),
            *(getattr(args, "presets_dir_sub", None) or [])]


def _load(args: argparse.Namespace) -> tuple[dict[str, Preset], list[PresetProblem]]:
    return load_presets(presets_dirs(args))


def cmd_presets(args: argparse.Namespace) -> int:
    """List lessons; print load problems; exit 0 when at least one lesson loaded."""
    console, err = _console(), _err_console()
    presets, problems = _load(args)
    if args.key:
        if args.key not in presets:
            raise UsageError(unknown_preset_message(args.key, presets))
        console.print(describe_preset(presets[args.key]))
        return EXIT_OK
    table = Table(title="Lesson presets", title_justify="left", show_lines=False)
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("title")
    table.add_column("variants (first = baseline)")
    table.add_column("repeats", justify="right")
    for key, p in presets.items():
        table.add_row(key, p.title, " | ".join(p.labels), str(p.repeats))
    if presets:
        console.print(table)
    for problem in problems:
        err.print(f"[yellow]could not load[/] {escape(str(problem))}")
    if not presets:
        err.print("cnn-tui: no lesson presets could be loaded")
        return EXIT_FAILED
    return EXIT_OK


def describe_preset(preset: Preset) -> Panel:
    """A lesson in full: what it teaches, its variants, what the course found."""
    body = Text()
    body.append(preset.summary + "\n\n", style="italic")
    body.append(preset.lesson + "\n\n")
    body.append("Variants", style="bold")
    for i, v in enumerate(preset.variants):
        what = " · ".join(describe(k, val) for k, val in v.changes.items())
        body.append(f"\n  {v.label}" + (" (baseline)" if i == 0 else "") + f": {what}")
    if preset.base:
        shared = " · ".join(describe(k, val) for k, val in preset.base.items())
        body.append(f"\n  all variants: {shared}")
    body.append(f"\n  {preset.repeats} repeats each, paired seeds\n\n")
    body.append("What the course found\n", style="bold")
    body.append(preset.expect)
    if preset.try_next:
        body.append("\n\nTry next", style="bold")
        for s in preset.try_next:
            body.append(f"\n  • {s}")
    return Panel(body, title=f"{preset.title} ({preset.key})", title_align="left",
                 subtitle=str(preset.source), subtitle_align="right")


# -- run ------------------------------------------------------------------------------------


def _plan(args: argparse.Namespace, err: Console) -> tuple[Preset | None, list[RunRequest]]:
    """The requests of this launch; raises UsageError/ConfigError on anything bad."""
    overrides = resolve_overrides(args)
    if not args.preset:
        if args.summary_csv:
            raise UsageError("--summary-csv needs --preset (a summary compares variants)")
        return None, custom_requests(RunConfig.from_dict(overrides))
    presets, problems = _load(args)
    preset = presets.get(args.preset)
    if preset is None:
        own = [p for p in problems if p.path.stem == args.preset]
        if own:
            raise UsageError(f"lesson '{args.preset}' could not be loaded: {own[0]}")
        raise UsageError(unknown_preset_message(args.preset, presets))
    for key in overrides_shadowed(preset, overrides):
        err.print(f"[yellow]note:[/] your {key}={overrides[key]} is replaced in the variants "
                  f"of '{preset.key}' that set {key} themselves (that is the lesson)")
    return preset, build_requests(preset, overrides)


def _process_classes() -> tuple[Any, Any]:
    """TrainerProcess and WorkerSettings, imported late: `cnn-tui presets` needs neither."""
    from trainer.engine.worker import WorkerSettings
    from trainer.host.process import TrainerProcess

    return TrainerProcess, WorkerSettings


class _Live:
    """Progress bars plus the records of this launch, updated from worker events."""

    def __init__(self, requests: list[RunRequest], console: Console, err: Console) -> None:
        from trainer.store.runstore import request_record

        self.requests = requests
        self.records: dict[str, dict[str, Any]] = {r.run_id: request_record(r) for r in requests}
        self.done: set[str] = set()
        self.console, self.err = console, err
        self.data_error: str | None = None
        self.notices: set[str] = set()
        self.tasks: dict[str, TaskID] = {}
        self.n_variants = len({r.variant for r in requests})
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,  # logs get one line per epoch/run instead
        )
        self.overall = self.progress.add_task("[bold]all runs[/]", total=len(requests),
                                              info=f"0/{len(requests)} done")

    def _name(self, run_id: str) -> str:
        rec = self.records[run_id]
        n = rec["config"].get("repeats", 1)
        rep = f" #{rec['repeat'] + 1}/{n}" if n > 1 else ""
        return f"{rec['variant']}{rep}"

    def handle(self, event: Event) -> None:
        from trainer.store.runstore import apply_event

        run_id = getattr(event, "run_id", "")
        if isinstance(event, Notice):
            self._notice(event)
        if run_id not in self.records:
            return
        self.records[run_id] = apply_event(self.records[run_id], event)
        rec = self.records[run_id]
        if isinstance(event, RunStarted):
            epochs = int(event.config.get("epochs", 1))
            self.tasks[run_id] = self.progress.add_task(
                escape(self._name(run_id)), total=epochs * max(event.steps_per_epoch, 1),
                info=f"starting on {event.device}")
            if event.dataset_note:
                self._notice(Notice(event.dataset_note))
        elif isinstance(event, ProgressEvent):
            self._update(run_id, (event.epoch - 1) * event.steps + event.step,
                         f"ep {event.epoch}/{rec['config'].get('epochs')} "
                         f"step {event.step}/{event.steps} · loss {event.loss:.3f} · "
                         f"acc {event.acc:.1%} · {event.images_per_s:,.0f} img/s")
        elif isinstance(event, EpochEnd):
            steps = rec.get("steps_per_epoch") or 1
            self._update(run_id, event.epoch * steps,
                         f"ep {event.epoch}/{rec['config'].get('epochs')} · "
                         f"val loss {event.val_loss:.3f} · val acc {event.val_acc:.1%}")
            if not self.console.is_terminal:  # logs get one line per epoch instead of bars
                self.console.print(
                    f"{escape(self._name(run_id))}: epoch {event.epoch} train loss "
                    f"{event.train_loss:.3f} acc {event.train_acc:.1%} · val loss "
                    f"{event.val_loss:.3f} acc {event.val_acc:.1%} · {event.seconds:.1f} s")
        elif isinstance(event, RunFinished):
            self._end(run_id, f"[green]done[/] · test acc {event.test_acc:.1%}", complete=True)
        elif isinstance(event, RunStopped):
            n = event.epochs_done
            self._end(run_id, f"[yellow]stopped[/] after {n} epoch{'s' * (n != 1)}")
        elif isinstance(event, RunFailed):
            self._end(run_id, f"[red]failed[/]: {escape(_first_line(event.message))}")
            if event.kind == "data" and self.data_error is None:
                self.data_error = event.message

    def _update(self, run_id: str, completed: int, info: str) -> None:
        if run_id in self.tasks:
            self.progress.update(self.tasks[run_id], completed=completed, info=info)

    def _count(self) -> None:
        n = len(self.records)
        self.progress.update(self.overall, completed=len(self.done),
                             info=f"{len(self.done)}/{n} done")

    def _end(self, run_id: str, info: str, complete: bool = False) -> None:
        self.done.add(run_id)
        self._count()
        task = self.tasks.get(run_id)
        if task is None:  # failed before it started (data missing, worker died while loading)
            task = self.progress.add_task(escape(self._name(run_id)), total=1, info="")
        total = next((t.total for t in self.progress.tasks if t.id == task), None)
        self.progress.update(task, info=info, completed=total if complete else None)
        self.progress.stop_task(task)
        if not self.console.is_terminal:
            self.console.print(f"{escape(self._name(run_id))}: {info}")

    def _notice(self, event: Notice) -> None:
        if event.message in self.notices:
            return
        self.notices.add(event.message)
        style = {"warning": "yellow", "error": "red"}.get(event.level, "dim")
        self.progress.console.print(f"[{style}]{escape(event.message)}[/]")

    def cancel(self, requests: Iterable[RunRequest]) -> None:
        for req in requests:
            if req.run_id in self.records:
                self.records[req.run_id] = {**self.records[req.run_id], "status": "cancelled"}
                self.done.add(req.run_id)
        self._count()

    @property
    def finished(self) -> bool:
        return len(self.done) >= len(self.records)

    def ordered(self) -> list[dict[str, Any]]:
        """Records grouped by variant (in lesson order), then by repeat."""
        order = {r.variant: i for i, r in reversed(list(enumerate(self.requests)))}
        return sorted(self.records.values(),
                      key=lambda r: (order.get(r["variant"], 0), r.get("repeat", 0)))


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def cmd_run(args: argparse.Namespace) -> int:
    """Train the plan through the worker process; table, verdict, CSVs at the end."""
    console, err = _console(), _err_console()
    preset, requests = _plan(args, err)
    _check_output(args.csv, "--csv")
    _check_output(args.summary_csv, "--summary-csv")
    runs_dir = _runs_dir(args)
    cfg = requests[0].config
    reps = cfg["repeats"]
    what = (f"lesson [bold]{escape(preset.title)}[/] ({preset.key}): "
            f"{len(preset.variants)} variants × {reps} repeat{'s' * (reps != 1)}"
            if preset else f"custom run: {escape(requests[0].variant)}")
    console.print(f"{what} = {len(requests)} run{'s' * (len(requests) != 1)} · "
                  f"{cfg['dataset']} · {cfg['epochs']} epoch{'s' * (cfg['epochs'] != 1)} · "
                  f"device {args.device} · records in {runs_dir}")

    # The worker's own chatter (per-run log lines, full tracebacks) goes to a log file next to
    # the records, as in the TUI: the terminal shows progress and one-line reasons; the
    # traceback is also kept in the run's record.
    log_path = runs_dir / "worker.log"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the runs folder {runs_dir}: {e.strerror or e}") from None
    TrainerProcess, WorkerSettings = _process_classes()
    proc = TrainerProcess(WorkerSettings(runs_dir=str(runs_dir), data_dir=args.data_dir,
                                         device=args.device, log_path=str(log_path)))
    live = _Live(requests, console, err)
    interrupted = False
    try:
        with live.progress:
            proc.submit(requests)
            try:
                _pump(proc, live)
            except KeyboardInterrupt:
                interrupted = True
                live.progress.console.print("[yellow]Ctrl-C: stopping the current run "
                                            "(finished runs are kept)…[/]")
                _stop(proc, live)
    finally:
        proc.shutdown()

    if live.data_error:
        err.print(f"[red]dataset problem:[/] {escape(live.data_error)}")
    records = live.ordered()
    console.print(results_table(records, preset))
    if preset is not None and any(r["status"] == "finished" for r in records):
        _print_verdict(console, preset, [r for r in records if r["status"] != "cancelled"])
    if any(r["status"] == "failed" for r in records) and not live.data_error:
        err.print(f"details of failed runs: {log_path}")
    code = _write_outputs(args, preset, records, console, err)
    if interrupted:
        return EXIT_INTERRUPTED
    if code or any(r["status"] != "finished" for r in records):
        return EXIT_FAILED
    return EXIT_OK


def _pump(proc: Any, live: _Live) -> None:
    """Feed events to the live view until every run of the plan has ended."""
    idle_since: float | None = None
    while not live.finished:
        events = proc.poll(0.2)
        for event in events:
            live.handle(event)
            if live.data_error is not None and not isinstance(event, Notice):
                # Every other queued run would fail the same way: cancel, don't repeat it.
                live.cancel(proc.cancel_queued())
        if events:
            idle_since = None
        elif not proc.busy and not proc.pending():
            # The process has nothing left yet some runs never reported (should not happen;
            # guards against a lost event hanging the CLI forever).
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 5.0:
                for run_id in set(live.records) - live.done:
                    live.handle(RunFailed(run_id, "error", "no result from the trainer"))
                return


def _stop(proc: Any, live: _Live) -> None:
    """Ctrl-C: stop the current run at a batch boundary, drop the queue, keep what finished."""
    live.cancel(proc.cancel_queued())
    proc.stop_current()
    deadline = time.monotonic() + STOP_WAIT_S
    try:
        while not live.finished and time.monotonic() < deadline:
            for event in proc.poll(0.2):
                live.handle(event)
            if not proc.busy and not proc.pending():
                break
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop waiting; shutdown() ends the worker
    for run_id in set(live.records) - live.done:
        rec = live.records[run_id]
        live.records[run_id] = {**rec, "status": "stopped" if rec["status"] == "running"
                                else "cancelled"}


def _print_verdict(console: Console, preset: Preset, records: list[dict[str, Any]]) -> None:
    from trainer.lessons.stats import lesson_stats, stats_table
    from trainer.lessons.verdict import make_verdict

    headers, rows = stats_table(lesson_stats(preset, records))
    table = Table(title=f"Per variant · {preset.title}", title_justify="left",
                  header_style="bold")
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*map(escape, row))
    console.print(table)
    verdict = make_verdict(preset, records)
    colour = {"agree": "green", "disagree": "red", "mixed": "yellow"}.get(verdict.status, "blue")
    body = Text()
    body.append(verdict.headline + "\n", style="bold")
    for sentence in verdict.sentences:
        body.append("\n" + sentence)
    if verdict.suggestions:
        body.append("\n\nTry next:", style="bold")
        for s in verdict.suggestions:
            body.append("\n  • " + s)
    console.print(Panel(body, title=f"Verdict · {preset.title}", title_align="left",
                        border_style=colour, subtitle=verdict.status, subtitle_align="right"))


def _write_outputs(args: argparse.Namespace, preset: Preset | None,
                   records: list[dict[str, Any]], console: Console, err: Console) -> int:
    """--csv / --summary-csv; returns 1 when writing failed (runs are safe in the store)."""
    from trainer.store.export import ExportError, write_csv

    saved = [r for r in records if r["status"] != "cancelled"]
    code = EXIT_OK
    if args.csv:
        try:
            path = write_csv(saved, args.csv)
            console.print(f"wrote {len(saved)} run{'s' * (len(saved) != 1)} to {path}")
        except ExportError as e:
            err.print(f"[red]cnn-tui: {escape(str(e))}[/]")
            code = EXIT_FAILED
    if args.summary_csv and preset is not None:
        code = _write_summary(preset, saved, args.summary_csv, console, err) or code
    return code


def _write_summary(preset: Preset, records: list[dict[str, Any]], path: str,
                   console: Console, err: Console) -> int:
    from trainer.lessons.verdict import write_summary_csv
    from trainer.store.export import ExportError

    try:
        out = write_summary_csv(preset, records, path)
    except (ExportError, OSError) as e:
        err.print(f"[red]cnn-tui: {escape(str(e))}[/]")
        return EXIT_FAILED
    console.print(f"wrote the summary of '{preset.key}' to {out or path}")
    return EXIT_OK


# -- the results table ------------------------------------------------------------------------


def _pct(x: Any) -> str:
    return f"{x:.1%}" if isinstance(x, int | float) else "–"


def _num(x: Any, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, int | float) else "–"


def _toggles(record: dict[str, Any], preset: Preset | None) -> str:
    """The settings this run's variant is about (a lesson's varied keys; else all changes)."""
    cfg = record.get("config") or {}
    try:
        if preset is not None:
            return " · ".join(describe(k, cfg[k]) for k in preset.varied_keys() if k in cfg)
        known = {k: v for k, v in cfg.items() if k not in ("repeats", "seed")}
        label = RunConfig.from_dict(known).label()
        return "" if label == record.get("variant") else label  # don't say it twice
    except (ConfigError, KeyError, TypeError):
        return ""


def results_table(records: list[dict[str, Any]], preset: Preset | None = None) -> Table:
    """One row per run: what it changed, how it ended, and its key numbers."""
    title = f"Results · {preset.title}" if preset else "Results"
    table = Table(title=title, title_justify="left")
    for name, justify in (("variant", "left"), ("settings", "left"), ("#", "right"),
                          ("status", "left"), ("epochs", "right"), ("best val acc @ep", "right"),
                          ("test acc", "right"), ("test loss", "right"), ("params", "right"),
                          ("s/epoch", "right"), ("img/s", "right"), ("device", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for rec in records:
        summary = rec.get("summary") or {}
        history = rec.get("history") or []
        cfg = rec.get("config") or {}
        status = rec.get("status", "")
        style = {"finished": "green", "failed": "red", "stopped": "yellow",
                 "cancelled": "dim", "interrupted": "yellow"}.get(status, "")
        status_text = Text(status, style=style)
        if status == "failed" and rec.get("error"):
            status_text.append(": " + _first_line(rec["error"].get("message", "")))
        seconds = [h.get("seconds") for h in history if isinstance(h.get("seconds"), int | float)]
        best_ep = summary.get("best_epoch")
        best = (f"{_pct(summary.get('best_val_acc'))} @{best_ep}"
                if summary.get("best_val_acc") is not None else "–")
        table.add_row(
            escape(str(rec.get("variant", ""))),
            escape(_toggles(rec, preset)),
            str(int(rec.get("repeat", 0)) + 1),
            status_text,
            f"{summary.get('epochs_done', len(history))}/{cfg.get('epochs', '?')}",
            best,
            _pct(summary.get("test_acc")),
            _num(summary.get("test_loss"), ".3f"),
            _num(rec.get("params"), ",d"),
            _num(sum(seconds) / len(seconds) if seconds else None, ".1f"),
            _num(summary.get("images_per_s"), ",.0f"),
            escape(str((rec.get("env") or {}).get("device", "–"))),
        )
    return table


# -- export ---------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    """Every stored run → one CSV (and optionally per-lesson summaries)."""
    from trainer.store.export import ExportError, default_export_path, write_csv
    from trainer.store.runstore import RunStore

    console, err = _console(), _err_console()
    _check_output(args.csv, "--csv")
    _check_output(args.summary_csv, "--summary-csv")
    runs_dir = _runs_dir(args)
    records, warnings = RunStore(runs_dir).load()
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    target = args.csv or default_export_path()
    try:
        path = write_csv(records, target)
    except ExportError as e:
        err.print(f"[red]cnn-tui: {escape(str(e))}[/]")
        return EXIT_FAILED
    console.print(f"wrote {len(records)} run{'s' * (len(records) != 1)} from {runs_dir} "
                  f"to {path}")
    if args.summary_csv:
        return _export_summaries(args, records, console, err)
    return EXIT_OK


def _export_summaries(args: argparse.Namespace, records: list[dict[str, Any]],
                      console: Console, err: Console) -> int:
    """Summaries of every lesson present in the store, in one CSV."""
    from trainer.lessons.verdict import lessons_summary_rows, write_summary_rows
    from trainer.store.export import ExportError

    presets, _ = _load(args)
    rows = lessons_summary_rows(presets, records)
    if not rows:
        err.print("cnn-tui: no lesson runs in the store; no summary written")
        return EXIT_FAILED
    try:
        path = write_summary_rows(rows, args.summary_csv)
    except ExportError as e:
        err.print(f"[red]cnn-tui: {escape(e.message)}[/]")
        return EXIT_FAILED
    lessons = len({row["preset"] for row in rows})
    console.print(f"wrote the summary of {lessons} lesson{'s' * (lessons != 1)} to {path}")
    return EXIT_OK
