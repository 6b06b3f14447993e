"""Snapshot tests (pytest-textual-snapshot) of the main screen, the runs view and help.

Deterministic on purpose: an empty (or fixed) run store, built-in lessons only, no clock, no
cursor blink and a fake trainer. Update with `pytest tests/test_tui_snapshots.py
--snapshot-update` after checking the new pictures in the report.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.fake_trainer import FakeTrainer

from trainer import paths
from trainer.events import EpochEnd, RunFinished
from trainer.lessons.planning import build_requests
from trainer.lessons.presets import load_presets
from trainer.store.apply import apply_event
from trainer.store.record import RunEnv, RunRecord, RunStatus
from trainer.store.runstore import RunStore
from tui.app import CnnTuiApp, StartOptions
from tui.state import prefs
from tui.state.system import GB, GpuStat, SystemSample, SystemSampler

OVERRIDES = {"dataset": "synthetic", "epochs": 6}


class FixedSampler(SystemSampler):
    """The same sample every second: a CPU machine with two GPUs."""

    def sample(self) -> SystemSample:
        return SystemSample(cpu=37.0, load=2.5, cores=16, mem_used=12 * GB, mem_total=128 * GB,
                            gpus=[GpuStat(0, "NVIDIA H200", 87.0, 40 * GB, 141 * GB),
                                  GpuStat(1, "NVIDIA H200", 0.0, GB // 2, 141 * GB)])


def make_app(runs: Path) -> CnnTuiApp:
    options = StartOptions(runs_dir=runs, overrides=dict(OVERRIDES), blink=False,
                           check_data=False, system=lambda: FixedSampler(lambda: None))
    return CnnTuiApp(FakeTrainer(), options)


def fixed_history(runs: Path) -> None:
    """Four finished BN-lesson runs with fixed ids, times and curves."""
    preset = load_presets()[0]["batch_norm"]
    store = RunStore(runs)
    for i, req in enumerate(build_requests(preset, OVERRIDES, repeats=2, group="g-fixed")):
        req = type(req)(**{**req.__dict__, "run_id": f"20260101-00000{i}-abcdef"})
        rec = RunRecord.from_request(req, RunStatus.RUNNING).with_changes(
            env=RunEnv(device="cpu", device_name="test CPU"), params=900_000)
        bn = req.config["batch_norm"]
        for e in range(1, 7):
            val_loss = 2.0 / (1 + e * (0.5 if bn else 0.3)) + 0.02 * i + (0.1 if bn and e == 4
                                                                          else 0.0)
            rec = apply_event(rec, EpochEnd(req.run_id, e, val_loss - 0.15, 1 - val_loss / 2.3,
                                            val_loss, 1 - val_loss / 2.2, 0.001, 3.0 + i,
                                            e != 4, False))
        rec = apply_event(rec, RunFinished(req.run_id, val_loss, 1 - val_loss / 2.2 - 0.01, 6,
                                           1 - val_loss / 2.2, val_loss, 6, 18.0, 850.0 + i))
        store.save(rec.with_changes(created=f"2026-01-01T00:00:0{i}+00:00"))


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 50)])
def test_main_screen(snap_compare, tmp_path, size):
    """200×50: the lessons beside the runs (no Runs tab), as the README says."""
    assert snap_compare(make_app(tmp_path / "runs"), terminal_size=size)


def test_toggles_with_invalid_value(snap_compare, tmp_path):
    async def edit(pilot) -> None:
        await pilot.press("2")
        pilot.app.main.query_one("#toggle-lr").focus()
        await pilot.press(*"fast", "escape")
        pilot.app.main.query_one("#toggle-batch_size").focus()
        await pilot.press(*"6x", "escape")
        # Focus and validation each scroll the row into view, in an order that depends on
        # timing; once they are done, put the row at the top so the picture is always one.
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.2)
        pilot.app.main.query_one("#row-batch_size").scroll_visible(animate=False, top=True)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.3)

    assert snap_compare(make_app(tmp_path / "runs"), terminal_size=(80, 24), run_before=edit)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_runs_view_with_history(snap_compare, tmp_path, size):
    """80×24: a one-line verdict above the table says `v` shows the card."""
    fixed_history(tmp_path / "runs")
    assert snap_compare(make_app(tmp_path / "runs"), terminal_size=size, press=["3", "_"])


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
def test_full_verdict_in_place_of_the_table(snap_compare, tmp_path, size):
    fixed_history(tmp_path / "runs")
    assert snap_compare(make_app(tmp_path / "runs"), terminal_size=size,
                        press=["3", "v", "_"])


def test_toggles_focus_at_80x24(snap_compare, tmp_path):
    """The focused toggle: an accent bar and its key in reverse, not a faint background."""

    async def move(pilot) -> None:
        await pilot.press("2")
        await pilot.app.workers.wait_for_complete()
        pilot.app.main.query_one("#toggle-input_norm").focus()
        await pilot.press("down", "down", "down")  # input_norm → … → init (a Select)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.3)

    assert snap_compare(make_app(tmp_path / "runs"), terminal_size=(80, 24), run_before=move)


def test_help_screen(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path / "runs"), terminal_size=(100, 40),
                        press=["question_mark", "_"])


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_charts_smoothed_with_a_pinned_baseline(snap_compare, tmp_path, size):
    """Remembered from the last session: smoothing 0.6 (raw faint) and a gold baseline."""
    fixed_history(tmp_path / "runs")
    prefs.save(paths.settings_file(), prefs.Preferences(smoothing=0.6,
                                                        pinned="20260101-000001-abcdef"))
    assert snap_compare(make_app(tmp_path / "runs"), terminal_size=size, press=["3", "_"])


def test_system_line_with_two_gpus_at_80x24(snap_compare, tmp_path):
    """`y`: one line above the run bar; the table keeps its rows."""
    fixed_history(tmp_path / "runs")

    async def show(pilot) -> None:
        await pilot.press("3", "y")
        line = pilot.app.main.query_one("#system-line")
        while line.sample is None:
            await pilot.pause(0.05)

    assert snap_compare(make_app(tmp_path / "runs"), terminal_size=(80, 24), run_before=show)
