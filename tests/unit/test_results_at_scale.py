"""The runs table with a big store: the grouped view's cells are computed ahead while the
plain view shows, and what `g` then shows is exactly what it would have computed itself."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from helpers import wait_for
from helpers.fake_trainer import FakeTrainer, Script
from rich.text import Text

from trainer.config import RunConfig
from trainer.store.runstore import RunStore
from tui.app import CnnTuiApp, StartOptions
from tui.state.columns import columns_for, table_rows, variants
from tui.widgets.results import ResultsTable

LAUNCHES = 45  # × 2 variants × 3 repeats = 270 runs: above the warm-up threshold


def write_store(folder: Path) -> None:
    folder.mkdir(parents=True)
    cfg = RunConfig().to_dict()
    for i in range(LAUNCHES * 6):
        group, k = divmod(i, 6)
        run_id = f"20260101-{i:06d}-abcdef"
        doc = {"schema": 1, "run_id": run_id, "group": f"g-{group:03d}", "preset": "batch_norm",
               "variant": "BN on" if k % 2 else "BN off", "repeat": k // 2,
               "config": {**cfg, "batch_norm": bool(k % 2), "seed": k // 2, "repeats": 3,
                          "lr": 0.001 * (1 + group % 3)},
               "status": "finished", "created": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}",
               "history": [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.1,
                            "val_acc": 0.4 + i % 7 / 100, "lr": 0.001, "seconds": 2.0,
                            "is_best": True, "lr_dropped": False}],
               "summary": {"test_acc": 0.5 + (i * 37 % 11) / 100, "test_loss": 1.0,
                           "best_epoch": 1, "best_val_acc": 0.45, "best_val_loss": 1.1,
                           "epochs_done": 1, "train_seconds": 2.0, "images_per_s": 500.0}}
        (folder / f"{run_id}.json").write_text(json.dumps(doc))


def app_over_a_store(tmp_path: Path) -> CnnTuiApp:
    """The app (with a fake trainer) over a store of LAUNCHES lesson launches."""
    runs = tmp_path / "runs"
    write_store(runs)
    return CnnTuiApp(FakeTrainer(Script(), store=RunStore(runs)),
                     StartOptions(runs_dir=runs, check_data=False, blink=False,
                                  refresh_interval=0.1))


def shown(cells: list) -> list[str]:
    return [c.plain if isinstance(c, Text) else str(c) for c in cells]


def test_grouped_view_is_computed_ahead_and_matches_a_fresh_computation(tmp_path):
    async def scenario() -> None:
        app = app_over_a_store(tmp_path)
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.press("3", "a")  # every launch
            table = app.main.query_one(ResultsTable)
            await wait_for(pilot, lambda: table.row_count == LAUNCHES * 6 and not table.warming,
                           what="every stored run in the table and the variants computed")
            assert not table.grouped
            every = {(g, label) for g, label, _ in variants(app.runs)}
            assert len(every) == LAUNCHES * 2
            assert {(g, label) for g, label, expanded in table._variants} == every
            await pilot.press("s")  # sort by test accuracy: variants by their mean
            await pilot.press("g")
            await pilot.press("c")  # only the settings that differ (lr, batch_norm)
            columns = columns_for(app.runs, True)
            assert {"lr", "bn"} <= {c.key for c in columns}
            fresh = table_rows(app.runs, columns, table.sort_column, table.sort_reverse, True)
            assert [r.key for r in table.rows_shown] == [r.key for r in fresh]
            assert [shown(r.cells) for r in table.rows_shown] == [shown(r.cells) for r in fresh]
            assert table.row_count == LAUNCHES * 2

    asyncio.run(scenario())


def test_the_table_shows_one_launch_and_tells_launches_apart(tmp_path):
    """Runs of an earlier launch of the same lesson never sit unmarked beside the new ones:
    the table shows the latest launch; `a` shows every launch with a Launch column; [ and ]
    step through launches, and the verdict follows the launch shown."""
    async def scenario() -> None:
        app = app_over_a_store(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            table = app.main.query_one(ResultsTable)
            last = f"g-{LAUNCHES - 1:03d}"
            await wait_for(pilot, lambda: table.row_count == 6, what="the latest launch")
            assert {app.session.records[k].group for k in table.row_keys()} == {last}
            assert "launch" not in table.column_keys()
            await pilot.press("left_square_bracket")
            await wait_for(pilot, lambda: app.runs.chart_group == f"g-{LAUNCHES - 2:03d}",
                           what="the launch before")
            assert {app.session.records[k].group for k in table.row_keys()} == {
                app.runs.chart_group}
            card = app.main.query_one("#runs-verdict")
            await wait_for(pilot, lambda: card.verdict is not None
                           and card.verdict.stats is not None
                           and card.verdict.stats.finished == 6, what="its verdict")
            await pilot.press("a")
            await wait_for(pilot, lambda: table.row_count == LAUNCHES * 6, what="every run")
            assert "launch" in table.column_keys()
            first = next(iter(app.session.records))
            assert str(table.cell(first, "launch")).startswith("L1 ")
            await pilot.press("a")
            await wait_for(pilot, lambda: table.row_count == 6, what="one launch again")

    asyncio.run(scenario())


def test_sort_arrow_shows_at_once_and_widths_return_after_grouping(tmp_path):
    async def scenario() -> None:
        app = app_over_a_store(tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.press("3")
            table = app.main.query_one(ResultsTable)
            await wait_for(pilot, lambda: table.row_count == 6, what="the latest launch")
            await pilot.press("s")  # test accuracy, best first: the arrow is in the header
            await pilot.pause()
            assert "Test acc ▼" in table.render_line(0).text
            widths = dict(zip(table.column_keys(), table._widths, strict=True))
            await pilot.press("g")
            await wait_for(pilot, lambda: table.row_count == 2, what="a row per variant")
            await pilot.press("g")
            await wait_for(pilot, lambda: table.row_count == 6, what="a row per run")
            # The grouped view's wide status cells ("✓3 finished") leave no width behind.
            assert dict(zip(table.column_keys(), table._widths, strict=True)) == widths

    asyncio.run(scenario())
