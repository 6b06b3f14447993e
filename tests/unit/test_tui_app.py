"""Pilot tests of the app, driven by keys, against the scripted FakeTrainer (fast, no torch).

The real trainer process is exercised end to end in test_tui_e2e.py; here every UI path —
lessons, toggles, invalid values, run/stop/cancel, export, history, faults, quitting — runs
in well under a second each.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, wait_for
from helpers.fake_trainer import FakeTrainer, Script
from rich.console import Group

from trainer.events import EpochEnd, RunFinished
from trainer.lab.protocol import QueueState, Snapshot
from trainer.lessons.presets import load_presets
from trainer.store.apply import apply_event, now_iso
from trainer.store.export import CSV_COLUMNS
from trainer.store.record import RunRecord, RunStatus
from trainer.store.runstore import RunStore
from tui.app import CnnTuiApp, StartOptions
from tui.screens.dialogs import (
    ChoicesScreen,
    ConfirmScreen,
    DataMissingScreen,
    ExportScreen,
    ProblemsScreen,
)
from tui.screens.help import HelpScreen
from tui.state.columns import sorted_ids
from tui.widgets.charts import ChartLegend, CurveChart
from tui.widgets.lessons import LessonView
from tui.widgets.results import ResultsTable
from tui.widgets.toggles import ToggleRow
from tui.widgets.verdict import VerdictCard

SIZE = (120, 40)


def aio(fn):
    """Run an async test with asyncio.run (the project does not use pytest-asyncio)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def make_app(tmp_path: Path, script: Script | None = None, **options) -> CnnTuiApp:
    runs = tmp_path / "runs"
    fake = options.pop("trainer_cls", FakeTrainer)(script or Script(), store=RunStore(runs))
    overrides = options.pop("overrides", {"dataset": "synthetic", "epochs": 2, "repeats": 1})
    options.setdefault("check_data", False)
    opts = StartOptions(runs_dir=runs, overrides=overrides, blink=False, refresh_interval=0.1,
                        **options)
    app = CnnTuiApp(fake, opts)
    # Keep every notification (toasts expire, and a loaded CI machine can be slow to look).
    app.seen_notes = []
    notify = app.notify

    def remember(message, *args, **kwargs):
        app.seen_notes.append(str(message))
        return notify(message, *args, **kwargs)

    app.notify = remember
    deliver = app.bridge.deliver

    def count(*args):
        app.deliveries = getattr(app, "deliveries", 0) + 1
        return deliver(*args)

    app.bridge.deliver = count
    return app


def palette_offers(app, prompt: str) -> bool:
    """Whether the open command palette's highlighted hit is `prompt`."""
    from textual.command import CommandList

    try:
        hits = app.screen.query_one(CommandList)
    except Exception:
        return False
    option = hits.highlighted_option
    return option is not None and prompt in str(option.prompt)


def footer_has(app, description: str) -> bool:
    """Whether the Footer offers a key with this description right now."""
    return any(active.binding.description == description and active.enabled
               and active.binding.show for active in app.screen.active_bindings.values())



def plain(widget) -> str:
    """The text a Static/Label shows (Rich Text, Group of Texts, or a string)."""
    content = widget.content
    if isinstance(content, Group):
        return "\n".join(getattr(r, "plain", str(r)) for r in content.renderables)
    return getattr(content, "plain", str(content))


def notes(app: CnnTuiApp) -> list[str]:
    return app.seen_notes


def statuses(app: CnnTuiApp) -> list[str]:
    return [app.session.status_label(r) for r in app.session.records]


def cell(app: CnnTuiApp, run_id: str, column: str) -> str:
    table = app.main.query_one(ResultsTable)
    value = table.cell(run_id, column)
    return getattr(value, "plain", str(value))


