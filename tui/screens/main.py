"""The main screen: lessons, toggles and runs (charts + table) in tabs, the run bar below.

Below SPLIT_WIDTH columns one page shows at a time (the tab bar picks it); from there on the
lessons or the toggles stay on the left with the runs beside them, and the bar has no Runs
tab (`3` focuses the table). TabbedContent cannot show two panes at once, so the bar is a
plain `Tabs` over a `ContentSwitcher` (lessons | toggles) and the runs panel.

It is handed the models it draws (the toggles and the runs view) and renders them on the
app's timer (a few Hz), so the number of trainer events never decides how often the terminal
is redrawn. Its run keys are bound to the app's actions, whose `check_action` hides them from
the Footer while they can do nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import MountError
from textual.widgets import ContentSwitcher, Footer, Header, Static, Tab, Tabs

from tui.messages import LessonChosen, RunSelected, TogglesChanged, ViewChanged
from tui.state.curves import next_smoothing
from tui.state.runs import RunsView
from tui.state.system import SystemSampler
from tui.state.toggles import ToggleState
from tui.widgets.legend import ChartLegend, ChartView
from tui.widgets.lessons import LessonList, LessonView
from tui.widgets.results import ResultsTable, RunDetail
from tui.widgets.runbar import RunBar
from tui.widgets.system import SystemLine
from tui.widgets.verdict import VerdictCard, VerdictPanel, verdict_line

if TYPE_CHECKING:  # imported where first used: the first frame needs neither (plotext, forms)
    from tui.widgets.charts import CurveChart
    from tui.widgets.toggles import ToggleForm

TABS = ("lessons", "toggles", "runs")
SPLIT_WIDTH = 160  # from here the lessons / toggles and the runs are side by side
ROOMY_WIDTH = 110  # a runs panel this wide has the verdict card beside the table


class RunsPanel(Vertical):
    """Charts, legend and table; marked -roomy when wide enough for the verdict card beside
    the table (its own width decides, not the terminal's: side by side it is narrower)."""

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width >= ROOMY_WIDTH, "-roomy")


