"""The Inside view of the Runs tab: what the network did inside, per variant side by side.

For the launch the charts show, one column per variant (the highlighted run's repeat): heat
strips per layer × epoch of the activation std, the dead or saturated fraction and the
weight-gradient norm, then the test confusion matrix, the confidence histogram of right vs
wrong answers and the most confident mistakes. A screen of its own (the Runs tab has no room
for it at 80×24); it scrolls both ways and redraws while the runs it shows are training.
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
from tui.widgets.inside import InsideColumn, run_column

REDRAW_S = 1.0  # while a shown run trains, its new epochs appear within a second


class InsideScreen(Screen[None]):
    """Layer statistics and the test diagnosis of the shown launch; esc or i goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,i", "close", "Back to the runs", tooltip="Inside view: back to the "
                "Runs tab"),
    ]

    def __init__(self, runs: RunsView, title: str) -> None:
        super().__init__()
        self.runs = runs
        self.title_text = title
        self._shown: list[RunRecord] = []

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
        columns = list(box.query(InsideColumn))
        if not records:
            texts = [Text("No runs in this launch yet: press r on the Lessons tab.",
                          style="italic")]
        else:
            shared = scales(records)
            texts = [run_column(r, shared) for r in records]
        for column, text in zip(columns, texts, strict=False):
            column.update(text)
        for column in columns[len(texts):]:
            column.remove()
        if len(texts) > len(columns):
            box.mount_all(InsideColumn(t, classes="inside-column") for t in texts[len(columns):])

    def action_close(self) -> None:
        self.dismiss(None)