@aio
async def test_pick_lesson_shows_text_and_toggles(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.main.query_one(LessonView)
        assert "Batch normalization" in str(app.sub_title)
        assert "What the course found" in plain(view.query_one("#lesson-text"))
        await pilot.press("enter")  # read the lesson: the text gets the focus …
        assert app.focused is view
        await pilot.press("escape")  # … and Esc goes back to the list
        await pilot.press("down")
        await pilot.pause()
        assert app.toggles.lesson == "bn_high_lr"
        await wait_for(pilot, lambda: "large learning rate" in str(app.sub_title),
                       what="the title of the lesson picked")
        await pilot.press("2")
        assert app.main.page == "toggles"
        row = app.main.query_one("#row-lr", ToggleRow)
        assert "varies by variant" in plain(row.query_one(".toggle-note"))
        # Start options are shown as such.
        epochs = app.main.query_one("#row-epochs", ToggleRow)
        assert epochs.query_one("Input").value == "2"
        assert "start option" in plain(epochs.query_one(".toggle-note"))
        # The custom entry starts from the defaults.
        await pilot.press("1", "end")
        await pilot.pause()
        assert app.toggles.lesson == "custom" and app.toggles.config().init == "glorot_uniform"


@aio
async def test_invalid_toggle_is_marked_and_blocks_start(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.main.query_one("#toggle-lr").focus()
        await pilot.press(*"fast")
        await pilot.pause()
        row = app.main.query_one("#row-lr", ToggleRow)
        assert row.has_class("-invalid")
        assert app.main.query_one("#toggle-lr").has_class("-invalid")
        reason = plain(row.query_one(".toggle-error"))
        assert "lr must be a number" in reason and "'fast'" in reason
        assert "invalid" in plain(row.query_one(".toggle-note"))
        await pilot.press("escape", "r")
        await pilot.pause()
        assert app.trainer.submitted == []  # nothing reached the trainer
        assert app.focused is app.main.query_one("#toggle-lr")
        assert any("Can't start" in n for n in notes(app))
        await pilot.press("ctrl+u", *"0.01", "escape")
        await pilot.pause()
        assert not row.has_class("-invalid") and row.has_class("-changed")
        assert "edited" in plain(row.query_one(".toggle-note"))
        await pilot.press("r")
        await pilot.pause()
        assert len(app.trainer.submitted) == 2
        assert {r.config["lr"] for r in app.trainer.submitted} == {0.01}


@aio
async def test_switch_and_select_edits(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.main.query_one("#toggle-shuffle").focus()
        await pilot.press("space")
        await pilot.pause()
        assert app.toggles.edits == {"shuffle": False}
        app.main.query_one("#toggle-optimizer").focus()
        await pilot.press("enter", "down", "enter")
        await pilot.pause()
        assert app.toggles.edits["optimizer"] == "sgd"
        assert "shuffle off" in plain(app.main.query_one("#toggle-summary"))
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.toggles.edits == {}
        assert app.main.query_one("#toggle-shuffle").value is True


@aio
async def test_run_lesson_fills_table_charts_and_bar(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await pilot.pause()
        assert app.main.page == "runs"
        table = app.main.query_one(ResultsTable)
        assert table.row_count == 2
        await wait_for(pilot, lambda: statuses(app) == ["finished", "finished"], what="runs")
        first, second = app.session.records
        await wait_for(pilot, lambda: cell(app, second, "status").endswith("finished"),
                       what="the table to show both results")
        assert cell(app, first, "status").endswith("finished")
        assert cell(app, first, "epoch") == "2/2"
        assert cell(app, first, "test_acc").endswith("%")
        assert cell(app, second, "bn") == "on"
        chart = app.main.query_one("#loss-chart", CurveChart)
        # One curve per variant (the mean view; with one repeat the mean is the run).
        assert [[b.epoch for b in c.bands["val_loss"]] for c in chart.shown_curves] == [
            [1, 2], [1, 2]]
        legend = plain(app.main.query_one(ChartLegend))
        assert "BN off" in legend and "BN on" in legend
        assert "idle" in plain(app.main.query_one("#run-label"))
        assert any(n.startswith("Done: 2 of 2") for n in notes(app))
        # Records were saved like the real worker does.
        assert len(list((tmp_path / "runs").glob("*.json"))) == 2


@aio
async def test_progress_bar_and_queue_while_running(tmp_path):
    app = make_app(tmp_path, Script(steps=400, steps_per_poll=1, delay=0.01),
                   overrides={"dataset": "synthetic", "epochs": 3, "repeats": 2})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.session.progress, what="progress")
        await wait_for(pilot, lambda: "ep 1/3" in plain(app.main.query_one("#run-label")),
                       what="the run bar")
        label = plain(app.main.query_one("#run-label"))
        assert "▶ BN off #1 (1/4)" in label and "ep 1/3" in label
        assert "ETA" in plain(app.main.query_one("#run-eta"))
        queue = plain(app.main.query_one("#queue-line"))
        assert "queue 3" in queue and "img/s" in queue
        # The live running loss is drawn as the epoch goes (redrawn about once a second).
        chart = app.main.query_one("#loss-chart", CurveChart)
        await wait_for(pilot, lambda: any(c.live for c in chart.shown_curves), timeout=5,
                       what="live point")
        # Stop the current run: it ends as stopped, the next one starts.
        await pilot.press("x")
        await wait_for(pilot, lambda: statuses(app)[0] == "stopped", what="stop")
        await wait_for(pilot, lambda: app.session.running(), what="next run")
        await pilot.press("X")
        await pilot.pause()
        assert app.trainer.pending() == []
        assert statuses(app) == ["stopped", "running"]  # cancelled rows are gone
        assert any("Cancelled 2 queued runs" in n for n in notes(app))


@aio
async def test_export_csv_default_path_and_bad_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        # Nothing to export yet: the Footer does not offer `e`, and the key does nothing.
        assert not footer_has(app, "Export")
        await pilot.press("e")
        await pilot.pause()
        assert not isinstance(app.screen, ExportScreen)
        await pilot.press("r")
        await wait_for(pilot, lambda: statuses(app) == ["finished", "finished"], what="runs")
        assert footer_has(app, "Export") and not footer_has(app, "Stop")
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("enter")  # accept the default path
        await pilot.pause()
        assert not isinstance(app.screen, ExportScreen)
        files = sorted(tmp_path.glob("cnn-tui-results-*.csv"), key=lambda p: len(p.name))
        stem = files[0].stem
        assert sorted(p.stem for p in files[1:]) == [stem + k for k in
                                                     ("-history", "-summary", "-verdict")]
        with files[0].open() as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == list(CSV_COLUMNS) and len(rows) == 2
        with (tmp_path / f"{stem}-history.csv").open() as f:
            epochs = list(csv.DictReader(f))
        assert sorted((r["run_id"], r["epoch"]) for r in epochs) == sorted(
            (r["run_id"], str(e)) for r in rows for e in range(1, int(r["epochs_done"]) + 1))
        assert any(all(str(f) in n for f in files) for n in notes(app))
        # A missing folder: the dialog says why and stays open; nothing is lost.
        await pilot.press("e", "ctrl+u", *"/no/such/dir/out.csv", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        assert "does not exist" in plain(app.screen.query_one("#export-error"))
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ExportScreen)
        assert app.main.query_one(ResultsTable).row_count == 2


def stored_run(store: RunStore, req, epochs: int = 3) -> RunRecord:
    rec = RunRecord.from_request(req, RunStatus.RUNNING, created=now_iso())
    for e in range(1, epochs + 1):
        rec = apply_event(rec, EpochEnd(req.run_id, e, 1.5 - e / 10, 0.4, 1.6 - e / 10, 0.45,
                                        0.001, 1.0, True, False))
    rec = apply_event(rec, RunFinished(req.run_id, 1.2, 0.5, epochs, 0.45, 1.3, epochs, 3.0,
                                       100.0))
    store.save(rec)
    return rec


@aio
async def test_history_is_loaded_with_curves_and_corrupt_file_named(tmp_path):
    presets, _ = load_presets()
    from trainer.lessons.planning import build_requests

    store = RunStore(tmp_path / "runs")
    reqs = build_requests(presets["batch_norm"], {"dataset": "synthetic"}, repeats=1)
    for req in reqs:
        stored_run(store, req)
    (tmp_path / "runs" / "broken.json").write_text('{"run_id": "x", "sta')
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: app.main.query_one(ResultsTable).row_count == 2,
                       what="the stored runs in the table")
        chart = app.main.query_one("#acc-chart", CurveChart)
        assert [[b.epoch for b in c.bands["val_acc"]] for c in chart.shown_curves] == [
            [1, 2, 3], [1, 2, 3]]
        assert any("broken.json" in n for n in notes(app))
        # Moving through the table highlights that run in the charts.
        await pilot.press("down")
        second = list(app.session.records)[1]
        await wait_for(pilot, lambda: app.runs.selected == second, what="the highlight")
        assert [s.run_id for s in chart.shown] == [second]  # drawn on top of the means
        await pilot.press("m")  # every run: the highlighted one in colour, the rest faded
        assert [s.selected for s in chart.shown] == [False, True]
        variant = app.session.records[second].variant
        assert variant in plain(app.main.query_one("#run-detail"))
        await pilot.press("s")  # sort: test accuracy, best first
        table = app.main.query_one(ResultsTable)
        assert table.sort_column == "test_acc"
        for key, reverse in (("s", True), ("S", False)):  # moved in place, never rebuilt
            if key == "S":
                await pilot.press("S")
            shown = table.row_keys()
            assert shown == sorted_ids(app.runs, "test_acc", reverse)
            assert [r.key for r in table.rows_shown] == shown


@aio
async def test_verdict_mean_curves_and_grouped_table(tmp_path):
    app = make_app(tmp_path, overrides={"dataset": "synthetic", "epochs": 3, "repeats": 2})
    async with app.run_test(size=SIZE) as pilot:
        card = app.main.query_one("#lesson-verdict", VerdictCard)
        assert "No runs of" in plain(card)
        await pilot.press("r")
        await wait_for(pilot, lambda: statuses(app) == ["finished"] * 4, what="runs")
        # Verdict cards (lesson tab and runs tab) follow the runs.
        runs_card = app.main.query_one("#runs-verdict", VerdictCard)
        await wait_for(pilot, lambda: runs_card.verdict is not None
                       and runs_card.verdict.stats is not None
                       and runs_card.verdict.stats.finished == 4, what="the final verdict")
        assert runs_card.verdict is not None and runs_card.verdict.status != "pending"
        assert card.verdict is not None and card.verdict.headline in plain(card)
        # Mean view: one curve per variant, from both repeats.
        chart = app.main.query_one("#acc-chart", CurveChart)
        assert [c.variant for c in chart.shown_curves] == ["BN off", "BN on"]
        assert all(c.runs == 2 for c in chart.shown_curves)
        assert chart.shown_curves[0].bands["val_acc"][0].n == 2
        await pilot.press("m")
        assert chart.shown_curves == [] and len(chart.shown) == 4
        # Grouped table: a row per variant, Enter expands it, c keeps differing columns.
        table = app.main.query_one(ResultsTable)
        await pilot.press("g")
        assert [r.key.split(":")[-1] for r in table.rows_shown] == ["BN off", "BN on"]
        await pilot.press("enter")
        assert len(table.rows_shown) == 4 and table.rows_shown[1].run_id is not None
        await pilot.press("c")
        assert "init" not in table.column_keys()
        assert "bn" in table.column_keys()
        # Export: the runs, and beside them the lesson's statistics and the verdict.
        out = tmp_path / "bn.csv"
        await pilot.press("e", "ctrl+u", *str(out), "enter")
        await pilot.pause()
        with (tmp_path / "bn-summary.csv").open() as f:
            summary = list(csv.DictReader(f))
        variants = [r for r in summary if r["metric"] == "test_acc"]
        assert [(r["variant"], r["runs_finished"]) for r in variants] == [("BN off", "2"),
                                                                         ("BN on", "2")]
        assert variants[1]["diff_n"] == "2" and variants[1]["diff_ci_low"] != ""
        with (tmp_path / "bn-verdict.csv").open() as f:
            verdicts = list(csv.DictReader(f))
        assert {r["headline"] for r in verdicts} == {runs_card.verdict.headline}
        assert len(list(csv.DictReader(out.open()))) == 4


@aio
async def test_bad_preset_file_is_named_and_app_starts(tmp_path):
    extra = tmp_path / "lessons"
    extra.mkdir()
    (extra / "broken.toml").write_text('title = "x"\n[[variants]]\nlabel = "a"\nlr = "fast"\n')
    app = make_app(tmp_path, presets_dirs=[str(extra)])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert any("broken.toml" in n and "lr" in n for n in notes(app))
        assert "batch_norm" in app.toggles.presets


@aio
async def test_failed_run_shows_reason_and_next_run_works(tmp_path):
    script = Script(fail={"BN off": ("error", "RuntimeError: shapes do not match\ndetails")})
    app = make_app(tmp_path, script)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: statuses(app) == ["failed", "finished"], what="runs")
        first = next(iter(app.session.records))
        await wait_for(pilot, lambda: "shapes do not match" in cell(app, first, "status"),
                       what="the reason in the table")
        assert "details" not in cell(app, first, "status")
        assert any("BN off failed: RuntimeError" in n for n in notes(app))


@aio
async def test_worker_death_marks_run_failed(tmp_path):
    app = make_app(tmp_path, Script(steps=10_000, steps_per_poll=1, delay=0.1))  # 10 events/s
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.session.running(), what="running")
        app.trainer.kill_worker()
        await wait_for(pilot, lambda: statuses(app)[0] == "failed", timeout=2, what="failed")
        first = next(iter(app.session.records))
        await wait_for(pilot, lambda: "trainer process died" in cell(app, first, "status"),
                       what="the reason in the table")
        assert any("next run starts a fresh trainer" in n for n in notes(app))