class MainScreen(Screen):
    """Everything the user works with: lessons, toggles, charts, table, run bar."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "verdict_view(True)", "Verdict", tooltip="Runs: the full verdict in "
                "place of the results table, and back (esc too)"),
        Binding("v", "verdict_view(False)", "Table", tooltip="Runs: back to the results "
                "table (esc too)"),
        Binding("i", "inside", "Inside", tooltip="Runs: look inside the network — layer "
                "statistics per epoch, the test confusion matrix and confidence, the "
                "misclassified images and first-layer filters, per variant"),
        Binding("r", "app.run_lesson", "Run lesson", tooltip="Run every variant × repeat of "
                "the selected lesson (queued on the trainer)"),
        Binding("t", "app.run_toggles", "Run toggles",
                tooltip="Run just the current toggles as one variant"),
        Binding("x", "app.stop_run", "Stop", tooltip="Stop the current run (within a batch; "
                "its finished epochs are kept)"),
        Binding("X", "app.cancel_queue", "Cancel queue", show=False,
                tooltip="Drop every queued run (the current one keeps going)"),
        Binding("e", "app.export", "Export",
                tooltip="Export the runs to CSV, with every epoch, statistics and verdicts "
                        "beside it"),
        Binding("m", "chart_mode", "Mean/runs", show=False,
                tooltip="Charts: mean ± std per variant, or every run"),
        Binding("z", "smoothing", "Smoothing", show=False,
                tooltip="Charts: smoothing off / 0.6 / 0.9 (moving average, raw curves faint)"),
        Binding("L", "log_loss", "Log loss", show=False,
                tooltip="Charts: the loss on a log axis, or linear"),
        Binding("p", "pin", "Pin baseline", show=False,
                tooltip="Charts: pin the highlighted run as a baseline drawn against every "
                "launch shown later; p on it again (or with none highlighted) unpins"),
        Binding("y", "system_pane", "System", show=False,
                tooltip="Show or hide the system line: CPU, memory, GPU use and memory"),
        Binding("d", "app.switch_dataset", "Switch dataset", show=False,
                tooltip="Switch every run between CIFAR-10 and the synthetic offline data"),
        Binding("1", "tab('lessons')", "Lessons tab", show=False),
        Binding("2", "tab('toggles')", "Toggles tab", show=False),
        Binding("3", "tab('runs')", "Runs tab", show=False,
                tooltip="Runs tab (from 160 columns the runs sit beside the lessons or "
                "toggles: 3 moves into the table)"),
    ]

    chart_mode: reactive[str] = reactive("mean", init=False)
    """Charts: "mean" (per-variant mean ± std) or "runs" (every run)."""
    smoothing: reactive[float] = reactive(0.0, init=False)
    """Charts: EMA weight of the curves (0: raw), cycled by `z`."""
    log_loss: reactive[bool] = reactive(False, init=False)
    """Charts: the loss chart's y axis is logarithmic."""
    system_pane: reactive[bool] = reactive(False, init=False)
    """The one-line CPU / memory / GPU pane above the run bar is shown (and polling)."""
    page: reactive[str] = reactive("lessons", init=False, bindings=True)
    """The page chosen last (1, 2, 3 or the tab bar); below SPLIT_WIDTH the one shown."""
    split: reactive[bool] = reactive(False, init=False, bindings=True)
    """Lessons / toggles and runs side by side (the screen is SPLIT_WIDTH wide or more)."""
    verdict_view: reactive[bool] = reactive(False, init=False, bindings=True)
    """The Runs page shows the full verdict in place of the results table."""

    def __init__(self, toggles: ToggleState, runs: RunsView, blink: bool = True,
                 system: Callable[[], SystemSampler] = SystemSampler) -> None:
        super().__init__()
        self.toggles = toggles
        self.runs = runs
        self.blink = blink
        self.system = system
        self._charts_at = 0.0

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="▦")
        yield Tabs(Tab("1 Lessons", id="tab-lessons"), Tab("2 Toggles", id="tab-toggles"),
                   Tab("3 Runs", id="tab-runs"), id="tabs")
        with Horizontal(id="workspace"):
            with ContentSwitcher(initial="lessons", id="side"):
                with Horizontal(id="lessons"):
                    yield LessonList(self.toggles.presets, id="lesson-list")
                    yield LessonView(id="lesson-view")
                yield Container(id="toggles")  # its form comes after the first frame
            with RunsPanel(id="runs-body"):
                yield Horizontal(id="charts")  # its two plots come after the first frame
                yield ChartLegend(id="legend")
                yield Static(id="verdict-line")
                with Horizontal(id="table-row"):
                    with Vertical(id="table-area"):
                        yield ResultsTable(self.runs, id="results")
                        yield RunDetail(id="run-detail")
                    with VerdictPanel(id="runs-verdict-panel"):
                        yield VerdictCard(compact=True, id="runs-verdict")
        yield SystemLine(self.system, id="system-line")
        yield RunBar(id="run-bar")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.call_after_refresh(self._mount_charts)
        self.call_after_refresh(self._mount_toggles)
        lessons = self.query_one(LessonList)
        lessons.select_key(self.toggles.lesson)
        lessons.focus()
        self.query_one(LessonView).show(self.toggles, self.runs)
        self.split = self.size.width >= SPLIT_WIDTH
        self._layout()
        self.sync(force=True)

    def on_resize(self, event: events.Resize) -> None:
        self.split = event.size.width >= SPLIT_WIDTH

    # -- rendering (called by the app's timer) ----------------------------------------------
    def sync(self, force: bool = False) -> None:
        runs = self.runs
        if force or runs.dirty_rows or runs.order_changed:
            self.query_one(ResultsTable).sync(full=force)
            self._detail()
        # Statistics only move with an epoch, a start or an end, not with each live step.
        if force or runs.dirty_verdicts:
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
            smoothing=self.smoothing, log_loss=self.log_loss, baseline=runs.baseline(),
        )
        for chart in self.query("CurveChart"):
            cast("CurveChart", chart).draw(view)
        labels = runs.variant_order(runs.chart_group)
        chosen = runs.session.records.get(runs.selected or "")
        selected = chosen.variant if chosen is not None else None
        title = ""
        if group:
            preset = self.toggles.presets.get(group[0].preset)
            title = preset.title if preset else "Custom run"
        drops = any(h.lr_dropped for r in group for h in r.history)
        self.query_one(ChartLegend).show(labels, selected, title, self.chart_mode, repeats,
                                         drops, runs.baseline_label(), self.smoothing,
                                         self.log_loss)

    def _verdicts(self) -> None:
        """Both verdict cards follow the runs live (make_verdict works mid-lesson)."""
        self.query_one(LessonView).show_verdict(self.toggles, self.runs)
        card = self.query_one("#runs-verdict", VerdictCard)
        group = self.runs.chart_runs()
        preset = self.toggles.presets.get(group[0].preset) if group else None
        card.show(preset, group)
        self._verdict_line()

    def _verdict_line(self) -> None:
        """Where the card does not fit beside the table: the verdict in one line, saying
        that the full card is one key away (nothing is hidden without a word)."""
        card = self.query_one("#runs-verdict", VerdictCard)
        note = Text("v: full verdict", style="bold")
        if card.verdict is None:
            note.append(" · ")
            note.append_text(card.empty_text)
        line = self.query_one("#verdict-line", Static)
        text = verdict_line(card.verdict, note)
        if line.content != text:
            line.update(text, layout=False)  # one line, height fixed by the .tcss

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

    async def _mount_charts(self) -> None:
        """The two plotext charts are mounted (and plotext imported) after the first frame:
        below SPLIT_WIDTH the first screen does not show them at all."""
        from tui.widgets.charts import CurveChart

        box = self.query_one("#charts", Horizontal)
        with contextlib.suppress(MountError):  # the app quit before its first frame was out
            await box.mount_all([CurveChart("loss", id="loss-chart"),
                                 CurveChart("acc", id="acc-chart")])
            self._charts()

    async def _mount_toggles(self) -> None:
        """The toggle form (dozens of controls the first screen hides) is mounted after
        the first frame, which it would otherwise delay by most of a second."""
        from tui.widgets.toggles import ToggleForm

        pane = self.query_one("#toggles", Container)
        form = ToggleForm(self.toggles, blink=self.blink, id="toggle-form")
        with contextlib.suppress(MountError):  # the app quit before its first frame was out
            await pane.mount(form)
            if self.page == "toggles":
                form.first_control().focus()  # `2` was pressed before the form was there

    @property
    def toggle_form(self) -> ToggleForm | None:
        """The toggle form, or None before it is mounted (it comes after the first frame)."""
        forms = self.query("#toggle-form")
        return cast("ToggleForm", forms.first()) if forms else None

    def _reload_toggles(self) -> None:
        # (Once mounted, the form loads the current toggles itself.)
        if (form := self.toggle_form) is not None:
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
        if self.runs.chart_group != group or event.run_id is None:  # None: [ ] changed launch
            self._verdicts()

    @on(Tabs.TabActivated, "#tabs")
    def _tab(self, event: Tabs.TabActivated) -> None:
        """The tab bar was clicked or arrowed: show that page."""
        event.stop()
        name = (event.tab.id or "").removeprefix("tab-")
        if name in TABS:
            self.page = name

    # -- layout -----------------------------------------------------------------------------
    def watch_page(self) -> None:
        self._layout()

    def watch_split(self) -> None:
        self._layout()

    def watch_verdict_view(self, on: bool) -> None:
        self.query_one("#runs-body").set_class(on, "-verdict")
        self.query_one("#runs-verdict", VerdictCard).compact = not on
        panel = self.query_one(VerdictPanel)
        panel.border_title = "Verdict · v or esc: back to the table" if on else None
        panel.can_focus = on
        if on:
            panel.focus()
        elif self.focused is None or self.focused is panel:
            self.query_one(ResultsTable).focus()

    def _layout(self) -> None:
        """Show the chosen page (or, side by side, the last of lessons/toggles and the runs)
        and keep the tab bar in step without echoing its TabActivated back."""
        page, split = self.page, self.split
        side = self.query_one("#side", ContentSwitcher)
        if page != "runs":
            side.current = page
        side.display = split or page != "runs"
        runs = self.query_one("#runs-body")
        shown = split or page == "runs"
        if shown and not runs.display:
            self.runs.dirty_charts = True  # not redrawn while hidden
        runs.display = shown
        tabs = self.query_one("#tabs", Tabs)
        with self.prevent(Tabs.TabActivated):
            if split:
                tabs.hide("tab-runs")
            else:
                tabs.show("tab-runs")
            tabs.active = f"tab-{side.current if split and page == 'runs' else page}"

    def runs_visible(self) -> bool:
        return self.split or self.page == "runs"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """v offers the verdict where the runs are shown, and the table while swapped."""
        if action == "inside":
            return self.runs_visible()
        if action == "verdict_view":
            return self.runs_visible() and bool(parameters and parameters[0]) != \
                self.verdict_view
        return True

    # -- actions ----------------------------------------------------------------------------
    def action_tab(self, name: str) -> None:
        self.page = name
        self.focus_tab(name)

    def action_inside(self) -> None:
        """The Inside view of the launch the charts show."""
        group = self.runs.chart_runs()
        preset = self.toggles.presets.get(group[0].preset) if group else None
        title = preset.title if preset else ("Custom run" if group else "no launch yet")
        from tui.screens.inside import InsideScreen

        self.app.push_screen(InsideScreen(self.runs, title))

    def action_verdict_view(self, on: bool) -> None:
        self.verdict_view = on

    def focus_tab(self, name: str) -> None:
        if name == "lessons":
            self.query_one(LessonList).focus()
        elif name == "toggles":
            if (form := self.toggle_form) is not None:
                form.first_control().focus()
        elif self.verdict_view:
            self.query_one(VerdictPanel).focus()
        else:
            self.query_one(ResultsTable).focus()

    def show_field(self, key: str) -> None:
        """Bring an invalid toggle into view with the cursor in it."""
        self.page = "toggles"
        if (form := self.toggle_form) is not None:
            form.focus_key(key)

    def action_chart_mode(self) -> None:
        self.chart_mode = "runs" if self.chart_mode == "mean" else "mean"

    def watch_chart_mode(self, mode: str) -> None:
        self._charts()
        self.post_message(ViewChanged())
        self.notify("Charts: " + ("every run" if mode == "runs" else "mean ± std per variant"),
                    timeout=2)

    def action_smoothing(self) -> None:
        self.smoothing = next_smoothing(self.smoothing)

    def watch_smoothing(self, weight: float) -> None:
        self._charts()
        self.post_message(ViewChanged())
        self.notify(f"Charts: smoothed {weight:g} (the raw curves faint behind)" if weight
                    else "Charts: smoothing off (raw curves)", timeout=2)

    def action_log_loss(self) -> None:
        self.log_loss = not self.log_loss

    def watch_log_loss(self, on: bool) -> None:
        self._charts()
        self.post_message(ViewChanged())
        self.notify("Charts: loss on a log axis" if on else "Charts: loss on a linear axis",
                    timeout=2)

    def action_pin(self) -> None:
        """p: pin the highlighted run (the table's cursor) as the baseline, or unpin."""
        runs = self.runs
        before = runs.pinned
        if runs.toggle_pin() is not None:
            self.notify(f"Pinned {runs.baseline_label()} as the baseline (gold); p on it "
                        "again unpins", markup=False, timeout=3)
        elif before is not None:
            self.notify("Baseline unpinned", timeout=2)
        else:
            self.notify("Highlight a run in the table (3), then p pins it as a baseline",
                        timeout=3)
        self._charts()
        self.post_message(ViewChanged())

    def action_system_pane(self) -> None:
        self.system_pane = not self.system_pane

    def watch_system_pane(self, on: bool) -> None:
        self.query_one(SystemLine).set_shown(on)
        self.post_message(ViewChanged())

    def after_toggles_changed(self) -> None:
        """The app changed toggles behind the form's back (dataset switch): redraw them."""
        self._reload_toggles()
        self.query_one(LessonView).show(self.toggles, self.runs)
        self.runs.dirty_bar = True

    def show_runs(self) -> None:
        if self.page != "runs":
            self.page = "runs"
            self.focus_tab("runs")
