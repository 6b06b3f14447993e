"""Chart settings users rely on: smoothing (z), a log loss axis (L) and a pinned baseline (p).

The smoothing math is plain Python (tui.state.curves); the keys are driven through Pilot
against the FakeTrainer, and the settings are remembered for the next session.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
from pathlib import Path

import pytest
from helpers import wait_for
from helpers.fake_trainer import FakeTrainer, Script

from trainer import paths
from trainer.store.runstore import RunStore
from tui.app import CnnTuiApp, StartOptions
from tui.state import prefs
from tui.state.curves import SMOOTHING_STEPS, next_smoothing, smooth
from tui.widgets.charts import ChartLegend, CurveChart


def aio(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


# -- the smoothing math -----------------------------------------------------------------------
def test_smoothing_is_tensorboards_debiased_ema():
    # last = last·w + (1−w)·v, shown divided by 1 − w^n: it starts at the first value.
    out = smooth([1.0, 0.0, 0.0], 0.5)
    assert out[0] == pytest.approx(1.0)
    assert out[1] == pytest.approx(0.25 / 0.75)
    assert out[2] == pytest.approx(0.125 / 0.875)


def test_smoothing_off_or_constant_keeps_the_values():
    assert smooth([3.0, 1.0, 2.0], 0.0) == [3.0, 1.0, 2.0]
    assert smooth([2.0] * 5, 0.9) == pytest.approx([2.0] * 5)  # no bias towards zero
    assert smooth([], 0.6) == []


def test_smoothing_damps_noise_more_with_a_higher_weight():
    noisy = [1.0 + (0.5 if i % 2 else -0.5) for i in range(20)]

    def wiggle(ys: list[float]) -> float:
        return max(abs(a - b) for a, b in itertools.pairwise(ys[10:]))

    assert wiggle(smooth(noisy, 0.9)) < wiggle(smooth(noisy, 0.6)) < wiggle(noisy)


def test_a_diverged_value_passes_through_without_poisoning_the_average():
    out = smooth([1.0, math.nan, 1.0, math.inf], 0.6)
    assert out[0] == pytest.approx(1.0) and math.isnan(out[1])
    assert out[2] == pytest.approx(1.0) and math.isinf(out[3])


def test_z_cycles_off_some_a_lot():
    assert SMOOTHING_STEPS == (0.0, 0.6, 0.9)
    assert [next_smoothing(w) for w in (0.0, 0.6, 0.9, 0.42)] == [0.6, 0.9, 0.0, 0.0]


# -- the keys ------------------------------------------------------------------------------
def make_app(tmp_path: Path, script: Script | None = None, **overrides) -> CnnTuiApp:
    runs = tmp_path / "runs"
    overrides = {"dataset": "synthetic", "epochs": 3, "repeats": 1, **overrides}
    app = CnnTuiApp(FakeTrainer(script or Script(), store=RunStore(runs)),
                    StartOptions(runs_dir=runs, check_data=False, blink=False,
                                 refresh_interval=0.1, overrides=overrides))
    app.seen_notes = []
    notify = app.notify

    def remember(message, *args, **kwargs):
        app.seen_notes.append(str(message))
        return notify(message, *args, **kwargs)

    app.notify = remember
    return app


def legend(app: CnnTuiApp) -> str:
    return app.main.query_one(ChartLegend).content.plain


def done(app: CnnTuiApp) -> bool:
    recs = app.session.records.values()
    return bool(recs) and all(r.terminal for r in recs) and not app.session.active()


@aio
async def test_z_and_L_change_the_charts_say_so_and_are_remembered(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: done(app), what="the runs")
        loss = app.main.query_one("#loss-chart", CurveChart)
        acc = app.main.query_one("#acc-chart", CurveChart)
        await pilot.press("z")
        assert app.main.smoothing == 0.6
        assert loss.border_title == "Loss · smoothed 0.6"
        assert acc.border_title == "Accuracy % · smoothed 0.6"
        assert "smoothed 0.6 (raw faint)" in legend(app)
        await pilot.press("z", "L")
        assert app.main.smoothing == 0.9 and app.main.log_loss
        assert loss.border_title == "Loss · log · smoothed 0.9"
        assert acc.border_title == "Accuracy % · smoothed 0.9"  # log is for the loss only
        assert "log loss" in legend(app)
        assert any("log axis" in n for n in app.seen_notes)
        await pilot.press("m")  # every run: smoothing and log still apply
        assert loss.border_title == "Loss · log · smoothed 0.9" and loss.shown
    saved, _ = prefs.load(paths.settings_file())
    assert (saved.smoothing, saved.log_loss) == (0.9, True)

    again = make_app(tmp_path)
    async with again.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: again.main.query_one("#loss-chart").border_title
                       == "Loss · log · smoothed 0.9", what="the remembered settings")
        await pilot.press("z", "L")
        assert again.main.smoothing == 0.0 and not again.main.log_loss
        assert again.main.query_one("#loss-chart").border_title == "Loss"
        assert "[" not in legend(again)


@aio
async def test_p_pins_the_highlighted_run_against_later_launches_and_unpins(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")  # nothing highlighted yet: says how
        assert app.runs.pinned is None
        assert any("Highlight a run" in n for n in app.seen_notes)
        await pilot.press("r")
        await wait_for(pilot, lambda: done(app), what="the first launch")
        first = list(app.session.records)
        await pilot.press("3", "down")
        await wait_for(pilot, lambda: app.runs.selected == first[1], what="the highlight")
        await pilot.press("p")
        assert app.runs.pinned == first[1]
        loss = app.main.query_one("#loss-chart", CurveChart)
        assert loss.shown_baseline is not None and loss.shown_baseline.run_id == first[1]
        name = app.session.records[first[1]].name()
        assert f"pinned L1 {name}" in legend(app)
        # Another lesson, another launch: the baseline is still drawn against it.
        app.toggles.select("custom")
        await pilot.press("t")
        await wait_for(pilot, lambda: len(app.session.records) == 3 and done(app),
                       what="the second launch")
        assert app.runs.chart_group != app.session.records[first[1]].group
        await wait_for(pilot, lambda: loss.shown_baseline is not None
                       and loss.shown_baseline.run_id == first[1], what="the baseline")
        assert f"pinned L1 {name}" in legend(app)
        # p on the pinned run unpins.
        app.runs.select(first[1])
        await pilot.press("p")
        assert app.runs.pinned is None and loss.shown_baseline is None
        assert "pinned" not in legend(app)
        assert any("unpinned" in n for n in app.seen_notes)


@aio
async def test_the_pinned_baseline_is_remembered_while_its_run_is_stored(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: done(app), what="the runs")
        await pilot.press("3", "down")
        await wait_for(pilot, lambda: app.runs.selected is not None, what="the highlight")
        await pilot.press("p")
        pinned = app.runs.pinned
    assert pinned is not None and prefs.load(paths.settings_file())[0].pinned == pinned

    again = make_app(tmp_path)
    async with again.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: again.main.query_one("#loss-chart", CurveChart)
                       .shown_baseline is not None, what="the baseline")
        chart = again.main.query_one("#loss-chart", CurveChart)
        assert chart.shown_baseline.run_id == pinned

    for f in (tmp_path / "runs").glob("*.json"):  # its run deleted: quietly not pinned
        f.unlink()
    third = make_app(tmp_path)
    async with third.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: third.main.query_one("#loss-chart", CurveChart),
                       what="the charts")  # (they mount after the first frame)
        assert third.runs.pinned is None
        assert third.main.query_one("#loss-chart", CurveChart).shown_baseline is None


def test_help_lists_the_chart_and_system_keys(tmp_path):
    app = make_app(tmp_path)
    rows = dict(next(rows for title, rows in app.help_sections() if title == "Main screen"))
    assert "smoothing off / 0.6 / 0.9" in rows["z"]
    assert "log axis" in rows["L (shift+l)"]
    assert "baseline" in rows["p"]
    assert "GPU" in rows["y"]