@aio
async def test_missing_dataset_offers_synthetic(tmp_path):
    message = "CIFAR-10 was not found and could not be downloaded.\nTo fix it, either: ..."
    script = Script(fail={"BN off": ("data", message), "BN on": ("data", message)})
    app = make_app(tmp_path, script, overrides={"epochs": 1, "repeats": 2})
    async with app.run_test(size=SIZE) as pilot:
        assert app.toggles.config().dataset == "cifar10"
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, DataMissingScreen)
                       and app.screen.query(".dialog-body"), what="the dialog, composed")
        # Every other cifar10 run would fail the same way: they were cancelled, not run
        # (one may already have been handed to the trainer; it fails the same way).
        await wait_for(pilot, lambda: set(statuses(app)) == {"failed"}, what="the drop")
        assert len(statuses(app)) < 4
        assert app.trainer.pending() == []
        assert "To fix it" in plain(app.screen.query_one(".dialog-body"))
        await pilot.press("enter")  # "Use synthetic data" has the focus
        await pilot.pause()
        assert app.toggles.config().dataset == "synthetic"
        assert app.toggles.source("dataset") == "option"
        assert "data synthetic" in str(app.sub_title)


@aio
async def test_dataset_key_switches_and_warns_when_missing(tmp_path, monkeypatch):
    monkeypatch.setattr("trainer.locate.find_cifar10", lambda data_dir=None: None)
    app = make_app(tmp_path, check_data=True, overrides={})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert any("CIFAR-10 is not on this machine" in n for n in notes(app))
        await pilot.press("d")
        assert app.toggles.config().dataset == "synthetic"
        await pilot.press("d")
        assert app.toggles.config().dataset == "cifar10"
        # The warning about the old state is replaced, never stacked or left behind.
        await pilot.pause()
        shown = [n.message for n in app._notifications]
        assert sum("CIFAR-10 is not on this machine" in m for m in shown) == 1
        assert not any("synthetic offline data (not CIFAR-10" in m for m in shown)
        await pilot.press("d")
        await pilot.pause()
        assert not any("not on this machine" in n.message for n in app._notifications)


