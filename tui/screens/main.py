"""The main screen: lessons, toggles and runs (charts + table) in tabs, the run bar below.

It is handed the models it draws (the toggles and the runs view) and renders them on the
app's timer (a few Hz), so the number of trainer events never decides how often the terminal
is redrawn. Its run keys are bound to the app's actions, whose `check_action` hides them from
the Footer while they can do nothing.
"""

from __future__ import annotations

import contextlib
import time
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import MountError
from textual.widgets import Footer, Header, TabbedContent, TabPane

from tui.messages import LessonChosen, RunSelected, TogglesChanged
from tui.state.runs import RunsView
from tui.state.toggles import ToggleState
from tui.widgets.charts import ChartLegend, ChartView, CurveChart
from tui.widgets.lessons import LessonList, LessonView
from tui.widgets.results import ResultsTable, RunDetail
from tui.widgets.runbar import RunBar
from tui.widgets.toggles import ToggleForm
from tui.widgets.verdict import VerdictCard

TABS = ("lessons", "toggles", "runs")


class MainScreen(Screen):
    """Everything the user works with: lessons, toggles, charts, table, run bar."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "app.run_lesson", "Run lesson", tooltip="Run every variant × repeat of "
                "the selected lesson (queued on the trainer)"),
        Binding("t", "app.run_toggles", "Run toggles",
                tooltip="Run just the current toggles as one variant"),
        Binding("x", "app.stop_run", "Stop", tooltip="Stop the current run (within a batch; "
                "its finished epochs are kept)"),
        Binding("X", "app.cancel_queue", "Cancel queue", show=False,
                tooltip="Drop every queued run (the current one keeps going)"),
        Binding("e", "app.export", "Export", tooltip="Export the results table to a CSV file"),
        Binding("m", "chart_mode", "Mean/runs", show=False,
                tooltip="Charts: mean ± std per variant, or every run"),
        Binding("d", "app.switch_dataset", "Switch dataset", show=False,
                tooltip="Switch every run between CIFAR-10 and the synthetic offline data"),
        Binding("1", "tab('lessons')", "Lessons tab", show=False),
        Binding("2", "tab('toggles')", "Toggles tab", show=False),
        Binding("3", "tab('runs')", "Runs tab", show=False),
    ]

    chart_mode: reactive[str] = reactive("mean", init=False)
    """Charts: "mean" (per-variant mean ± std) or "runs" (every run)."""

    def __init__(self, toggles: ToggleState, runs: RunsView, blink: bool = True) -> None:
        super().__init__()
        self.toggles = toggles
        self.runs = runs
        self.blink = blink
        self._charts_at = 0.0

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="▦")
        with TabbedContent(initial="lessons", id="tabs"):
            with TabPane("1 Lessons", id="lessons"), Horizontal(id="lessons-body"):
                yield LessonList(self.toggles.presets, id="lesson-list")
                yield LessonView(id="lesson-view")
            yield TabPane("2 Toggles", id="toggles")  # its form comes after the first frame
            with TabPane("3 Runs", id="runs"), Vertical(id="runs-body"):
                with Horizontal(id="charts"):
                    yield CurveChart("loss", id="loss-chart")
                    yield CurveChart("acc", id="acc-chart")
                yield ChartLegend(id="legend")
                with Horizontal(id="table-row"):
                    with Vertical(id="table-area"):
                        yield ResultsTable(self.runs, id="results")
                        yield RunDetail(id="run-detail")
                    yield VerdictCard(compact=True, id="runs-verdict")
        yield RunBar(id="run-bar")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.call_after_refresh(self._mount_toggles)
        lessons = self.query_one(LessonList)
        lessons.select_key(self.toggles.lesson)
        lessons.focus()
        self.query_one(LessonView).show(self.toggles, self.runs)
        self.sync(force=True)

    # -- rendering (called by the app's timer) ----------------------------------------------
    def sync(self, force: bool = False) -> None:
        runs = self.runs
        if force or runs.dirty_rows or runs.order_changed:
            self.query_one(ResultsTable).sync(full=force)
            self._detail()
            self._verdicts()
        now = time.monotonic()
        # Epochs, starts and ends redraw at once; a moving live point at most once a second
        # (two plotext charts cost tens of ms per frame, which adds up over SSH).
        if force or runs.dirty_charts or (runs.dirty_live and now - self._charts_at >= 1.0):
            self._charts()
            runs.dirty_live = False
        if force or runs.dirty_bar:
            self.query_one(RunBar).sync(runs, self.idle_hint())
        runs.clear_dirty()

    def _charts(self) -> None:
        self._charts_at = time.monotonic()
        runs = self.runs
        group = runs.chart_runs()
        repeats = runs.repeats_in()
        view = ChartView(
            series=runs.series(),
            curves=runs.variant_curves() if self.chart_mode == "mean" else [],
            mode=self.chart_mode,
            max_epochs=max((r.epochs or 1 for r in group), default=1),
            hint=None if group else "no runs yet — press r to run the lesson",
        )
        for chart in self.query(CurveChart):
            chart.draw(view)
        labels = runs.variant_order(runs.chart_group)
        chosen = runs.session.records.get(runs.selected or "")
        selected = chosen.variant if chosen is not None else None
        title = ""
        if group:
            preset = self.toggles.presets.get(group[0].preset)
            title = preset.title if preset else "Custom run"
        drops = any(h.lr_dropped for r in group for h in r.history)
        self.query_one(ChartLegend).show(labels, selected, title, self.chart_mode, repeats,
                                         drops)

    def _verdicts(self) -> None:
        """Both verdict cards follow the runs live (make_verdict works mid-lesson)."""
        self.query_one(LessonView).show_verdict(self.toggles, self.runs)
        card = self.query_one("#runs-verdict", VerdictCard)
        group = self.runs.chart_runs()
        preset = self.toggles.presets.get(group[0].preset) if group else None
        card.show(preset, group)

    def _detail(self) -> None:
        table = self.query_one(ResultsTable)
        self.query_one(RunDetail).show(self.runs, table.cursor_run())

    def idle_hint(self) -> str:
        t = self.toggles
        n = len(t.preset.variants) * t.config().repeats if t.preset else t.config().repeats
        return f"r runs {t.title} ({n} run{'s' * (n != 1)}) · t runs the toggles · ? help"

    # -- messages from the widgets ---------------------------------------------------------------
    @on(LessonChosen)
    def _lesson(self, event: LessonChosen) -> None:
        self.toggles.select(event.key)
        self.query_one(LessonView).show(self.toggles, self.runs)
        self._reload_toggles()
        self.runs.dirty_bar = True

    async def _mount_toggles(self) -> None:
        """The toggle form (dozens of controls the first screen hides) is mounted after
        the first frame, which it would otherwise delay by most of a second."""
        pane = self.query_one("#toggles", TabPane)
        with contextlib.suppress(MountError):  # the app quit before its first frame was out
            await pane.mount(ToggleForm(self.toggles, blink=self.blink, id="toggle-form"))

    def _reload_toggles(self) -> None:
        # (The form is mounted lazily; once mounted it loads the current toggles itself.)
        for form in self.query(ToggleForm):
            form.load()

    @on(TogglesChanged)
    def _toggles(self) -> None:
        self.query_one(LessonView).show(self.toggles, self.runs)
        self.runs.dirty_bar = True

    @on(RunSelected)
    def _run_selected(self, event: RunSelected) -> None:
        group = self.runs.chart_group
        self.runs.select(event.run_id)
        self._detail()
        self._charts()
        if self.runs.chart_group != group:
            self._verdicts()

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "runs":
            self.runs.dirty_charts = True

    # -- actions ----------------------------------------------------------------------------
    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name
        self.focus_tab(name)

    def focus_tab(self, name: str) -> None:
        if name == "lessons":
            self.query_one(LessonList).focus()
        elif name == "toggles":
            for form in self.query(ToggleForm):
                form.first_control().focus()
        else:
            self.query_one(ResultsTable).focus()

    def show_field(self, key: str) -> None:
        """Bring an invalid toggle into view with the cursor in it."""
        self.query_one(TabbedContent).active = "toggles"
        for form in self.query(ToggleForm):
            form.focus_key(key)

    def action_chart_mode(self) -> None:
        self.chart_mode = "runs" if self.chart_mode == "mean" else "mean"

    def watch_chart_mode(self, mode: str) -> None:
        self._charts()
        self.notify("Charts: " + ("every run" if mode == "runs" else "mean ± std per variant"),
                    timeout=2)

    def after_toggles_changed(self) -> None:
        """The app changed toggles behind the form's back (dataset switch): redraw them."""
        self._reload_toggles()
        self.query_one(LessonView).show(self.toggles, self.runs)
        self.runs.dirty_bar = True

    def show_runs(self) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active != "runs":
            tabs.active = "runs"
            self.query_one(ResultsTable).focus()
