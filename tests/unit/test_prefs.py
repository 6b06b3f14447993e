"""Remembered preferences: toggle edits, lesson, theme and views survive a restart; a bad
settings file is named in one warning and what is good in it still counts."""

from __future__ import annotations

import asyncio
import json
import os

from helpers import wait_for
from helpers.fake_trainer import FakeTrainer, Script

from trainer import paths
from trainer.store.runstore import RunStore
from tui.app import CnnTuiApp, StartOptions
from tui.state import prefs
from tui.widgets.results import ResultsTable


def make_app(tmp_path, **overrides) -> CnnTuiApp:
    runs = tmp_path / "runs"
    return CnnTuiApp(FakeTrainer(Script(), store=RunStore(runs)),
                     StartOptions(runs_dir=runs, check_data=False, blink=False,
                                  refresh_interval=0.1, overrides=overrides))


def test_choices_survive_a_restart_and_start_options_win(tmp_path):
    async def first() -> None:
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("2")
            await wait_for(pilot, lambda: app.main.query("#toggle-shuffle"), what="the form")
            app.main.query_one("#toggle-shuffle").focus()
            await pilot.press("space")  # shuffle off
            app.main.query_one("#toggle-epochs").focus()
            await pilot.press("ctrl+u", *"7")
            await wait_for(pilot, lambda: app.toggles.edits.get("epochs") == 7, what="epochs")
            app.screen.set_focus(None)  # out of the field, so keys are commands again
            await pilot.press("3", "m", "g")
            app.theme = "nord"
        assert paths.settings_file().exists()  # saved at exit at the latest

    async def second() -> None:
        app = make_app(tmp_path, epochs=2)  # `--epochs 2` at start wins over the edit
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.main.query_one(ResultsTable)
            await wait_for(pilot, lambda: table.grouped, what="the grouped view again")
            assert app.main.chart_mode == "runs" and app.theme == "nord"
            assert app.toggles.edits == {"shuffle": False}
            assert app.toggles.config().epochs == 2 and app.toggles.config().shuffle is False

    asyncio.run(first())
    asyncio.run(second())
    assert os.stat(paths.settings_file()).st_mode & 0o777 == 0o600


def test_a_bad_settings_file_is_named_and_the_good_parts_used(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({
        "lesson": "batch_norm", "chart_mode": "sideways", "grouped": "yes",
        "theme": "\x1b]2;pwned\x07", "edits": {"batch_norm": {"lr": 0.01, "epochs": -3,
                                                              "nonsense": 1}}}))
    got, warnings = prefs.load(path)
    assert got.lesson == "batch_norm" and got.edits == {"batch_norm": {"lr": 0.01}}
    assert got.chart_mode == "mean" and got.grouped is False and got.theme == ""
    (warning,) = warnings
    assert str(path) in warning
    for field in ("chart_mode", "grouped", "theme", "edits.batch_norm.epochs",
                  "edits.batch_norm.nonsense"):
        assert field in warning
    assert "\x1b" not in warning
    for content in (b"{not json", b"[1, 2]", b"[" * 100_000):
        path.write_bytes(content)
        got, warnings = prefs.load(path)
        assert got == prefs.Preferences() and len(warnings) == 1 and str(path) in warnings[0]
    path.unlink()
    os.mkfifo(path)  # never blocks on a file that is not a regular file
    got, warnings = prefs.load(path)
    assert got == prefs.Preferences() and "not a regular file" in warnings[0]


def test_the_app_starts_with_a_hostile_settings_file_and_says_so(tmp_path):
    target = paths.settings_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text('{"lesson": "[bold red]x[/]", "edits": 5}')

    async def scenario() -> None:
        app = make_app(tmp_path)
        notes: list[str] = []
        notify = app.notify
        app.notify = lambda message, *a, **k: notes.append(str(message)) or notify(  # type: ignore[method-assign]
            message, *a, **k)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: any("settings.json" in n for n in notes),
                           what="the warning naming the file")
            assert any("edits" in n for n in notes)

    asyncio.run(scenario())