@aio
async def test_event_flood_keeps_ui_responsive(tmp_path):
    script = Script(steps=100, steps_per_poll=100, progress_per_step=25, delay=0.001)
    app = make_app(tmp_path, script, overrides={"dataset": "synthetic", "epochs": 5,
                                                "repeats": 2})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: statuses(app) == ["finished"] * 4, timeout=20,
                       what="flood")
        # 4 runs × 5 epochs × 100 steps × 25 = 50k progress events went through …
        # … in a few hundred messages at most (batched, superseded progress dropped) …
        assert app.deliveries < 1000
        assert len(app.session.progress) == 0  # … and none of them is kept.
        start = time.monotonic()
        await pilot.press("1")
        assert app.main.page == "lessons"
        assert time.monotonic() - start < 5.0  # generous: CI machines are shared


@aio
async def test_quit_mid_run_asks_then_stops_trainer(tmp_path):
    app = make_app(tmp_path, Script(steps=10_000, steps_per_poll=1, delay=0.1))  # 10 events/s
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.session.running(), what="running")
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and app.session.running()
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")  # the safe answer has the focus: nothing is lost
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and app.session.running()
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert app.trainer.closed
    assert not app.bridge.alive


class LabLikeTrainer(FakeTrainer):
    """A fake with a lab's snapshot: the app treats it as a lab it can detach from."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.snapshot = Snapshot(records=(), progress=(), queue=QueueState(), devices=("cpu",),
                                 lab_pid=1, started="")
        self.detached = False

    def shutdown(self, timeout: float = 3.0):
        self.detached = True  # a lab client only detaches: nothing is stopped here
        self.closed = True
        return []


@pytest.mark.parametrize(("answer", "stops"), [("k", False), ("s", True)])
@aio
async def test_quit_with_a_lab_offers_to_keep_training(tmp_path, answer, stops):
    # (Ten progress events a second, as a real worker sends at most: the run outlasts the test.)
    app = make_app(tmp_path, Script(steps=10_000, steps_per_poll=1, delay=0.1),
                   trainer_cls=LabLikeTrainer)
    lab = app.trainer
    assert app.detachable
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.session.running(), what="running")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoicesScreen), what="dialog")
        await pilot.press("c")  # cancel: back to the app, nothing stopped
        await wait_for(pilot, lambda: not isinstance(app.screen, ChoicesScreen))
        assert app.is_running and lab.stop_requests == 0
        if answer == "k":  # the palette's Quit asks the same question
            await pilot.press("ctrl+p", *"quit")
            await wait_for(pilot, lambda: palette_offers(app, "Quit"), what="palette")
            await pilot.press("enter")
        else:
            await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoicesScreen), what="dialog")
        await pilot.press(answer)
        await pilot.pause()
    assert lab.detached and app.return_code == 0
    assert (lab.stop_requests > 0) is stops  # keep: the run goes on in the lab


@aio
async def test_a_big_store_loads_after_the_first_frame(tmp_path, monkeypatch):
    import tui.app as app_module

    monkeypatch.setattr(app_module, "INLINE_STORE_RUNS", 2)
    store = RunStore(tmp_path / "runs")
    preset = load_presets()[0]["batch_norm"]
    from trainer.lessons.planning import build_requests

    reqs = build_requests(preset, {"dataset": "synthetic", "epochs": 2, "repeats": 3})
    for req in reqs:
        store.save(RunRecord.from_request(req, RunStatus.RUNNING).with_changes(
            status=RunStatus.FINISHED, created=now_iso()))
    (tmp_path / "runs" / "bad.json").write_text("{")
    app = make_app(tmp_path)
    assert app.store_loading and not app.session.records  # nothing parsed yet
    async with app.run_test(size=SIZE) as pilot:
        table = app.main.query_one(ResultsTable)
        await wait_for(pilot, lambda: table.row_count == len(reqs), what="the stored runs")
        assert not app.store_loading
        await wait_for(pilot, lambda: any("bad.json" in n for n in notes(app)),
                       what="the bad file's warning")


@aio
async def test_a_partly_done_lesson_asks_for_the_missing_runs(tmp_path):
    store = RunStore(tmp_path / "runs")
    preset = load_presets()[0]["batch_norm"]
    from trainer.lessons.planning import build_requests

    reqs = build_requests(preset, {"dataset": "synthetic", "epochs": 2, "repeats": 1},
                          group="g-old")
    done, cut = (RunRecord.from_request(r, RunStatus.RUNNING) for r in reqs)
    store.save(done.with_changes(status=RunStatus.FINISHED, created=now_iso()))
    store.save(cut.with_changes(status=RunStatus.INTERRUPTED, created=now_iso()))
    app = make_app(tmp_path, Script(hold=True))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoicesScreen), what="dialog")
        await pilot.press("m")
        await wait_for(pilot, lambda: app.trainer.submitted, what="the missing run")
        (again,) = app.trainer.submitted
        assert (again.variant, again.repeat, again.group) == (cut.variant, 0, "g-old")
        assert again.config == cut.config and again.run_id != cut.run_id
        await pilot.press("r")  # that launch is now queued: say so instead of twice
        await pilot.pause()
        assert len(app.trainer.submitted) == 1
        assert any("already queued" in n for n in notes(app))


@aio
async def test_quit_when_idle_is_immediate(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.trainer.closed and app.return_code == 0


@aio
async def test_help_screen_and_command_palette(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert isinstance(app.screen.query_one("#help-keys").content, Group)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        sections = dict(app.help_sections())
        main_keys = dict(sections["Main screen"])
        assert main_keys["r"].startswith("Run every variant")
        assert "X (shift+x)" in main_keys
        titles = [c.title for c in app.get_system_commands(app.main)]
        for title in ("Run lesson", "Export CSV", "Stop current run",
                      "Switch lesson: Batch normalization", "Run lesson: Batch size"):
            assert title in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"export csv")
        await wait_for(pilot, lambda: palette_offers(app, "Export CSV"), what="the search")
        await pilot.press("enter")
        await pilot.pause()
        assert any("Nothing to export" in n for n in notes(app))


def test_the_app_opens_and_switches_tabs_without_importing_torch(tmp_path):
    """The one runtime check behind the import contracts (.importlinter): a real app with a
    real TrainerProcess handle opens, shows every tab, and torch never enters the process
    (nor NumPy, Pillow and textual-image, which wait for the Inside view's first gallery)."""
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from trainer.events import WorkerSettings\n"
        "from trainer.host.process import TrainerProcess\n"
        "from tui.app import CnnTuiApp, StartOptions\n"
        "async def main(runs):\n"
        "    trainer = TrainerProcess(WorkerSettings(runs_dir=runs))\n"
        "    app = CnnTuiApp(trainer, StartOptions(runs_dir=Path(runs), prestart=False,\n"
        "                                          check_data=False, blink=False))\n"
        "    async with app.run_test() as pilot:\n"
        "        for key in '231?':\n"
        "            await pilot.press(key)\n"
        "            await pilot.pause()\n"
        "    trainer.shutdown()\n"
        "asyncio.run(main(sys.argv[1]))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "late = {'numpy', 'PIL', 'textual_image'} & set(sys.modules)\n"
        "assert not late, f'{late} imported before the first gallery'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@aio
async def test_layouts_fit(tmp_path, size):
    """Nothing essential is cut off at 80×24 and it all shows at 120×40."""
    app = make_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        for tab in ("1", "2", "3"):
            await pilot.press(tab)
            await pilot.pause()
        bar = app.main.query_one("#run-bar")
        assert bar.region.bottom <= size[1] - 1  # above the footer
        charts = app.main.query_one("#loss-chart")
        assert charts.region.height >= 6
        assert app.main.query_one(ResultsTable).region.height >= 4


def test_store_files_are_json(tmp_path):
    """The FakeTrainer persists like the worker (history reload tests depend on it)."""
    store = RunStore(tmp_path)
    presets, _ = load_presets()
    from trainer.lessons.planning import build_requests

    rec = stored_run(store, build_requests(presets["init"], {}, repeats=1)[0], epochs=2)
    data = json.loads((tmp_path / f"{rec.run_id}.json").read_text())
    assert data["status"] == "finished" and len(data["history"]) == 2


HOSTILE_LESSON = """title = "Evil [/] \\u001b]2;pwned\\u0007 lesson"
summary = "[bold red]red[/] [link=http://x]link[/link] \\u001b[5mblink"
lesson = "Text with [/] and \\u001b[2J in it."
expect = "[b]"
[[variants]]
label = "off [/]"
batch_norm = false
[[variants]]
label = "on \\u001b[5m"
batch_norm = true
"""


@aio
async def test_a_folder_of_foreign_files_is_one_notice_and_every_file_is_listed(tmp_path):
    """Pointed at a folder of other JSON files, the app says so once (one toast per file
    stalled the start for seconds and buried the screen) and lists every file on demand."""
    runs = tmp_path / "runs"
    runs.mkdir()
    for i in range(40):
        (runs / f"other{i:02}.json").write_text('{"name": "not a run"}')
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any("40 problems" in n for n in notes(app)),
                       what="one notice for the 40 files")
        assert sum("other" in n for n in notes(app)) == 1
        await pilot.press("ctrl+p", *"skipped files")
        await wait_for(pilot, lambda: palette_offers(app, "Skipped files"), what="the command")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProblemsScreen), what="the list")
        listed = plain(app.screen.query_one("#problems-list"))
        assert all(f"other{i:02}.json" in listed for i in range(40)), listed
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ProblemsScreen))


