"""The Inside view's gallery without a terminal: the test-images file, the images picked for
a run's mistakes, and the first layer's filters as RGB pictures (hostile files: see
test_hostile_input)."""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest
from helpers.inside import IMAGES, diagnosis, filters, made_images, write_images_file
from textual.app import SuspendNotSupported

from trainer import imagefile, paths
from trainer.events import Filters
from trainer.store.record import RunRecord, RunStatus
from tui.state import gallery


def run(d=None, test_size: int | None = IMAGES) -> RunRecord:
    return RunRecord(run_id="r1", config={}, status=RunStatus.FINISHED, diagnosis=d,
                     test_size=test_size)


def test_the_file_round_trips_and_reads_only_what_is_asked(tmp_path):
    images = made_images(50)
    path = tmp_path / "x-test.npy"
    imagefile.write_images(path, images)
    assert np.array_equal(np.load(path, allow_pickle=False), images)  # a plain .npy
    assert imagefile.holds(path, 50) and not imagefile.holds(path, 49)
    got = imagefile.read_images(path, [3, 49, 3], expected=50)
    assert sorted(got) == [3, 49]
    assert np.array_equal(got[49], images[49]) and got[49].shape == (32, 32, 3)
    with pytest.raises(ValueError):
        imagefile.write_images(path, images.astype(np.int16))


def test_dataset_keys_name_a_file_in_the_cache_and_nothing_else():
    assert paths.test_images_file("cifar10-1a2b3c4d-5e6f7a8b") == \
        paths.cache_dir() / "cifar10-1a2b3c4d-5e6f7a8b-test.npy"
    for bad in ("", "../x", "/etc/passwd", ".hidden", "a/b", "a\\b", "x" * 101, "a\x00b",
                "a b"):
        assert paths.test_images_file(bad) is None, bad


def test_the_mistakes_shown_are_the_test_images_at_their_indices():
    images = write_images_file()
    d = diagnosis(gallery=True)
    shown = gallery.mistakes(run(d), 8)
    assert shown.why == "" and shown.total == 32 and len(shown.shown) == 8
    for s, m in zip(shown.shown, d.mistakes, strict=False):
        assert s.index == m.index and np.array_equal(s.pixels, images[m.index])
        assert s.true == d.classes[m.true] and s.predicted == d.classes[m.predicted]
    first = shown.shown[0]
    assert first.caption == "airplane → cat (99%)"


def test_without_the_key_or_the_file_the_gallery_says_why():
    assert gallery.mistakes(run(None), 8).why == "not recorded"
    assert gallery.mistakes(run(diagnosis()), 8).why == "not recorded"  # an older record
    missing = gallery.mistakes(run(diagnosis(gallery=True)), 8)
    assert missing.shown == () and missing.why.startswith(
        "images not available on this machine: there is no test-images file")
    write_images_file()
    other_set = gallery.mistakes(run(diagnosis(gallery=True), test_size=10_000), 8)
    assert "holds 600 test images, but the run was tested on 10,000" in other_set.why
    none_wrong = dataclasses.replace(diagnosis(gallery=True), mistakes=())
    assert gallery.mistakes(run(none_wrong), 8).why == "no mistakes on the test set"
    forged = dataclasses.replace(diagnosis(gallery=True), test_images="../../etc")
    assert "bad dataset key" in gallery.mistakes(run(forged), 8).why


def test_each_filter_is_scaled_to_its_own_range_as_rgb():
    # Filter 0: R plane 0..8, G plane constant 4, B plane −8..0; filter 1: constant.
    r = list(range(9))
    first = [float(v) for v in [*r, *[4] * 9, *[v - 8 for v in r]]]
    f = Filters(shape=(2, 3, 3, 3), values=(*first, *[0.5] * 27))
    a, b = gallery.filter_images(f)
    assert a.shape == (3, 3, 3) and a.dtype == np.uint8
    # Its lowest weight (−8) is 0 and its highest (8) is 255, across all three channels.
    assert a[0, 0].tolist() == [128, 191, 0] and a[2, 2].tolist() == [255, 191, 128]
    assert a[0, 1, 0] == 143  # (1 + 8) / 16 · 255: row-major, [row, column, channel]
    assert b.tolist() == [[[128] * 3] * 3] * 3  # constant: mid-grey
    (grey,) = gallery.filter_images(Filters(shape=(1, 1, 2, 2), values=(0.0, 1.0, 2.0, 3.0)))
    assert grey[:, :, 0].tolist() == [[0, 85], [170, 255]] and (grey[..., 0] == grey[..., 2]).all()


def test_the_mosaic_enlarges_each_filter_into_clear_squares():
    images = gallery.filter_images(filters(n=10))
    picture = gallery.mosaic(images, per_row=4, scale=2, gap=1)
    assert picture.shape == (3 * 7 - 1, 4 * 7 - 1, 3)  # 3 rows of 4, 6-pixel tiles, 1 apart
    second = picture[0:6, 7:13]
    assert np.array_equal(second[::2, ::2], images[1]) and np.array_equal(second[1::2, 1::2],
                                                                           images[1])
    assert (picture[6, :] == 24).all() and (picture[14:, 14:] == 24).all()  # gaps, empty slots
    assert gallery.enlarge(images[0], 3).shape == (9, 9, 3)


def test_filter_titles_say_what_is_drawn_or_not_recorded():
    assert gallery.filters_title(run(diagnosis())) == "First-layer filters: not recorded"
    assert gallery.filters_title(run(diagnosis(gallery=True))).startswith(
        "First-layer filters: 32 of 3×3 (RGB)")


class FakeApp:
    """Just what `images._load` uses of an App: headless or not, and `suspend`."""

    def __init__(self, headless: bool = False, can_suspend: bool = True) -> None:
        self.is_headless, self.can_suspend, self.suspended = headless, can_suspend, 0

    @contextlib.contextmanager
    def suspend(self):
        if not self.can_suspend:
            raise SuspendNotSupported("no")
        self.suspended += 1
        yield


def test_on_a_terminal_the_library_is_loaded_with_the_app_suspended(monkeypatch):
    """textual-image asks the terminal at import; with Textual running, the answer would be
    read as key presses, so the import happens while the app is suspended."""
    from textual_image import renderable, widget

    from tui.widgets import images

    monkeypatch.setattr(images, "_tty", lambda: True)
    app = FakeApp()
    assert images._load(app).widget is widget.HalfcellImage and app.suspended == 1
    monkeypatch.setattr(renderable, "Image", renderable.SixelImage)  # a Sixel terminal
    sixel = images._load(app)
    assert sixel.widget is widget.SixelImage and sixel.graphics and sixel.name == "Sixel"
    monkeypatch.setattr(renderable, "Image", renderable.TGPImage)
    assert images._load(app).widget is widget.TGPImage
    monkeypatch.setenv("CNN_TUI_IMAGES", "halfcell")  # claimed, but drawn badly
    assert images._load(app).widget is widget.HalfcellImage
    cannot = images._load(FakeApp(can_suspend=False))
    assert cannot.widget is None and "cannot be asked" in cannot.why
    headless = FakeApp(headless=True)
    monkeypatch.delenv("CNN_TUI_IMAGES")
    assert images._load(headless).widget is widget.HalfcellImage and headless.suspended == 0
