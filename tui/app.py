"""CnnTuiApp: the session, trainer wiring and the app-wide actions; the main screen draws.

Data flows one way: key → RunRequest → TrainerProcess → events (bridge thread) →
`TrainerEvents` message → RunSession (through the RunsView) → widgets on the next refresh
tick. The app never imports torch; the `TrainerProcess` is created by the caller *before*
`App.run()` (its pipes and the multiprocessing resource tracker cannot be set up while Textual
owns stderr) and passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import sys
import termios
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.markup import escape
from textual.notifications import SeverityLevel
from textual.screen import Screen

from trainer import locate, paths
from trainer.config import ConfigError
from trainer.events import Event, RunRequest, RunStopped
from trainer.host.session import RunSession, TrainerHandle
from trainer.lessons.planning import missing_runs
from trainer.lessons.preset import Preset, PresetProblem
from trainer.lessons.presets import load_presets
from trainer.store.csvfile import companion_path, default_export_path
from trainer.store.export import history_path, summary_path, write_csv, write_history_csv
from trainer.store.record import RunError, RunRecord, RunStatus
from trainer.store.runstore import RunStore, StoreError
from trainer.text import first_line
from tui.bridge import Bridge
from tui.messages import BridgeProblem, TrainerEvents, ViewChanged
from tui.screens.dialogs import (
    ChoicesScreen,
    ConfirmScreen,
    DataMissingScreen,
    ExportScreen,
    ProblemsScreen,
    RunNoteScreen,
    SearchScreen,
)
from tui.screens.help import NAVIGATION, HelpScreen, binding_rows
from tui.screens.main import SPLIT_WIDTH, MainScreen
from tui.state import prefs
from tui.state.columns import columns_for
from tui.state.runs import RunsView
from tui.state.system import SystemSampler
from tui.state.toggles import ToggleState
from tui.widgets.lessons import LessonView
from tui.widgets.results import ResultsTable
from tui.widgets.system import SystemLine

TERMINAL_CHECK_S = 0.5  # how often the app checks that its terminal is still there


INLINE_STORE_RUNS = 300  # stores up to this many runs load before the first frame
PROBLEM_TOASTS = 3  # up to this many skipped files of a kind get a notice each


@dataclass
class StartOptions:
    """What `cnn-tui` was started with (the same options as `cnn-tui run`)."""

    runs_dir: Path
    data_dir: str | None = None
    device: str = "auto"
    presets_dirs: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    blink: bool = True  # cursor blink; off for snapshot tests
    refresh_interval: float = 0.25  # seconds between redraws of table, charts and run bar
    check_data: bool = True  # look for CIFAR-10 at start (tests with fake trainers: off)
    prestart: bool = True  # start the worker at once: it imports torch while you read
    system: Callable[[], SystemSampler] = SystemSampler  # the system line's sampler (tests: fakes)


class CnnTuiApp(App):
    """The cnn-tui terminal app."""

    CSS_PATH = "app.tcss"
    TITLE = "cnn-tui"
    ENABLE_COMMAND_PALETTE = True
    # Declared as Textual declares them (plain class attributes it reads per instance).
    HORIZONTAL_BREAKPOINTS: list[tuple[int, str]] | None = [  # noqa: RUF012
        (0, "-narrow"), (110, "-wide"), (SPLIT_WIDTH, "-split")]
    VERTICAL_BREAKPOINTS: list[tuple[int, str]] | None = [(0, "-short"), (34, "-tall")]  # noqa: RUF012

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "request_quit", "Quit", tooltip="Quit (asks first while runs are going)"),
        Binding("ctrl+c", "request_quit", "Quit", show=False, priority=True),
        Binding("ctrl+q", "request_quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="Show every key"),
        Binding("f1", "help", "Help", show=False),
    ]

    def __init__(self, trainer: TrainerHandle, options: StartOptions,
                 presets: dict[str, Preset] | None = None,
                 problems: list[PresetProblem] | None = None) -> None:
        super().__init__()
        self.trainer = trainer
        self.options = options
        if presets is None:
            presets, problems = load_presets(options.presets_dirs)
        self.preset_problems = list(problems or [])
        self.toggles = ToggleState(presets, options.overrides)
        self.session = RunSession(trainer)
        self.runs = RunsView(self.session, presets)
        # Choices of the last session (toggle edits, theme, views); start options win.
        self.prefs_path = paths.settings_file()
        self.prefs, self.prefs_warnings = prefs.load(self.prefs_path)
        self.toggles.restore(self.prefs.edits, self.prefs.lesson)
        self.runs.every_launch = self.prefs.every_launch
        self._saved_prefs = self.prefs
        self._prefs_applied = False
        self._prefs_lock = threading.Lock()
        self._prefs_made = self._prefs_written = 0  # the order choices were made and saved
        self.store = RunStore(options.runs_dir)
        # A small store loads before the first frame; a big one (thousands of runs, seconds
        # of parsing) loads on a thread after it, so the app is there at once.
        self.store_warnings: list[str] = []
        self.stored_runs = self.store.count()
        self.store_loading = self.stored_runs > INLINE_STORE_RUNS
        if not self.store_loading:
            records, self.store_warnings = self.store.load()
            self.runs.load(records)
            gc.freeze()
        # Attached to a lab: its view of the runs it queued or trains wins over the files
        # (it is newer), so the app shows the lesson exactly as if it had never been away.
        snapshot = getattr(trainer, "snapshot", None)
        self.detachable = snapshot is not None
        self.lab_note = ""
        if snapshot is not None:
            # An ended run whose file is gone was archived or deleted here: it stays gone.
            self.runs.load(r for r in snapshot.records
                           if not r.terminal or self.store.path(r.run_id).exists())
            self.session.progress.update({p.run_id: p for p in snapshot.progress})
            self.session.sync_queue()
            self.lab_note = snapshot.recovered
        self.bridge = Bridge(trainer, self._deliver,
                             on_error=lambda m: self.post_message(BridgeProblem(m)))
        self._seen_notices: set[str] = set()
        self.problems: list[tuple[str, str]] = []  # (kind, what): every file skipped
        self._data_dialog_open = False
        self._quitting = False
        self.hung_up = False  # the terminal went away under us (see _watch_terminal)

    # -- lifecycle ---------------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        return MainScreen(self.toggles, self.runs, blink=self.options.blink,
                          system=self.options.system)

    def on_mount(self) -> None:
        if self.store_loading:
            self.notify(f"Loading {self.stored_runs:,} stored runs…", title="Run store",
                        timeout=4)
            # After the first frame: parsing beside it would slow both down (one GIL).
            self.call_after_refresh(self.run_worker, self._load_store, thread=True,
                                    exit_on_error=False)
        self._store_warnings(self.store_warnings)
        self.report_problems("Lesson files", [f"skipped {p}" for p in self.preset_problems])
        if self.options.check_data:
            # After the first frame: the notice is a toast over the screen, and drawing it
            # (~15 ms here) need not hold back the screen it lies over.
            self.call_after_refresh(self.check_dataset)
        if self.lab_note:
            self.notify(self.lab_note, title="Lab", severity="warning", markup=False,
                        timeout=15)
        if getattr(self.trainer, "held", False):
            self.call_later(self._offer_resume)
        if self.options.prestart:
            # After the first frame: starting a process (or a lab's workers) must not hold
            # back the first screen; the worker then imports torch while the user reads.
            self.call_after_refresh(self._prestart)
        self.bridge.start()
        self.update_titles()
        self.report_problems("Preferences", self.prefs_warnings)
        self.call_after_refresh(self._apply_view_prefs)
        self.call_after_refresh(self._collect_from_now_on)
        self.set_interval(1.0, self.remember_prefs)  # toggle edits, lesson (and a safety net)
        self.theme_changed_signal.subscribe(self, lambda _theme: self.remember_prefs())
        self.set_interval(self.options.refresh_interval, self._refresh_views)
        if not self.is_headless:
            self.set_interval(TERMINAL_CHECK_S, self._watch_terminal)

    def _collect_from_now_on(self) -> None:
        """After the first frame: what the start made lives as long as the app, so it is
        frozen out of the cyclic collector, which `launch` paused for the start."""
        if not gc.isenabled():
            gc.freeze()
            gc.enable()

    def _prestart(self) -> None:
        start = getattr(self.trainer, "start", None)
        if start is None:
            return
        try:
            start()
        except Exception as err:  # the first run will try again and report it
            self.notify(f"Could not start the trainer process yet: {err}", markup=False,
                        severity="warning")

    def on_view_changed(self, event: ViewChanged) -> None:
        self.remember_prefs()  # now, while the screen is there (at exit it is gone first)

    def _store_warnings(self, warnings: list[str]) -> None:
        self.report_problems("Run store", warnings)

    def report_problems(self, kind: str, problems: list[str]) -> None:
        """Say what could not be used: a few problems one notice each, more in one notice
        (a folder of a thousand foreign files would otherwise bury the screen in toasts and
        stall it for seconds); every one stays listed under "Skipped files" (ctrl+p)."""
        if not problems:
            return
        self.problems.extend((kind, p) for p in problems)
        if len(problems) <= PROBLEM_TOASTS:
            for problem in problems:
                self.notify(problem, title=kind, severity="warning", markup=False, timeout=12)
            return
        self.notify(f"{len(problems):,} problems — the first: {problems[0]}\n"
                    "ctrl+p → “Skipped files” lists them all", title=kind, severity="warning",
                    markup=False, timeout=15)

    def action_show_problems(self) -> None:
        if self.problems:
            self.clear_notifications()  # the list says it all; toasts would lie over it
            self.push_screen(ProblemsScreen(list(self.problems)))
        else:
            self.notify("Every file was read: nothing was skipped", timeout=3)

    def _load_store(self) -> None:
        """On a worker thread: parse the store, then hand the records to the UI thread."""
        records, warnings = self.store.load()
        self.call_from_thread(self._store_loaded, records, warnings)

    def _store_loaded(self, records: list[RunRecord], warnings: list[str]) -> None:
        # Runs this session already knows (the lab's snapshot, live events) are newer.
        known = self.session.records
        self.runs.load([r for r in records if r.run_id not in known])
        self.store_loading = False
        if self.runs.pinned is None and self._saved_prefs.pinned in self.session.records:
            self.runs.pinned = self._saved_prefs.pinned  # the baseline was in the big store
        self._store_warnings(warnings)
        with contextlib.suppress(LookupError, NoMatches):
            self.main.sync()
        # Stored records live as long as the app: keep the cyclic collector from walking
        # their millions of objects again (a full pass paused each sort or group ~0.2 s).
        gc.freeze()

    # -- remembered preferences -------------------------------------------------------------
    def _apply_view_prefs(self) -> None:
        """The last session's theme and views, once the main screen is there."""
        p = self.prefs
        if p.theme in self.available_themes:
            self.theme = p.theme
        with contextlib.suppress(LookupError, NoMatches):
            main = self.main
            table = main.query_one(ResultsTable)
            # Set quietly: these are no news to the user (their watchers would toast).
            main.set_reactive(MainScreen.chart_mode, p.chart_mode)
            main.set_reactive(MainScreen.smoothing, p.smoothing)
            main.set_reactive(MainScreen.log_loss, p.log_loss)
            if p.system_pane:  # (hidden is the default: never hide one `y` just showed)
                main.set_reactive(MainScreen.system_pane, True)
                main.query_one(SystemLine).set_shown(True)
            if p.pinned in self.session.records:
                self.runs.pinned = p.pinned
            table.set_reactive(ResultsTable.diff_only, p.diff_only)
            table.set_reactive(ResultsTable.grouped, p.grouped)
            table.sort_column, table.sort_reverse = p.sort_column, p.sort_reverse
            if table.sort_column not in [c.key for c in columns_for(self.runs, p.diff_only)]:
                table.sort_column, table.sort_reverse = "n", False
            table.sync(full=True)
            main.sync(force=True)
        self._prefs_applied = True

    def current_prefs(self) -> prefs.Preferences:
        # Views not on screen (at exit the screens are gone) keep their last known state.
        current = dataclasses.replace(self._saved_prefs, lesson=self.toggles.lesson,
                                      edits=self.toggles.remembered(), theme=self.theme,
                                      every_launch=self.runs.every_launch,
                                      pinned=self.runs.pinned or (
                                          self._saved_prefs.pinned if self.store_loading
                                          else ""))
        with contextlib.suppress(LookupError, NoMatches):
            main = self.main
            table = main.query_one(ResultsTable)
            current.chart_mode = main.chart_mode
            current.smoothing, current.log_loss = main.smoothing, main.log_loss
            current.system_pane = main.system_pane
            current.grouped, current.diff_only = table.grouped, table.diff_only
            current.sort_column, current.sort_reverse = table.sort_column, table.sort_reverse
        return current

    def remember_prefs(self) -> None:
        """Save the preferences when they changed (every second, and at exit): cheap, and
        no choice is lost to a dropped connection."""
        if not self._prefs_applied:  # not before the last session's choices are on screen
            return
        current = self.current_prefs()
        if current == self._saved_prefs:
            return
        self._saved_prefs = current  # one warning per change at most, not one per second
        # The write (an fsync) happens off the UI thread: a key press never waits for a disk.
        self._prefs_made += 1
        made = self._prefs_made
        self.run_worker(lambda: self._save_prefs(current, made), thread=True, group="prefs",
                        exclusive=False, exit_on_error=False)

    def _save_prefs(self, current: prefs.Preferences, made: int) -> None:
        with self._prefs_lock:
            if made < self._prefs_written:  # a newer choice is on disk already: it wins
                return
            self._prefs_written = made
            problem = prefs.save(self.prefs_path, current)
        if problem:
            with contextlib.suppress(RuntimeError):  # the app may be gone by now
                self.call_from_thread(self.notify, problem, title="Preferences",
                                      severity="warning", markup=False)

    async def on_unmount(self) -> None:
        current = self.current_prefs() if self._prefs_applied else None
        if current is not None and current != self._saved_prefs:
            self._prefs_made += 1  # before we go, and after any save still under way
            await asyncio.to_thread(self._save_prefs, current, self._prefs_made)
        await asyncio.to_thread(self.shutdown_trainer)

    def shutdown_trainer(self) -> None:
        """Stop the bridge, then the worker (stopping its run, dropping the queue).

        After a hang-up nobody chose to stop the run in progress: it is kept as
        `interrupted` (with its finished epochs), as after a kill -9 or a SIGHUP.
        """
        self.bridge.stop()
        events = self.trainer.shutdown()  # a lab client only detaches: the runs go on
        if not self.hung_up or self.detachable:
            return
        for event in events or []:
            if isinstance(event, RunStopped):
                with contextlib.suppress(StoreError):
                    self.store.mark(event.run_id, RunStatus.INTERRUPTED, RunError(
                        "interrupted", "the terminal went away (connection lost)"))

    def _watch_terminal(self) -> None:
        """Leave cleanly when our terminal is gone without a SIGHUP reaching us (it was not
        our controlling terminal, or the signal was ignored): reads then fail or return
        nothing forever, and the app would train on, unseen, until someone kills it."""
        stdin = sys.__stdin__
        try:
            if stdin is None:
                raise OSError("no standard input")
            termios.tcgetattr(stdin.fileno())
        except (termios.error, OSError, ValueError):
            self.hung_up = True
            self.exit(return_code=129)

    @property
    def main(self) -> MainScreen:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("main screen not mounted")

    def _refresh_views(self) -> None:
        # Drawn only while the main screen is the one on top: under a dialog every change
        # re-renders the whole dimmed background (~80 ms a frame here), behind the Inside
        # view it is not seen at all. The marks wait; the first tick after catches up.
        # (The timer can still tick while the app tears its screens down at exit: the stack
        # may be empty, where `self.screen` raises, and the screen's widgets may be gone.)
        stack = self.screen_stack
        if not stack or not isinstance(main := stack[-1], MainScreen):
            return
        with contextlib.suppress(NoMatches):
            main.sync()
        self.update_titles()

    def update_titles(self) -> None:
        cfg = self.toggles.config()
        session = self.session
        device = session.device or self.options.device
        if session.device_name and session.device.startswith("cuda"):
            device = f"cuda · {session.device_name}"
        sub = f"{self.toggles.title} · data {cfg.dataset} · device {device}"
        if self.sub_title != sub:
            self.sub_title = sub

    # -- trainer events ----------------------------------------------------------------------
    def _deliver(self, events: list[Event]) -> None:
        """Called on the bridge thread: hand the batch to the UI thread."""
        if not self.post_message(TrainerEvents(events)):
            self.bridge.ack()

    @on(TrainerEvents)
    def _events(self, message: TrainerEvents) -> None:
        try:
            session = self.session
            update = self.runs.apply(message.events)
            for notice in update.notices:
                self._notice(notice.message, notice.level)
            for run_id in update.started:
                note = session.records[run_id].dataset_note
                if note:
                    self._notice(note, "info")
            if update.data_failure is not None:
                self._data_missing(update.data_failure.message)
            for failure in update.failures:
                if failure.kind != "data":
                    self._failed(failure.run_id, failure.kind, failure.message)
            for run_id, status in update.ended:
                if status is RunStatus.DIVERGED:
                    rec = session.records[run_id]
                    self.notify(f"{rec.name()} {rec.error_line}", title="Run diverged",
                                severity="warning", markup=False, timeout=8)
                if status is RunStatus.STOPPED:
                    rec = session.records[run_id]
                    done = rec.epochs_done
                    self.notify(f"{rec.name()} stopped after {done} epoch"
                                f"{'s' * (done != 1)} (kept)", markup=False, timeout=4)
            if update.started or update.ended or update.queue_changed:
                self.refresh_bindings()  # Stop / Cancel / Export may have become (un)available
            if update.ended and not session.active():
                self._all_done()
        finally:
            self.bridge.ack()

    @on(BridgeProblem)
    def _bridge_problem(self, message: BridgeProblem) -> None:
        self.notify(message.message, severity="error", markup=False, timeout=10)

    def _notice(self, message: str, level: str) -> None:
        if message in self._seen_notices:
            return
        self._seen_notices.add(message)
        severity: SeverityLevel = "information"
        if level in ("warning", "error"):
            severity = "warning" if level == "warning" else "error"
        self.notify(message, severity=severity, markup=False,
                    timeout=8 if severity != "information" else 5)

    def _data_missing(self, message: str) -> None:
        """The dataset is missing (the session dropped the runs that needed it): say how to
        fix it and offer the synthetic data."""
        if self._data_dialog_open:
            return
        self._data_dialog_open = True
        self.clear_notifications()  # the start-up "will download" toast is moot now
        self.push_screen(DataMissingScreen(message), self._data_answer)

    def _failed(self, run_id: str, kind: str, message: str) -> None:
        rec = self.session.records.get(run_id)
        name = rec.name() if rec else run_id
        hint = " — the next run starts a fresh trainer" if kind == "worker_died" else ""
        self.notify(f"{name} failed: {first_line(message)}{hint}", title="Run failed",
                    severity="error", markup=False, timeout=10)

    def _data_answer(self, use_synthetic: bool | None) -> None:
        self._data_dialog_open = False
        if use_synthetic:
            self.set_dataset("synthetic")

    def _all_done(self) -> None:
        group = self.runs.chart_runs()
        finished = sum(r.status is RunStatus.FINISHED for r in group)
        if group:
            self.notify(f"Done: {finished} of {len(group)} runs finished · e exports CSV",
                        timeout=5)

    # -- actions (also used by the command palette) ---------------------------------------------
    def _blocked(self) -> bool:
        """True (and tells the user where) when an invalid toggle blocks every start."""
        bad = self.toggles.blocking_error()
        if bad is None:
            return False
        key, why = bad
        self.notify(f"Can't start: {why}", title=f"Invalid value for {key}", severity="error",
                    markup=False)
        self.main.show_field(key)
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the run keys from the Footer (and ignore them) while they can do nothing."""
        if action == "stop_run":
            return self.session.current is not None
        if action == "cancel_queue":
            return bool(self.session.pending)
        if action == "export":
            return bool(self.session.exportable())
        return True

    def action_run_lesson(self) -> None:
        """r: every variant × repeat of the selected lesson (asks when it is partly done)."""
        if self._blocked():
            return
        try:
            requests = self.toggles.lesson_requests()
        except ConfigError as err:
            self.notify(err.message, severity="error", markup=False)
            return
        t = self.toggles
        what = (f"{t.title}: {len(t.preset.variants)} variants × {requests[0].config['repeats']}"
                if t.preset else f"custom: {requests[0].variant}")
        if t.preset is not None:
            group = self.session.latest_group(t.preset.key)
            runs = self.session.group_runs(group)
            if any(not r.terminal for r in runs):
                self.notify(f"{t.title} is already queued or training; X cancels the queue",
                            markup=False, timeout=4)
                return
            missing = missing_runs(runs)
            if missing and len(missing) < len(runs):
                done = len(runs) - len(missing)
                body = (f"{done} of {len(runs)} runs of the last launch finished; "
                        f"{len(missing)} did not (interrupted, stopped, failed or cancelled)."
                        "\n\nRun only the missing ones (same settings, same launch, so the "
                        "verdict counts them together), or run the whole lesson again?")
                self.push_screen(ChoicesScreen(f"{t.title} is partly done", body, [
                    ("missing", f"Run the {len(missing)} missing", "m"),
                    ("all", "Rerun all", "a"), ("", "Cancel", "c")]),
                    lambda answer: self._partly_done(answer, missing, requests, what))
                return
        self._submit(requests, what)

    def _partly_done(self, answer: str | None, missing: list[RunRequest],
                     requests: list[RunRequest], what: str) -> None:
        if answer == "missing":
            self._submit(missing, f"{what} (the missing runs)")
        elif answer == "all":
            self._submit(requests, what)

    def action_run_toggles(self) -> None:
        """t: the current toggles as one variant."""
        if self._blocked():
            return
        try:
            requests = self.toggles.toggle_requests()
        except ConfigError as err:
            self.notify(err.message, severity="error", markup=False)
            return
        self._submit(requests, f"toggles: {requests[0].variant}")

    def _submit(self, requests: list[RunRequest], what: str) -> None:
        try:
            self.runs.submit(requests)
        except Exception as err:  # trainer shut down or cannot start: say so
            self.notify(f"Could not queue the runs: {err}", severity="error", markup=False)
            return
        n = len(requests)
        self.notify(f"Queued {n} run{'s' * (n != 1)} · {what}", markup=False, timeout=3)
        self.refresh_bindings()
        self.main.show_runs()
        self.main.sync()

    def action_stop_run(self) -> None:
        """x: stop the current run within a batch (its finished epochs are kept)."""
        current = self.runs.stop()
        if current is None:
            self.notify("Nothing is running", timeout=2)
            return
        rec = self.session.records.get(current.run_id)
        self.notify(f"Stopping {rec.name() if rec else current.variant} at the end of "
                    "this batch (finished epochs are kept)", markup=False, timeout=3)

    def action_cancel_queue(self) -> None:
        """X: drop every queued run (the current one keeps going)."""
        dropped = self.runs.cancel_queue()
        self.refresh_bindings()
        if dropped:
            self.notify(f"Cancelled {len(dropped)} queued run{'s' * (len(dropped) != 1)}",
                        timeout=3)
        else:
            self.notify("The queue is empty", timeout=2)

    # -- managing runs (label and note, archive and delete, filter) ---------------------------
    def _table(self) -> ResultsTable | None:
        with contextlib.suppress(LookupError, NoMatches):
            return self.main.query_one(ResultsTable)
        return None

    def _chosen_runs(self) -> list[RunRecord]:
        """The run under the table's cursor, or every run of the variant row under it."""
        table = self._table()
        if table is None:
            return []
        records = self.session.records
        run_id = table.cursor_run()
        if run_id is not None:
            return [records[run_id]]
        row = table.cursor_variant()
        return [records[r] for r in row.runs if r in records] if row is not None else []

    def action_label_run(self) -> None:
        """l: the run's own label and note (saved into its file)."""
        table = self._table()
        run_id = table.cursor_run() if table is not None else None
        rec = self.session.records.get(run_id or "")
        if rec is None:
            self.notify("Put the cursor on a run first (Enter expands a variant)", timeout=3)
            return
        if not rec.terminal:
            self.notify(f"{rec.name()} is {rec.status.value}: label it once it has ended",
                        markup=False, timeout=4)
            return

        def done(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            try:
                changed = self.store.annotate(rec.run_id, *answer)
            except StoreError as err:
                self.notify(err.message, title="Not saved", severity="error", markup=False)
                return
            self.runs.replace(changed)
            self.main.sync(force=True)
            self.notify(f"Saved the label and note of {rec.name()}", markup=False, timeout=3)

        self.push_screen(RunNoteScreen(rec.name(), rec.label, rec.note,
                                       blink=self.options.blink), done)

    def action_archive_runs(self) -> None:
        """delete: archive (or delete for good) the chosen runs that have ended, after asking."""
        chosen = self._chosen_runs()
        ended = [r for r in chosen if r.terminal]
        if not ended:
            self.notify("Nothing to archive here: only runs that have ended can be archived "
                        "or deleted" if chosen else "Put the cursor on a run first",
                        timeout=4)
            return
        names = ", ".join(r.name() for r in ended[:4]) + (" …" if len(ended) > 4 else "")
        skipped = len(chosen) - len(ended)
        body = (f"{names}\n\nArchive moves the file{'s' * (len(ended) != 1)} into "
                f"{self.store.dir / self.store.ARCHIVE} (out of the table and the exports; "
                "move it back to restore). Delete removes "
                f"{'them' if len(ended) != 1 else 'it'} for good."
                + (f"\n{skipped} run{'s' * (skipped != 1)} still going stay." if skipped
                   else ""))

        def done(answer: str | None) -> None:
            if answer not in ("archive", "delete"):
                return
            gone, problems = [], []
            for rec in ended:
                try:
                    if answer == "archive":
                        self.store.archive(rec.run_id)
                    else:
                        self.store.discard(rec.run_id)
                    gone.append(rec.run_id)
                except StoreError as err:
                    problems.append(err.message)
            self.runs.forget(gone)
            self.main.sync(force=True)
            verb = "Archived" if answer == "archive" else "Deleted"
            self.notify(f"{verb} {len(gone)} run{'s' * (len(gone) != 1)}", timeout=3)
            for problem in problems[:3]:
                self.notify(problem, title="Not changed", severity="error", markup=False)

        n = len(ended)
        self.push_screen(ChoicesScreen(
            f"Archive or delete {n} run{'s' * (n != 1)}?", body,
            [("keep", "Keep", "k"), ("archive", "Archive", "a"),
             ("delete", "Delete for good", "d")]), done)

    def action_search_runs(self) -> None:
        """/: show only the runs whose name, label, note, lesson, status or id match."""
        def done(text: str | None) -> None:
            if text is None:
                return
            self.runs.search = text
            self.runs.order_changed = True
            table = self._table()
            if table is not None:
                table.sync()
            shown = len(self.runs.table_records())
            self.notify(f"Filter '{text}': {shown} run{'s' * (shown != 1)} shown · / and an "
                        "empty line: every run" if text else "No filter", markup=False,
                        timeout=4)

        self.push_screen(SearchScreen(self.runs.search, blink=self.options.blink), done)

    def action_export(self) -> None:
        """e: the results table (and the lessons' summaries) to CSV."""
        records = self.session.exportable()
        if not records:
            self.notify("Nothing to export yet: no run has started", timeout=3)
            return

        also: list[str] = []

        def write(path: Path) -> Path:
            """The runs, then beside them every epoch and the lessons' statistics and
            verdicts (one per launch)."""
            # Imported here: only an export needs it, and the first frame should not wait.
            from trainer.lessons.summary_csv import lessons_tables, write_tables
            from trainer.store.inside import write_inside_csvs

            records = self.session.exportable()
            out = write_csv(records, path)
            also.clear()
            also.append(f"Every epoch: {write_history_csv(records, history_path(out))}")
            inside = write_inside_csvs(records, out)
            if inside:
                also.append("Inside the network: " + ", ".join(p.name for p in inside))
            tables = lessons_tables(self.toggles.presets, records)
            if tables.summary:
                summary, verdict = write_tables(tables, summary_path(out),
                                                companion_path(out, "verdict"))
                also.append(f"Lesson statistics: {summary}\nVerdicts: {verdict}")
            return out

        def done(path: Path | None) -> None:
            if path is not None:
                n = len(self.session.exportable())
                more = "".join(f"\n{line}" for line in also)
                self.notify(f"Wrote {n} run{'s' * (n != 1)} to {path}{more}",
                            title="CSV exported", markup=False, timeout=8)

        self.push_screen(ExportScreen(default_export_path(), len(records), write,
                                      blink=self.options.blink), done)

    def action_switch_dataset(self) -> None:
        """d: every run on CIFAR-10 or on the synthetic offline data."""
        current = self.toggles.config().dataset
        self.set_dataset("cifar10" if current == "synthetic" else "synthetic")

    def set_dataset(self, name: str) -> None:
        self.toggles.set_override("dataset", name)
        self.main.after_toggles_changed()
        self.update_titles()
        # What the toasts said about the other dataset ("CIFAR-10 is not on this machine",
        # "every run now uses …") is moot now: replace them, never stack them.
        self.clear_notifications()
        if name == "synthetic":
            self.notify("Every run now uses the synthetic offline data (not CIFAR-10; d "
                        "switches back)", title="Dataset: synthetic", timeout=6)
        else:
            self.notify("Every run now uses CIFAR-10", title="Dataset: cifar10", timeout=4)
            self.check_dataset()

    def check_dataset(self) -> None:
        """Say up front when CIFAR-10 is not on this machine (the worker will try to fetch it)."""
        if self.toggles.config().dataset != "cifar10":
            return
        if locate.find_cifar10(self.options.data_dir) is None:
            target = locate.download_dir(self.options.data_dir)
            self.notify(
                f"CIFAR-10 is not on this machine yet; the first run will download it into "
                f"{target} (170 MB). No internet? Press d to use the synthetic offline data, or "
                f"put cifar-10-python.tar.gz there.",
                title="Dataset", severity="warning", markup=False, timeout=15)

    async def action_quit(self) -> None:
        """Every way out (q, ctrl+c, the palette's Quit) asks the same question."""
        self.action_request_quit()

    def action_request_quit(self) -> None:
        if self._quitting or isinstance(self.screen, ConfirmScreen | ChoicesScreen):
            return
        session = self.session
        if not session.active():
            self._quit(True)
            return
        running = session.running()
        parts = []
        if running:
            rec = session.records[running[-1]]
            parts.append(f"{rec.name()} is running (epoch {self.runs.epoch_text(running[-1])})")
        pending = session.pending
        if pending:
            parts.append(f"{len(pending)} runs are queued")
        what = " and ".join(parts) or "Runs are in progress"
        if self.detachable:
            body = (f"{what}.\n\nThe lab can keep training without this window: run "
                    "cnn-tui again (from any terminal) to see the runs where you left them.")
            self.push_screen(ChoicesScreen("Quit cnn-tui?", body, [
                ("keep", "Keep training in the background", "k"),
                ("stop", "Stop the runs", "s"), ("", "Cancel", "c")]), self._quit_lab)
            return
        body = what + (
            ".\n\nQuitting stops the current run (its finished epochs are kept as a stopped run)"
            " and drops the queue. Finished runs stay saved.")
        self.push_screen(ConfirmScreen("Quit cnn-tui?", body, yes="Quit", no="Keep running",
                                       safe_focus=True), self._quit)

    def _quit_lab(self, answer: str | None) -> None:
        if answer == "stop":
            with contextlib.suppress(Exception):  # the lab may be gone already
                self.runs.cancel_queue()
                self.runs.stop()
        if answer in ("keep", "stop"):
            self._quit(True)

    def _offer_resume(self) -> None:
        """A queue is held (left by a lab that died): resume it, or leave it for later."""
        n = len(self.session.pending)
        body = (f"{self.lab_note or 'The queue is held.'}\n\n{n} run{'s' * (n != 1)} "
                "waiting. Resume trains them now; X drops them later.")
        self.push_screen(ConfirmScreen("Resume the queue?", body, yes="Resume",
                                       no="Later"), self._resume)

    def _resume(self, yes: bool | None) -> None:
        if yes:
            self.trainer.resume()
            self.notify("Resumed the queue", timeout=3)

    def _quit(self, yes: bool | None) -> None:
        if yes:
            self._quitting = True
            self.exit()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        from tui.screens.inside import InsideScreen  # (loaded when first needed, not at start)
        from tui.widgets.toggles import ToggleForm

        return [
            ("Everywhere", binding_rows(self.BINDINGS)),
            ("Main screen", binding_rows(MainScreen.BINDINGS)),
            ("Toggles", binding_rows(ToggleForm.BINDINGS)),
            ("Results table", binding_rows(ResultsTable.BINDINGS)),
            ("Inside view", binding_rows(InsideScreen.BINDINGS)),
            ("Lesson text", [("enter", "in the lesson list: read the lesson (arrows scroll)"),
                             *binding_rows(LessonView.BINDINGS)]),
            ("Moving around", NAVIGATION),
        ]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not isinstance(screen, MainScreen):
            return
        t = self.toggles
        # Palette prompts are markup: lesson titles and summaries come from shared files.
        yield SystemCommand("Run lesson", f"Run every variant of {escape(t.title)} (r)",
                            self.action_run_lesson)
        yield SystemCommand("Run toggles", "Run the current toggles as one variant (t)",
                            self.action_run_toggles)
        yield SystemCommand("Stop current run", "Stop the run in progress (x)",
                            self.action_stop_run)
        yield SystemCommand("Cancel queue", "Drop every queued run (X)",
                            self.action_cancel_queue)
        yield SystemCommand("Inside the network", "Layer statistics, confusion matrix, "
                            "confidence, misclassified images and first-layer filters of the "
                            "shown launch (i)", self.main.action_inside)
        yield SystemCommand("Export CSV", "Write the results table to a CSV file (e)",
                            self.action_export)
        yield SystemCommand("Switch dataset", "CIFAR-10 ⇄ synthetic offline data (d)",
                            self.action_switch_dataset)
        yield SystemCommand("Charts: smoothing", "Off / 0.6 / 0.9, raw curves faint (z)",
                            screen.action_smoothing)
        yield SystemCommand("Charts: log loss", "The loss on a log axis, or linear (L)",
                            screen.action_log_loss)
        yield SystemCommand("Charts: pin baseline", "Pin the highlighted run, or unpin (p)",
                            screen.action_pin)
        yield SystemCommand("System line", "CPU, memory and GPU use above the run bar (y)",
                            screen.action_system_pane)
        yield SystemCommand("Reset toggles", "Back to the lesson's values (ctrl+r)",
                            self._reset_toggles)
        yield SystemCommand("Help", "Every key of cnn-tui, by screen (?)", self.action_help)
        if self.problems:
            yield SystemCommand("Skipped files", f"The {len(self.problems):,} run, lesson or "
                                "settings files that could not be used, and why",
                                self.action_show_problems)
        for key, preset in t.presets.items():
            yield SystemCommand(f"Switch lesson: {escape(preset.title)}", escape(preset.summary),
                                lambda k=key: self._switch_lesson(k), discover=False)
            yield SystemCommand(f"Run lesson: {escape(preset.title)}",
                                f"{len(preset.variants)} variants × {preset.repeats} repeats",
                                lambda k=key: self._switch_lesson(k, run=True), discover=False)
        yield SystemCommand("Switch lesson: Custom run", "Your own toggles from the defaults",
                            lambda: self._switch_lesson("custom"), discover=False)

    def _reset_toggles(self) -> None:
        if (form := self.main.toggle_form) is not None:
            form.action_reset()

    def _switch_lesson(self, key: str, run: bool = False) -> None:
        from tui.widgets.lessons import LessonList

        self.main.action_tab("lessons")
        self.main.query_one(LessonList).select_key(key)
        # The highlight message arrives later; apply the lesson now so `run` uses it.
        self.toggles.select(key)
        self.main.after_toggles_changed()
        if run:
            self.action_run_lesson()