@aio
async def test_hostile_files_are_shown_literally_and_the_queue_survives(tmp_path):
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (lessons / "evil.toml").write_text(HOSTILE_LESSON)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "oops.json").write_text('{"run_id":"x","status":"finished","config":{},'
                                    '"summary":"oops"}')
    os.mkfifo(runs / "fifo.json")
    app = make_app(tmp_path, presets_dirs=[str(lessons)])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any("oops.json" in n and "summary" in n
                                          for n in notes(app)), what="the store warning")
        assert any("fifo.json" in n for n in notes(app))
        app._switch_lesson("evil")
        await pilot.pause()
        head = plain(app.main.query_one("#lesson-head"))
        assert "Evil [/] ␛]2;pwned␇ lesson" in head and "\x1b" not in head
        await pilot.press("r")
        await wait_for(pilot, lambda: statuses(app) == ["finished", "finished"], what="runs")
        first = next(iter(app.session.records))
        assert cell(app, first, "variant") == "off [/]"
        await pilot.press("ctrl+p")
        await pilot.press(*"evil")
        await wait_for(pilot, lambda: palette_offers(app, "Evil [/]"), what="the palette")
        await pilot.press("escape")
        svg = app.export_screenshot()
        assert "\x1b" not in svg and "pwned" in svg


