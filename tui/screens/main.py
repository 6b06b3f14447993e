"""The main screen: lessons, toggles and runs (charts + table) in tabs, the run bar below.

It owns the run-related bindings and renders the app's state on a timer (a few Hz), so the
number of trainer events never decides how often the terminal is redrawn.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, TabbedContent, TabPane

from tui.messages import LessonChosen, RunSelected, TogglesChanged
from tui.widgets.charts import ChartLegend, ChartView, CurveChart
from tui.widgets.lessons import LessonList, LessonView
from tui.widgets.results import ResultsTable, RunDetail
from tui.widgets.runbar import RunBar
from tui.widgets.toggles import ToggleForm
from tui.widgets.verdict import VerdictCard

if TYPE_CHECKING:
    from tui.app import CnnTuiApp

TABS = ("lessons", "toggles", "runs")


class MainScreen(Screen):
    """Everything the user works with; the app object holds state and the trainer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run_lesson", "Run lesson", tooltip="Run every variant × repeat of the "
                "selected lesson (queued on the trainer)"),
        Binding("t", "run_toggles", "Run toggles",
                tooltip="Run just the current toggles as one variant"),
        Binding("x", "stop_run", "Stop", tooltip="Stop the current run (within a batch; its "
                "finished epochs are kept)"),
        Binding("X", "cancel_queue", "Cancel queue", show=False,
                tooltip="Drop every queued run (the current one keeps going)"),
        Binding("e", "export", "Export", tooltip="Export the results table to a CSV file"),
        Binding("m", "chart_mode", "Mean/runs", show=False,
                tooltip="Charts: mean ± std per variant, or every run"),
        Binding("d", "switch_dataset", "Switch dataset", show=False,
                tooltip="Switch every run between CIFAR-10 and the synthetic offline data"),
        Binding("1", "tab('lessons')", "Lessons tab", show=False),
        Binding("2", "tab('toggles')", "Toggles tab", show=False),
        Binding("3", "tab('runs')", "Runs tab", show=False),
    ]

    app: CnnTuiApp  # type: ignore[assignment]

    def compose(self) -> ComposeResult:
        app = self.app
        yield Header(show_clock=False, icon="▦")
        with TabbedContent(initial="lessons", id="tabs"):
            with TabPane("1 Lessons", id="lessons"), Horizontal(id="lessons-body"):
                yield LessonList(app.toggles.presets, id="lesson-list")
                yield LessonView(id="lesson-view")
            with TabPane("2 Toggles", id="toggles"):
                yield ToggleForm(app.toggles, blink=app.options.blink, id="toggle-form")
            with TabPane("3 Runs", id="runs"), Vertical(id="runs-body"):
                with Horizontal(id="charts"):
                    yield CurveChart("loss", id="loss-chart")
                    yield CurveChart("acc", id="acc-chart")
                yield ChartLegend(id="legend")
                with Horizontal(id="table-row"):
                    with Vertical(id="table-area"):
                        yield ResultsTable(app.runs, id="results")
                        yield RunDetail(id="run-detail")
                    yield VerdictCard(compact=True, id="runs-verdict")
        yield RunBar(id="run-bar")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        lessons = self.query_one(LessonList)
        lessons.select_key(self.app.toggles.lesson)
        lessons.focus()
        self.query_one(LessonView).show(self.app.toggles, self.app.runs)
        self.sync(force=True)

    # -- rendering (called by the app's timer) ----------------------------------------------
    def sync(self, force: bool = False) -> None:
        app = self.app
        runs = app.runs
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
        app.update_titles()

    chart_mode = "mean"  # "mean": per-variant mean ± std; "runs": every run
    _charts_at = 0.0

    def _charts(self) -> None:
        self._charts_at = time.monotonic()
        runs = self.app.runs
        group = runs.group_runs(runs.chart_group)
        repeats = runs.repeats_in()
        view = ChartView(
            series=runs.series(),
            curves=runs.variant_curves() if self.chart_mode == "mean" else [],
            mode=self.chart_mode,
            max_epochs=max((int(r["config"].get("epochs", 1)) for r in group), default=1),
            hint=None if group else "no runs yet — press r to run the lesson",
        )
        for chart in self.query(CurveChart):
            chart.draw(view)
        labels = runs.variant_order(runs.chart_group)
        selected = runs.records.get(runs.selected or "", {}).get("variant")
        title = ""
        if group:
            preset = self.app.toggles.presets.get(group[0].get("preset", ""))
            title = preset.title if preset else "Custom run"
        drops = any(h.get("lr_dropped") for r in group for h in r.get("history") or [])
        self.query_one(ChartLegend).show(labels, selected, title, self.chart_mode, repeats,
                                         drops)

    def _verdicts(self) -> None:
        """Both verdict cards follow the runs live (make_verdict works mid-lesson)."""
        app = self.app
        self.query_one(LessonView).show_verdict(app.toggles, app.runs)
        card = self.query_one("#runs-verdict", VerdictCard)
        group = app.runs.group_runs(app.runs.chart_group)
        preset = app.toggles.presets.get(group[0].get("preset", "")) if group else None
        card.show(preset, group)

    def _detail(self) -> None:
        table = self.query_one(ResultsTable)
        self.query_one(RunDetail).show(self.app.runs, table.cursor_run())

    def idle_hint(self) -> str:
        t = self.app.toggles
        n = len(t.preset.variants) * t.config().repeats if t.preset else t.config().repeats
        return f"r runs {t.title} ({n} run{'s' * (n != 1)}) · t runs the toggles · ? help"

    # -- messages from the widgets ---------------------------------------------------------------
    @on(LessonChosen)
    def _lesson(self, event: LessonChosen) -> None:
        self.app.toggles.select(event.key)
        self.query_one(LessonView).show(self.app.toggles, self.app.runs)
        self.query_one(ToggleForm).load()
        self.app.runs.dirty_bar = True
        self.app.update_titles()

    @on(TogglesChanged)
    def _toggles(self) -> None:
        self.query_one(LessonView).show(self.app.toggles, self.app.runs)
        self.app.runs.dirty_bar = True

    @on(RunSelected)
    def _run_selected(self, event: RunSelected) -> None:
        group = self.app.runs.chart_group
        self.app.runs.select(event.run_id)
        self._detail()
        self._charts()
        if self.app.runs.chart_group != group:
            self._verdicts()

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "runs":
            self.app.runs.dirty_charts = True

    # -- actions ----------------------------------------------------------------------------
    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name
        self.focus_tab(name)

    def focus_tab(self, name: str) -> None:
        if name == "lessons":
            self.query_one(LessonList).focus()
        elif name == "toggles":
            self.query_one(ToggleForm).first_control().focus()
        else:
            self.query_one(ResultsTable).focus()

    def show_field(self, key: str) -> None:
        """Bring an invalid toggle into view with the cursor in it."""
        self.query_one(TabbedContent).active = "toggles"
        self.query_one(ToggleForm).focus_key(key)

    def action_run_lesson(self) -> None:
        self.app.run_lesson()

    def action_run_toggles(self) -> None:
        self.app.run_toggles()

    def action_stop_run(self) -> None:
        self.app.stop_run()

    def action_cancel_queue(self) -> None:
        self.app.cancel_queue()

    def action_export(self) -> None:
        self.app.export_csv()

    def action_chart_mode(self) -> None:
        self.chart_mode = "runs" if self.chart_mode == "mean" else "mean"
        self._charts()
        self.notify("Charts: " + ("every run" if self.chart_mode == "runs" else
                                  "mean ± std per variant"), timeout=2)

    def action_switch_dataset(self) -> None:
        self.app.switch_dataset()

    def after_toggles_changed(self) -> None:
        """The app changed toggles behind the form's back (dataset switch): redraw them."""
        self.query_one(ToggleForm).load()
        self.query_one(LessonView).show(self.app.toggles, self.app.runs)
        self.app.runs.dirty_bar = True

    def show_runs(self) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active != "runs":
            tabs.active = "runs"
            self.query_one(ResultsTable).focus()
