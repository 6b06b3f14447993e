"""The Inside view of the Runs tab: what the network did inside, per variant side by side.

For the launch the charts show, one column per variant (the highlighted run's repeat): heat
strips per layer × epoch of the activation std, the dead or saturated fraction and the
weight-gradient norm, then the test confusion matrix, the confidence histogram of right vs
wrong answers and the most confident mistakes, and a gallery (m shows or hides it): those
mistakes as test images, and the first layer's filters as pictures. A screen of its own (the
Runs tab has no room for it at 80×24); it scrolls both ways and redraws while the runs it
shows are training. The gallery's modules (NumPy, Pillow, textual-image) load when it is
first drawn, not with the app.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, ScrollableContainer
from textual.screen import Screen
from textual.widgets import Footer, Static

from trainer.store.record import RunRecord
from tui.state.inside import inside_runs, scales
from tui.state.runs import RunsView
from tui.widgets.inside import RunColumn, run_column

REDRAW_S = 1.0  # while a shown run trains, its new epochs appear within a second
GALLERY = 8  # mistakes shown per run (three rows of images at 80×24) …
GALLERY_WIDE = 12  # … and on a terminal at least WIDE columns wide
WIDE = 120


class InsideScreen(Screen[None]):
    """Layer statistics and the test diagnosis of the shown launch; esc or i goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,i", "close", "Back to the runs", tooltip="Inside view: back to the "
                "Runs tab"),
        Binding("m", "images", "Images", tooltip="Inside view: show or hide the misclassified "
                "test images and the first layer's filters"),
    ]

    def __init__(self, runs: RunsView, title: str) -> None:
        super().__init__()
        self.runs = runs
        self.title_text = title
        self._shown: list[RunRecord] = []
        self.images = True  # the galleries are shown (m)

    def compose(self) -> ComposeResult:
        yield Static(id="inside-title")
        with ScrollableContainer(id="inside-scroll"):
            yield Horizontal(id="inside-columns")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(REDRAW_S, self.redraw)
        self.query_one("#inside-scroll").focus()

    def chosen(self) -> list[RunRecord]:
        runs = self.runs
        group = runs.chart_runs()
        return inside_runs(group, runs.variant_order(runs.chart_group), runs.selected)

    def redraw(self) -> None:
        records = self.chosen()
        if self._shown and len(records) == len(self._shown) and all(
                a is b for a, b in zip(records, self._shown, strict=True)):
            return  # records are immutable: the same objects mean nothing changed
        self._shown = records
        title = Text("Inside · ", style="bold")
        title.append(self.title_text)
        title.append(" · a column per variant · arrows scroll", style="dim")
        self.query_one("#inside-title", Static).update(title)
        box = self.query_one("#inside-columns", Horizontal)
        columns = list(box.query(RunColumn))
        if not records:
            texts = [Text("No runs in this launch yet: press r on the Lessons tab.",
                          style="italic")]
        else:
            shared = scales(records)
            texts = [run_column(r, shared) for r in records]
        for column, text in zip(columns, texts, strict=False):
            column.text.update(text)
        for column in columns[len(texts):]:
            column.remove()
        added = [RunColumn(t) for t in texts[len(columns):]]
        if added:
            box.mount_all(added)
        self.draw_galleries([*columns, *added][:len(records)], records)

    def draw_galleries(self, columns: list[RunColumn], records: list[RunRecord]) -> None:
        """Each diagnosed run's gallery, rebuilt only when its diagnosis or the size changed
        (a gallery is a few dozen widgets; the view redraws every second while runs train)."""
        count = GALLERY_WIDE if self.app.size.width >= WIDE else GALLERY
        wanted = [r if self.images and r.diagnosis is not None else None for r in records]
        if not any(wanted):
            for column in columns:
                column.gallery.show(None, [])
            return
        from tui.widgets.gallery import gallery_widgets  # NumPy and Pillow: not at start
        from tui.widgets.images import renderer

        chosen = renderer(self.app)  # the first gallery ever asks the terminal (images.py)
        for column, record in zip(columns, wanted, strict=True):
            key = None if record is None else (record.diagnosis, count)
            if column.gallery.shown != key:
                column.gallery.show(key, [] if record is None else
                                    gallery_widgets(record, chosen, count))

    def on_resize(self) -> None:
        self.draw_galleries(list(self.query(RunColumn))[:len(self._shown)], self._shown)

    def action_images(self) -> None:
        """m: show or hide the galleries."""
        self.images = not self.images
        self.draw_galleries(list(self.query(RunColumn))[:len(self._shown)], self._shown)

    def action_close(self) -> None:
        self.dismiss(None)