def visible(widget) -> bool:
    """Whether the widget is on screen now (hidden panels have no region)."""
    return widget.region.area > 0


@aio
async def test_the_verdict_is_one_key_away_at_80x24(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: statuses(app) == ["finished", "finished"], what="runs")
        card = app.main.query_one("#runs-verdict", VerdictCard)
        line = app.main.query_one("#verdict-line")
        await wait_for(pilot, lambda: card.verdict is not None and card.verdict.final,
                       what="the verdict")
        # No room for the card beside the table: a line says what it says and where it is.
        panel = app.main.query_one("#runs-verdict-panel")
        assert not visible(panel) and visible(line)
        assert "v: full verdict" in plain(line) and card.verdict.headline[:20] in plain(line)
        assert footer_has(app, "Verdict")
        table = app.main.query_one(ResultsTable)
        await pilot.press("v")
        await wait_for(pilot, lambda: visible(panel) and not visible(table),
                       what="the verdict in the table's place")
        assert "Try next" in plain(card) and app.focused is panel
        assert "back to the table" in str(panel.border_title)  # the hidden table is named
        assert footer_has(app, "Table") and not footer_has(app, "Verdict")
        await pilot.press("escape")
        await wait_for(pilot, lambda: visible(table) and not visible(panel), what="the table")
        assert app.focused is table and footer_has(app, "Verdict")
        await pilot.press("1")  # v belongs to the runs: not offered over the lessons
        assert not footer_has(app, "Verdict")


