"""The Inside view: opened with i from the Runs tab, one column per variant, the strips and
the confusion matrix of recorded runs, the gallery of misclassified test images and
first-layer filters (m), "not recorded" for older ones; snapshots at 80×24 and 200×50, and of
the gallery at 80×24."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import wait_for
from helpers.fake_trainer import FakeTrainer
from helpers.inside import IMAGES, IMAGES_KEY, diagnosis, layers, write_images_file
from textual.widgets import Static

from trainer import formats as fmt
from trainer import paths
from trainer.events import EpochEnd, RunFinished
from trainer.lessons.planning import build_requests
from trainer.lessons.presets import load_presets
from trainer.store.apply import apply_event
from trainer.store.record import RunEnv, RunRecord, RunStatus
from trainer.store.runstore import RunStore
from tui.app import CnnTuiApp, StartOptions
from tui.screens.inside import InsideScreen
from tui.state.inside import inside_runs, scales
from tui.widgets.inside import MAX_STRIP, GallerySlot, InsideColumn, run_column

OVERRIDES = {"dataset": "synthetic", "epochs": 6}


def history(runs: Path, recorded: bool = True, gallery: bool = True) -> np.ndarray:
    """The BN lesson, 2 repeats, 6 epochs; BN on has fewer dead units. With `recorded`
    False the first run is an old record without the look-inside data; with `gallery` the
    others name a test-images file (written here; returned) and keep their filters, but for
    BN on #1, recorded before the gallery."""
    preset = load_presets()[0]["batch_norm"]
    store = RunStore(runs)
    for i, req in enumerate(build_requests(preset, OVERRIDES, repeats=2, group="g-fixed")):
        req = type(req)(**{**req.__dict__, "run_id": f"20260101-00000{i}-abcdef"})
        rec = RunRecord.from_request(req, RunStatus.RUNNING).with_changes(
            env=RunEnv(device="cpu", device_name="test CPU"), params=900_000,
            test_size=IMAGES)
        bn = req.config["batch_norm"]
        old = not recorded and i == 0
        for e in range(1, 7):
            rec = apply_event(rec, EpochEnd(req.run_id, e, 1.0, 0.5, 1.1, 0.5, 0.001, 3.0,
                                            True, False,
                                            () if old else layers(e, dead=0.1 if bn else 0.5)))
        rec = apply_event(rec, RunFinished(req.run_id, 1.0, 0.7 if bn else 0.65, 6, 0.7, 1.0,
                                           6, 18.0, 850.0,
                                           diagnosis=None if old else diagnosis(
                                               skill=0.7 if bn else 0.6,
                                               gallery=gallery and i != 1)))
        store.save(rec.with_changes(created=f"2026-01-01T00:00:0{i}+00:00"))
    return write_images_file()


def make_app(runs: Path) -> CnnTuiApp:
    options = StartOptions(runs_dir=runs, overrides=dict(OVERRIDES), blink=False,
                           check_data=False, refresh_interval=0.1)
    return CnnTuiApp(FakeTrainer(), options)


def test_one_run_per_variant_follows_the_highlighted_repeat(tmp_path):
    history(tmp_path)
    records, _ = RunStore(tmp_path).load()
    order = ["BN off", "BN on"]
    second_on = next(r for r in records if r.variant == "BN on" and r.repeat == 1)
    picked = inside_runs(records, order, second_on.run_id)
    assert [(r.variant, r.repeat) for r in picked] == [("BN off", 1), ("BN on", 1)]
    assert [(r.variant, r.repeat) for r in inside_runs(records, order, None)] == \
        [("BN off", 0), ("BN on", 0)]


def test_a_column_shows_strips_matrix_and_histogram(tmp_path):
    history(tmp_path)
    records, _ = RunStore(tmp_path).load()
    text = run_column(records[0], scales(records)).plain
    for part in ("Activation std", "Dead / saturated fraction", "ReLU output 0", "conv1",
                 "dense2", "Weight-gradient norm", "Test confusion matrix", "airplane",
                 "truck", "p(chosen)", "most confident mistakes"):
        assert part in text
    assert "70.0%" in text or "60.0%" in text  # per-class accuracy on the rows


def test_a_long_run_draws_a_sample_of_its_epochs_ending_with_the_latest():
    """1,000 epochs (thinned in the record): the strip says how many it draws and ends with
    the latest epoch, whose value is the one printed after it."""
    req = build_requests(load_presets()[0]["batch_norm"], OVERRIDES, repeats=1, group="g")[0]
    rec = RunRecord.from_request(req, RunStatus.RUNNING)
    for e in range(1, 1001):
        rec = apply_event(rec, EpochEnd(req.run_id, e, 1.0, 0.5, 1.1, 0.5, 0.001, 3.0, True,
                                        False, layers(e)))
    text = run_column(rec, scales([rec])).plain
    drawn = re.search(r"epoch 1 → 1000, (\d+) of 1000 epochs", text)
    assert drawn is not None and 20 <= int(drawn[1]) <= MAX_STRIP + 1
    first_layer = next(line for line in text.splitlines() if line.startswith("conv1"))
    latest = rec.probes[-1].layers[0].act_std
    assert rec.probes[-1].epoch == 1000 and first_layer.endswith(fmt.num(latest, 3))


