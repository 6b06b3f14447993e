"""`cnn-tui run`: train a lesson (or one custom config) headless, print results and verdict.

Headless runs take exactly the TUI's path — RunRequests planned by `trainer.lessons.planning`,
trained by `TrainerProcess` in a spawned worker, followed through a `RunSession` — so a result
from a script and a result from the app mean the same thing. Torch-free: the worker pays the
torch import.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from rich.console import Console
from rich.text import Text

from trainer.cli.live import LiveView
from trainer.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    check_output,
    console_err,
    console_out,
    export_failed,
    load_lessons,
    runs_dir,
)
from trainer.cli.parser import UsageError, resolve_overrides
from trainer.cli.render import class_acc_table, lesson_report, results_table
from trainer.config import RunConfig
from trainer.events import RunFailed, RunRequest, WorkerSettings
from trainer.host.session import RunSession, TrainerHandle
from trainer.lessons.planning import build_requests, custom_requests, overrides_shadowed
from trainer.lessons.preset import Preset
from trainer.lessons.presets import unknown_preset_message
from trainer.lessons.summary_csv import lesson_tables, write_tables
from trainer.store.csvfile import ExportError
from trainer.store.export import write_csv, write_history_csv
from trainer.store.record import RunRecord, RunStatus

STOP_WAIT_S = 8.0  # how long Ctrl-C waits for the current run to stop at a batch boundary
LOST_EVENT_S = 5.0  # nothing queued, nothing running, runs unreported this long: give up

MakeTrainer = Callable[[WorkerSettings], TrainerHandle]


def default_trainer(settings: WorkerSettings, devices: str | None = None) -> TrainerHandle:
    """The lab's client (the lab starts if none serves this folder), or a worker of our own
    with CNN_TUI_LAB=off."""
    from trainer.cli.lab import make_trainer

    return make_trainer(settings, "run", devices)


def plan(args: argparse.Namespace, err: Console) -> tuple[Preset | None, list[RunRequest]]:
    """The requests of this launch; raises UsageError/ConfigError on anything bad."""
    overrides = resolve_overrides(args)
    if not args.preset:
        if args.summary_csv:
            raise UsageError("--summary-csv needs --preset (a summary compares variants)")
        return None, custom_requests(RunConfig.from_dict(overrides))
    presets, problems = load_lessons(args)
    preset = presets.get(args.preset)
    if preset is None:
        own = [p for p in problems if p.path.stem == args.preset]
        if own:
            raise UsageError(f"lesson '{args.preset}' could not be loaded: {own[0]}")
        raise UsageError(unknown_preset_message(args.preset, presets))
    for key in overrides_shadowed(preset, overrides):
        err.print(Text.assemble(("note:", "yellow"), f" your {key}={overrides[key]} is replaced "
                                f"in the variants of '{preset.key}' that set {key} themselves "
                                "(that is the lesson)"))
    return preset, build_requests(preset, overrides)


def cmd_run(args: argparse.Namespace, make_trainer: MakeTrainer | None = None) -> int:
    """Train the plan through the worker process; table, verdict, CSVs at the end."""
    console, err = console_out(), console_err()
    preset, requests = plan(args, err)
    check_output(args.csv, "--csv")
    check_output(args.history_csv, "--history-csv")
    check_output(args.summary_csv, "--summary-csv")
    folder = runs_dir(args)
    cfg = requests[0].config
    reps, epochs, n = cfg["repeats"], cfg["epochs"], len(requests)
    what = (f"lesson {preset.title} ({preset.key}): {len(preset.variants)} variants × {reps} "
            f"repeat{'s' * (reps != 1)}" if preset else f"custom run: {requests[0].variant}")
    console.print(Text(f"{what} = {n} run{'s' * (n != 1)} · {cfg['dataset']} · {epochs} "
                       f"epoch{'s' * (epochs != 1)} · device {args.device} · records in "
                       f"{folder}"))

    # The worker's own chatter (per-run log lines, full tracebacks) goes to a log file next to
    # the records, as in the TUI: the terminal shows progress and one-line reasons; the
    # traceback is also kept in the run's record.
    log_path = folder / "worker.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the runs folder {folder}: {e.strerror or e}") from None
    settings = WorkerSettings(runs_dir=str(folder), data_dir=args.data_dir, device=args.device,
                              log_path=str(log_path))
    trainer = (make_trainer(settings) if make_trainer is not None
               else default_trainer(settings, getattr(args, "devices", None)))
    if getattr(args, "detach", False):
        return detach(trainer, requests, console)
    session = RunSession(trainer, keep_cancelled=True)
    ids = [r.run_id for r in requests]
    live = LiveView(session, ids, console)
    interrupted = False
    data_error: str | None = None
    try:
        with live.progress:
            session.submit(requests)
            try:
                data_error = pump(session, live, ids)
            except KeyboardInterrupt:
                interrupted = True
                live.progress.console.print(Text("Ctrl-C: stopping the current run (finished "
                                                 "runs are kept)…", style="yellow"))
                stop(session, live, ids)
    finally:
        trainer.shutdown()

    if data_error:
        err.print(Text.assemble(("dataset problem:", "red"), " " + data_error))
    records = ordered([session.records[i] for i in ids], requests)
    console.print(results_table(records, preset, console.width))
    shown = [r for r in records if r.status is not RunStatus.CANCELLED]
    per_class = class_acc_table(shown)
    if per_class is not None:
        console.print(per_class)
    if preset is not None and any(r.status is RunStatus.FINISHED for r in records):
        for renderable in lesson_report(preset, shown, console.width):
            console.print(renderable)
    if any(r.status is RunStatus.FAILED for r in records) and not data_error:
        err.print(Text(f"details of failed runs: {log_path}"))
    unsaved = [r for r in records if r.save_error]
    if unsaved:
        n = len(unsaved)
        err.print(Text.assemble(("not saved:", "bold red"), f" {n} run{'s' * (n != 1)} of this "
                                f"launch {'are' if n != 1 else 'is'} not (all) in the run store"
                                f" — {unsaved[0].save_error}"))
    code = write_outputs(args, preset, shown, console, err)
    if interrupted:
        return EXIT_INTERRUPTED
    if code or unsaved or any(r.status is not RunStatus.FINISHED for r in records):
        return EXIT_FAILED
    return EXIT_OK


def pump(session: RunSession, live: LiveView, run_ids: list[str]) -> str | None:
    """Feed events to the session and the display until every run of the plan has ended;
    returns the fix-it text of a data failure, if one happened."""
    data_error: str | None = None
    idle_since: float | None = None
    while not session.settled(run_ids):
        events = session.trainer.poll(0.2)
        update = session.apply(events)
        live.show(events)
        if update.data_failure is not None and data_error is None:
            data_error = update.data_failure.message
        if events:
            idle_since = None
        elif not session.trainer.busy:
            # The trainer has nothing left yet some runs never reported (should not happen;
            # guards against a lost event hanging the CLI forever).
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > LOST_EVENT_S:
                lost = [RunFailed(r, "error", "no result from the trainer") for r in run_ids
                        if not session.records[r].terminal]
                session.apply(lost)
                live.show(lost)
    return data_error


def detach(trainer: TrainerHandle, requests: list[RunRequest], console: Console) -> int:
    """`--detach`: queue the runs into the lab and return; the lab trains them."""
    try:
        trainer.submit(requests)
        waiting = len(trainer.pending())
    finally:
        trainer.shutdown()
    n = len(requests)
    console.print(Text(f"queued {n} run{'s' * (n != 1)} into the lab ({waiting} waiting in "
                       "all); follow them with 'cnn-tui' or 'cnn-tui lab status'"))
    return EXIT_OK


def stop(session: RunSession, live: LiveView, run_ids: list[str]) -> None:
    """Ctrl-C: drop this launch's waiting runs, stop its runs in progress at a batch
    boundary, keep what finished. Other clients' runs in the same lab go on."""
    mine = set(run_ids)
    session.cancel_queue(only=mine)
    session.stop(only=mine)
    deadline = time.monotonic() + STOP_WAIT_S
    try:
        while not session.settled(run_ids) and time.monotonic() < deadline:
            events = session.trainer.poll(0.2)
            session.apply(events)
            live.show(events)
            if not session.trainer.busy and not events:
                break
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop waiting; shutdown() ends the worker
    for run_id in run_ids:  # what never reported an end, as this table will show it
        rec = session.records[run_id]
        if not rec.terminal:
            status = RunStatus.STOPPED if rec.status is RunStatus.RUNNING else RunStatus.CANCELLED
            session.put(rec.with_changes(status=status))