@aio
async def test_one_seed_verdict_is_hedged_in_the_card(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: statuses(app) == ["finished", "finished"], what="runs")
        card = app.main.query_one("#runs-verdict", VerdictCard)
        await wait_for(pilot, lambda: card.verdict is not None and card.verdict.final,
                       what="the verdict")
        text = plain(card)
        assert card.verdict.n == 1 and "no uncertainty" in text
        if card.verdict.tentative:
            assert "at face value (one seed)" in text.splitlines()[0]
        assert "✓ matches the course" not in text


@pytest.mark.parametrize("size", [(160, 40), (200, 50)])
@aio
async def test_a_wide_terminal_shows_lessons_or_toggles_beside_the_runs(tmp_path, size):
    app = make_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        lessons = app.main.query_one("#lesson-list")
        table = app.main.query_one(ResultsTable)
        assert visible(lessons) and visible(table)
        assert lessons.region.right <= table.region.x  # side by side, lessons on the left
        assert app.main.query_one("#tab-runs").has_class("-hidden")  # no tab for them
        await pilot.press("2")
        await wait_for(pilot, lambda: visible(app.main.query_one("#toggle-lr")),
                       what="the toggles")
        assert visible(table) and not visible(lessons)
        await pilot.press("3")
        assert app.focused is table and visible(app.main.query_one("#toggle-lr"))
        await pilot.resize_terminal(120, 40)  # narrower: one page, the runs chosen last
        await wait_for(pilot, lambda: not visible(app.main.query_one("#toggle-lr")),
                       what="one page")
        assert visible(table) and not app.main.query_one("#tab-runs").has_class("-hidden")
        assert app.main.query_one("#tabs").active == "tab-runs"