def test_untrusted_class_names_are_shown_literally(tmp_path):
    history(tmp_path)
    records, _ = RunStore(tmp_path).load()
    d = diagnosis(classes=tuple(f"[red]c{i}" for i in range(10)))
    text = run_column(records[0].with_changes(diagnosis=d), scales(records))
    assert "[red]c0" in text.plain  # as written, not parsed as markup
    red = [text.plain[s.start:s.end] for s in text.spans if str(s.style) == "red"]
    assert red and all(set(part) == {"█"} for part in red)  # only the "wrong" bars are red


def test_i_opens_the_view_and_esc_closes_it(tmp_path):
    history(tmp_path / "runs", recorded=False)

    async def go() -> None:
        app = make_app(tmp_path / "runs")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            assert any(b.binding.key == "i" and b.binding.show and b.enabled
                       for b in app.screen.active_bindings.values())  # offered in the Footer
            await pilot.press("i")
            await wait_for(pilot, lambda: isinstance(app.screen, InsideScreen), what="Inside")
            await wait_for(pilot, lambda: len(app.screen.query(InsideColumn)) == 2,
                           what="two columns")
            shown = " ".join(str(c.render()) for c in app.screen.query(InsideColumn))
            assert "not recorded" in shown  # the old BN-off #1 record
            assert "Activation std" in shown  # the recorded BN-on #1
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, InsideScreen),
                           what="back")

    asyncio.run(go())


def gallery_text(app) -> list[str]:
    """The text of each shown column's gallery (titles and captions), in column order."""
    return [" ".join(str(w.render()) for w in slot.query(Static))
            for slot in app.screen.query(GallerySlot) if slot.display]


def test_the_gallery_shows_each_mistake_with_its_test_image_and_m_hides_it(tmp_path):
    images = history(tmp_path / "runs")

    async def go() -> None:
        app = make_app(tmp_path / "runs")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3", "i")
            await wait_for(pilot, lambda: len(app.screen.query(".gallery-tile")) == 8
                           and len(gallery_text(app)) == 2
                           and "not recorded" in gallery_text(app)[1],
                           what="one gallery of 8 images, and the other's reason")
            new, old = gallery_text(app)
            # BN on #1 was recorded before the gallery existed; BN off #1 has one.
            assert "Misclassified test images: not recorded" in old
            assert "First-layer filters: not recorded" in old
            assert "8 most confident of 32 kept" in new and "First-layer filters: 32 of 3×3" in new
            assert "airplane → cat (99%)" in new and "#17" in new
            tiles = list(app.screen.query(".gallery-tile"))
            assert [r.name() for r in app.screen._shown] == ["BN off #1", "BN on #1"]
            d = app.screen._shown[0].diagnosis
            for tile, mistake in zip(tiles, d.mistakes, strict=False):
                picture = tile.query_one(".gallery-image")
                assert type(picture).__name__ == "HalfcellImage"  # no graphics when headless
                assert np.array_equal(np.asarray(picture.image), images[mistake.index])
            (filters,) = app.screen.query(".gallery-filters")
            assert filters.styles.width.value == 48  # 7 filters of 6 pixels a row, 1 apart
            assert any(b.binding.key == "m" and b.binding.show
                       for b in app.screen.active_bindings.values())  # in the Footer
            await pilot.press("m")
            assert gallery_text(app) == []
            await pilot.press("m")
            await wait_for(pilot, lambda: len(gallery_text(app)) == 2, what="galleries back")

    asyncio.run(go())


def test_images_that_are_not_on_this_machine_are_explained(tmp_path):
    history(tmp_path / "runs")
    path = paths.test_images_file(IMAGES_KEY)
    assert path is not None
    path.unlink()

    async def go() -> None:
        app = make_app(tmp_path / "runs")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3", "i")
            why = "images not available on this machine: there is no test-images file"
            # (A slot is shown before its gallery is built: wait for the text itself.)
            await wait_for(pilot, lambda: len(gallery_text(app)) == 2
                           and why in gallery_text(app)[0], what="the reason")
            assert not app.screen.query(".gallery-tile")
            assert app.screen.query(".gallery-filters")  # the filters are in the record

    asyncio.run(go())


def test_the_gallery_at_80x24(snap_compare, tmp_path):
    history(tmp_path / "runs")

    async def to_the_gallery(pilot) -> None:
        await pilot.press("3", "i")
        await wait_for(pilot, lambda: len(pilot.app.screen.query(".gallery-tile")) == 8)
        title = pilot.app.screen.query(".gallery-title").first()
        pilot.app.screen.query_one("#inside-scroll").scroll_to_widget(title, animate=False,
                                                                      top=True)
        await pilot.pause()

    assert snap_compare(make_app(tmp_path / "runs"), terminal_size=(80, 24),
                        run_before=to_the_gallery)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
def test_inside_view(snap_compare, tmp_path, size):
    history(tmp_path / "runs")

    async def open_inside(pilot) -> None:
        await pilot.press("3", "i")
        await wait_for(pilot, lambda: len(pilot.app.screen.query(InsideColumn)) == 2)

    assert snap_compare(make_app(tmp_path / "runs"), terminal_size=size, run_before=open_inside)
