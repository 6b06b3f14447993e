"""Managing runs: a label and a note saved into the run's file, archive and delete after
asking (from the store too), and a filter over the table. Only runs that have ended change."""

from __future__ import annotations

import asyncio
import json

import pytest
from helpers import wait_for
from helpers.fake_trainer import FakeTrainer, Script
from rich.text import Text

from trainer.events import RunRequest
from trainer.store.apply import now_iso
from trainer.store.record import RunRecord, RunStatus
from trainer.store.runstore import RunStore, StoreError
from tui.app import CnnTuiApp, StartOptions
from tui.screens.dialogs import ChoicesScreen, RunNoteScreen, SearchScreen
from tui.widgets.results import ResultsTable


def stored(store: RunStore, variant: str, repeat: int = 0,
           status: RunStatus = RunStatus.FINISHED) -> RunRecord:
    req = RunRequest(config={"lr": 0.001, "epochs": 1, "repeats": 2}, preset="batch_norm",
                     variant=variant, repeat=repeat, group="g1")
    rec = RunRecord.from_request(req, status, created=now_iso())
    store.save(rec)
    return rec


def test_store_changes_only_runs_that_have_ended(tmp_path):
    store = RunStore(tmp_path / "runs")
    done = stored(store, "BN off")
    running = stored(store, "BN on", status=RunStatus.RUNNING)
    labelled = store.annotate(done.run_id, " best \x1b[2J one ", "lr 0.01\nlooked good")
    assert labelled.label == "best ␛[2J one" and labelled.note == "lr 0.01\nlooked good"
    doc = json.loads(store.path(done.run_id).read_text())
    assert doc["label"] == "best ␛[2J one" and store.get(done.run_id) == labelled
    for change in (lambda r: store.annotate(r, "x", ""), store.archive, store.discard):
        with pytest.raises(StoreError, match="running: only runs that have ended"):
            change(running.run_id)
    where = store.archive(done.run_id)
    assert where == store.dir / "archive" / f"{done.run_id}.json" and where.exists()
    records, _ = store.load()
    assert [r.run_id for r in records] == [running.run_id]  # archived: out of the table
    with pytest.raises(StoreError, match="not in"):
        store.discard("20260101-000000-nosuch")


def test_label_filter_and_archive_in_the_app(tmp_path):
    store = RunStore(tmp_path / "runs")
    recs = [stored(store, v, r) for v in ("BN off", "BN on") for r in (0, 1)]

    async def scenario() -> None:
        app = CnnTuiApp(FakeTrainer(Script(), store=store),
                        StartOptions(runs_dir=store.dir, check_data=False, blink=False,
                                     refresh_interval=0.1))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("3")
            table = app.main.query_one(ResultsTable)
            await wait_for(pilot, lambda: table.row_count == 4, what="the stored runs")
            table.focus()
            table.select_run(recs[3].run_id)
            await pilot.press("l")
            await wait_for(pilot, lambda: isinstance(app.screen, RunNoteScreen), what="dialog")
            await pilot.press(*"keeper", "enter", *"lr was fine", "enter")
            await wait_for(pilot, lambda: store.get(recs[3].run_id).label == "keeper",
                           what="the label in the run's file")
            assert store.get(recs[3].run_id).note == "lr was fine"
            cell = table.cell(recs[3].run_id, "variant")
            assert isinstance(cell, Text) and "keeper" in cell.plain
            # Filter: only runs with every word.
            await pilot.press("slash")
            await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen), what="filter")
            await pilot.press(*"keeper", "enter")
            await wait_for(pilot, lambda: table.row_keys() == [recs[3].run_id],
                           what="only the labelled run")
            await pilot.press("slash", "ctrl+u", "enter")  # empty: every run again
            await wait_for(pilot, lambda: table.row_count == 4, what="every run again")
            # Archive the run under the cursor, after asking; Keep is the safe default.
            table.focus()
            table.select_run(recs[0].run_id)
            await pilot.press("delete")
            await wait_for(pilot, lambda: isinstance(app.screen, ChoicesScreen), what="ask")
            assert app.screen.focused is not None and app.screen.focused.id == "choice-keep"
            await pilot.press("a")
            await wait_for(pilot, lambda: table.row_count == 3, what="the run gone")
            assert not store.path(recs[0].run_id).exists()
            assert (store.dir / "archive" / f"{recs[0].run_id}.json").exists()
            assert recs[0].run_id not in app.session.records
            # A whole launch archived: the view moves to the launch that is left.
            later = stored(store, "lesson base")
            later = later.with_changes(group="g2")
            store.save(later)
            app.runs.load([later])
            app.runs.chart_group = "g2"
            app.runs.forget([later.run_id])
            assert app.runs.chart_group == "g1"

    asyncio.run(scenario())