def ordered(records: list[RunRecord], requests: list[RunRequest]) -> list[RunRecord]:
    """Records grouped by variant (in lesson order), then by repeat."""
    order = {r.variant: i for i, r in reversed(list(enumerate(requests)))}
    return sorted(records, key=lambda r: (order.get(r.variant, 0), r.repeat))


def write_outputs(args: argparse.Namespace, preset: Preset | None, records: list[RunRecord],
                  console: Console, err: Console) -> int:
    """--csv / --history-csv / --summary-csv; returns 1 when writing failed (runs are safe in
    the store)."""
    code = EXIT_OK
    runs = f"{len(records)} run{'s' * (len(records) != 1)}"
    for target, write, what in ((args.csv, write_csv, runs),
                                (args.history_csv, write_history_csv, f"the epochs of {runs}")):
        if not target:
            continue
        try:
            console.print(Text(f"wrote {what} to {write(records, target)}"))
        except ExportError as e:
            code = export_failed(err, e)
    if args.summary_csv and preset is not None:
        try:
            launch = records[0].group if records else ""
            summary, verdict = write_tables(lesson_tables(preset, records, launch),
                                            args.summary_csv)
        except ExportError as e:
            return export_failed(err, e)
        console.print(Text(f"wrote the statistics of '{preset.key}' to {summary} and its "
                           f"verdict to {verdict}"))
    return code
