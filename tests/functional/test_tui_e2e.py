"""The real thing: the app drives a spawned trainer process on tiny synthetic runs.

One worker for the whole story (each costs a torch import): run the batch-norm lesson, watch
rows and curves fill, export CSV, stop a long run, quit in the middle of another, check that
no process is left, then relaunch on the same run store and find everything again.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

from helpers import wait_for, wait_until
from helpers.fake_trainer import FakeTrainer

from trainer.events import WorkerSettings
from trainer.host.process import TrainerProcess
from trainer.store.export import CSV_COLUMNS
from trainer.store.liveness import pid_alive
from trainer.store.runstore import RunStore
from tui.app import CnnTuiApp, StartOptions
from tui.screens.dialogs import ConfirmScreen, ExportScreen
from tui.widgets.charts import CurveChart
from tui.widgets.results import ResultsTable

TINY = {"dataset": "synthetic", "epochs": 1, "repeats": 1, "train_subset": 256,
        "widths": (8, 8, 8), "batch_size": 64}
SLOW = 240  # seconds: a shared 2-core CI box can take long to import torch in the worker




async def scenario(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    trainer = TrainerProcess(WorkerSettings(runs_dir=str(runs_dir),
                                            log_path=str(tmp_path / "worker.log")))
    app = CnnTuiApp(trainer, StartOptions(runs_dir=runs_dir, overrides=dict(TINY), blink=False,
                                          refresh_interval=0.1))
    worker_pid = None
    async with app.run_test(size=(120, 40)) as pilot:
        # The batch-norm lesson is the first one: r runs it (2 variants × 1 repeat).
        await pilot.press("r")
        await wait_for(pilot, lambda: trainer.worker_pid is not None, 30, "worker start")
        worker_pid = trainer.worker_pid
        statuses = lambda: [app.session.status_label(r) for r in app.session.records]  # noqa: E731
        await wait_for(pilot, lambda: statuses() == ["finished", "finished"], SLOW, "lesson")
        table = app.main.query_one(ResultsTable)
        await wait_for(pilot, lambda: table.row_count == 2, 10, "the table")
        chart = app.main.query_one("#loss-chart", CurveChart)
        assert [c.variant for c in chart.shown_curves] == ["BN off", "BN on"]
        assert all(c.runs == 1 for c in chart.shown_curves)
        first = app.session.records[next(iter(app.session.records))]
        assert first.summary.test_acc is not None and first.env.device == "cpu"

        # Export with the default path (in the current folder).
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("enter")
        await pilot.pause()
        files = sorted(Path.cwd().glob("cnn-tui-results-*.csv"), key=lambda p: len(p.name))
        # The runs; beside them every epoch, the statistics, the verdict, and what the
        # runs did inside (layers, confusion, per-class accuracy).
        stem = files[0].stem
        assert sorted(p.stem.removeprefix(stem) for p in files[1:]) == [
            "-class-acc", "-confusion", "-history", "-layers", "-summary", "-verdict"]
        with files[0].open() as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == list(CSV_COLUMNS) and len(rows) == 2
        assert {r["variant"] for r in rows} == {"BN off", "BN on"}

        # A long run from the toggles, stopped with x: it keeps its finished epochs.
        await pilot.press("2")
        app.main.query_one("#toggle-epochs").focus()
        await pilot.press("ctrl+u", "5", "0", "0", "escape", "t")
        await wait_for(pilot, lambda: any(app.session.progress), SLOW, "long run progress")
        long_id = app.session.running()[0]
        await pilot.press("x")
        await wait_for(pilot, lambda: app.session.status_label(long_id) == "stopped", 30, "stop")
        assert RunStore(runs_dir).get(long_id).status == "stopped"

        # Another long run; quit in the middle: confirm, then the worker is gone.
        await pilot.press("t")
        await wait_for(pilot, lambda: any(app.session.progress), SLOW, "second long run")
        quit_id = app.session.running()[0]
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        await pilot.pause()
    wait_until(lambda: not pid_alive(worker_pid), 2.0, "the trainer process to exit")
    assert RunStore(runs_dir).get(quit_id).status in ("stopped", "interrupted")

    # Relaunch on the same store: everything finished is there, curves included.
    again = CnnTuiApp(FakeTrainer(), StartOptions(runs_dir=runs_dir, overrides=dict(TINY),
                                                 blink=False, check_data=False))
    async with again.run_test(size=(120, 40)) as pilot:
        await pilot.press("3", "a")  # every launch, not only the latest
        await wait_for(pilot, lambda: again.main.query_one(ResultsTable).row_count == 4, 10,
                       "the four stored runs in the table")
        found = sorted(rec.status for rec in again.session.records.values())
        assert found == ["finished", "finished", "stopped", "stopped"]
        epochs = [len(rec.history) for rec in again.session.records.values()]
        assert epochs[:2] == [1, 1]


def test_real_trainer_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    asyncio.run(scenario(tmp_path))