@aio
async def test_one_page_at_a_time_below_160_columns(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(159, 40)) as pilot:
        await pilot.pause()
        assert visible(app.main.query_one("#lesson-list"))
        assert not visible(app.main.query_one(ResultsTable))
        await pilot.press("3")
        await pilot.pause()
        assert not visible(app.main.query_one("#lesson-list"))


async def open_toggles(pilot) -> None:
    await pilot.press("2")
    await wait_for(pilot, lambda: pilot.app.focused is not None
                   and (pilot.app.focused.id or "").startswith("toggle-"), what="the form")


@aio
async def test_toggle_focus_is_marked_and_arrows_move_between_controls(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_toggles(pilot)
        select = app.main.query_one("#toggle-dataset")
        assert app.focused is select
        row = app.main.query_one("#row-dataset", ToggleRow)
        # A thick accent bar and the key in reverse video: visible at any colour depth.
        assert row.styles.border_left[0] == "thick"
        assert row.query_one(".toggle-key").styles.text_style.reverse
        other = app.main.query_one("#row-train_subset", ToggleRow)
        assert other.styles.border_left[0] == "blank"
        assert not other.query_one(".toggle-key").styles.text_style.reverse
        await pilot.press("down")  # on a Select: the next field, not the dropdown
        assert not select.expanded and app.focused is app.main.query_one("#toggle-train_subset")
        await pilot.press("up")
        assert app.focused is select and not select.expanded
        await pilot.press("enter")
        assert select.expanded  # enter (or space) opens it
        await pilot.press("escape")
        await pilot.press(*["down"] * 5)  # Inputs too, once per key even in one burst
        assert app.focused is app.main.query_one("#toggle-augment")
        await pilot.press("down")
        assert app.focused is app.main.query_one("#toggle-batch_norm")
        await pilot.press("space")  # the switch still flips
        assert app.toggles.edits == {"batch_norm": True}


@aio
async def test_invalid_value_reason_is_whole_and_edits_list_only_valid_values(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_toggles(pilot)
        form = app.main.query_one("#toggle-form")
        app.main.query_one("#toggle-batch_size").focus()
        await pilot.press("ctrl+u", "6")
        await pilot.pause()
        assert "batch 6" in plain(app.main.query_one("#toggle-summary"))
        await pilot.press("x")
        error = app.main.query_one("#row-batch_size").query_one(".toggle-error")
        # The whole reason, allowed range included, on screen without scrolling.
        await wait_for(pilot, lambda: visible(error)
                       and form.scrollable_content_region.contains_region(error.region),
                       what="the whole reason in view")
        assert plain(error) == "✗ batch_size must be an integer from 1 to 50000, got '6x'"
        # The half-typed value is no edit: neither summary lists it beside the error.
        summary = plain(app.main.query_one("#toggle-summary"))
        assert "your edits" not in summary and "1 invalid value" in summary
        plan = plain(app.main.query_one("#lesson-head"))
        assert "Your edits" not in plan and "batch_size must be an integer" in plan
        await pilot.press("backspace", "backspace", "3", "2")
        await pilot.pause()
        assert "your edits: batch 32" in plain(app.main.query_one("#toggle-summary"))
        assert not visible(error)


@aio
async def test_every_toggle_label_fits_at_80_columns(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_toggles(pilot)
        for row in app.main.query(ToggleRow):
            label = row.query_one(".toggle-key")
            assert label.content_region.width >= len(row.key), row.key
