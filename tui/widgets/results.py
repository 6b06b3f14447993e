"""The results table: one row per run, filled in live, sortable from the keyboard."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widgets import Static

from trainer import formats as fmt
from trainer.config import ConfigError, RunConfig
from trainer.store.record import RunRecord, RunStatus
from tui.messages import RunSelected, ViewChanged
from tui.state.columns import (
    SORT_CYCLE,
    Column,
    TableRow,
    VariantCache,
    best_val,
    columns_for,
    plain_row,
    sorted_ids,
    status_text,
    table_rows,
    variant_key,
    variant_row,
    variants,
)
from tui.state.runs import RunsView
from tui.widgets.grid import GridColumn, RowTable


class ResultsTable(RowTable):
    """Renders the session's records; the screen calls `sync` from its refresh timer.

    Views: one row per run, or (g) one row per variant with mean ± std over its repeats —
    Enter expands a variant to its runs — and (c) only the config columns that differ.
    Cells are computed once per run and kept until the run changes, so a new order or a
    new column set reuses them.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort", show=False,
                tooltip="Sort by the next column (#, test acc, best val, …); S reverses"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("g", "toggle_grouped", "Group", show=False,
                tooltip="One row per variant (mean ± std over its repeats); Enter expands it"),
        Binding("c", "toggle_diff", "Diff columns", show=False,
                tooltip="Show only the config columns whose values differ"),
        Binding("a", "every_launch(True)", "All launches", show=False,
                tooltip="Every launch in the table (a Launch column tells them apart), or "
                        "only the launch the charts and the verdict are about"),
        Binding("a", "every_launch(False)", "This launch", show=False,
                tooltip="Show only the launch the charts and the verdict are about"),
        Binding("left_square_bracket", "step_launch(-1)", "Earlier launch", show=False,
                tooltip="Show the launch before this one"),
        Binding("right_square_bracket", "step_launch(1)", "Later launch", show=False,
                tooltip="Show the launch after this one"),
        Binding("slash", "app.search_runs", "Filter", show=False,
                tooltip="Show only the runs whose name, label, note, lesson, status or id "
                        "contain the words you type"),
        Binding("l", "app.label_run", "Label/note", show=False,
                tooltip="Give the run under the cursor your own label and a note (saved in "
                        "its file)"),
        Binding("delete", "app.archive_runs", "Archive/delete", show=False,
                tooltip="Archive (or delete for good) the run or variant under the cursor, "
                        "after asking"),
        Binding("escape", "unhighlight", "Unhighlight", show=False,
                tooltip="Stop highlighting the selected run in the charts"),
    ]

    grouped: reactive[bool] = reactive(False, init=False)
    """One row per variant (mean ± std over its repeats) instead of one per run."""
    diff_only: reactive[bool] = reactive(False, init=False)
    """Only the config columns whose values differ."""

    def __init__(self, state: RunsView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = state
        self.sort_column = "n"
        self.sort_reverse = False
        self.expanded: set[str] = set()
        self.rows_shown: list[TableRow] = []
        self._shown_columns: list[Column] = []
        self._cells: dict[str, dict[str, str | Text]] = {}  # run id → column key → cell
        self._cells_of = -1  # the session `order` the cached '#' cells belong to
        self._variants: VariantCache = {}  # the grouped view's cells, per variant
        self._warming: list[tuple[str, str, list[RunRecord]]] = []  # variants to precompute
        self._warming_of: object = None  # what the list was made for (see _warm_key)

    def _label(self, col: Column) -> Text:
        label = col.label
        if col.key == self.sort_column and col.key != "n":
            label += " ▼" if self.sort_reverse else " ▲"
        return Text(label)

    # -- drawing ----------------------------------------------------------------------------
    def sync(self, full: bool = False) -> None:
        """Bring rows up to date: changed runs only, a new order by moving rows."""
        state = self.state
        columns = columns_for(state, self.diff_only)
        new_columns = full or [c.key for c in columns] != [c.key for c in self._shown_columns]
        if new_columns:
            self._shown_columns = columns
            self.set_columns([GridColumn(c.key, self._label(c), c.right) for c in columns])
        self._forget_cells()
        if self.grouped:
            rows = table_rows(state, columns, self.sort_column, self.sort_reverse, True,
                              self.expanded, self._variants, self._cell)
            self.set_rows([(r.key, r.cells) for r in rows])
            self.rows_shown = rows
            return
        order = sorted_ids(state, self.sort_column, self.sort_reverse)
        shown = {r.key for r in self.rows_shown}
        if new_columns or len(order) != len(shown) or any(r not in shown for r in order) \
                or any(r.run_id is None for r in self.rows_shown):
            self.rows_shown = [self._run_row(r, columns) for r in order]
            self.set_rows([(r.key, r.cells) for r in self.rows_shown])
            self._start_warming()
            return
        by_key = {r.key: r for r in self.rows_shown}
        for run_id in state.dirty_rows & shown:
            row = by_key[run_id] = self._run_row(run_id, columns)
            self.update_row(run_id, row.cells)
        self.rows_shown = [by_key[r] for r in order]
        if order != self.row_keys():
            self.reorder(order)
        self._start_warming()

    # A store of thousands of runs has hundreds of variants: their mean ± std cells take a
    # few tenths of a second, so the plain view computes them ahead, a slice per timer tick
    # on the UI thread (where the records are changed; no locks), and `g` only sorts.
    WARM_AFTER_RUNS = 200
    WARM_SLICE = 40  # variants per tick: a few milliseconds, never a visible stall

    @property
    def warming(self) -> bool:
        """Variant cells are still to be computed ahead (benchmarks wait for this)."""
        session = self.state.session
        return bool(self._warming) or (len(session.records) >= self.WARM_AFTER_RUNS
                                       and self._warming_of != self._warm_key())

    def _warm_key(self) -> tuple[int, bool, str | None, str]:
        """The rows a variant list is for: the session's runs, the launches shown, the
        search."""
        state = self.state
        return state.session.order, state.every_launch, state.chart_group, state.search

    def _start_warming(self) -> None:
        order = self._warm_key()
        if self._warming_of == order or len(self.state.session.records) < self.WARM_AFTER_RUNS:
            return
        self._warming_of = order
        first = not self._warming
        self._warming = variants(self.state)
        if first:
            self.set_timer(0.05, self._warm_step)

    def _warm_step(self) -> None:
        if self.grouped or self._warming_of != self._warm_key():
            self._warming = []  # grouped: computed as shown; new runs: sync starts over
            return
        columns = self._shown_columns
        batch, self._warming = self._warming[:self.WARM_SLICE], self._warming[self.WARM_SLICE:]
        for group, label, runs in batch:
            variant_row(self.state, group, label, runs, variant_key(group, label)
                        in self.expanded, columns, self._variants, self._cell)
        if self._warming:
            self.set_timer(0.01, self._warm_step)

    def _forget_cells(self) -> None:
        """Drop cached cells of the runs that changed (and of the variants they are in)."""
        state = self.state
        records = state.session.records
        for run_id in state.dirty_rows:
            self._cells.pop(run_id, None)
            rec = records.get(run_id)
            if rec is not None:
                group = rec.group or rec.run_id
                for expanded in (False, True):
                    self._variants.pop((group, rec.variant, expanded), None)
        if state.session.order != self._cells_of:  # rows added or dropped: '#' may move
            self._variants.clear()
            self._cells_of = state.session.order
            self._cells = {r: c for r, c in self._cells.items() if r in records}
            for cells in self._cells.values():
                cells.pop("n", None)

    def _cell(self, rec: RunRecord, col: Column) -> str | Text:
        """A run's cell, from the cache (computed once until the run changes)."""
        cache = self._cells.setdefault(rec.run_id, {})
        cell = cache.get(col.key)
        if cell is None:
            cell = cache[col.key] = col.cell(rec, self.state)
        return cell

    def _run_row(self, run_id: str, columns: list[Column]) -> TableRow:
        return plain_row(self.state, columns, run_id, cell_of=self._cell)

    def cursor_run(self) -> str | None:
        """Run id under the cursor (None on a variant row or an empty table)."""
        key = self.cursor_key()
        return key if key in self.state.session.records else None

    def cursor_variant(self) -> TableRow | None:
        key = self.cursor_key()
        return next((r for r in self.rows_shown if r.key == key and r.run_id is None), None)

    def select_run(self, run_id: str) -> None:
        keys = self.row_keys()
        if run_id in keys:
            self.move_cursor(row=keys.index(run_id))

    # -- views and sorting -------------------------------------------------------------------
    def _relabel(self) -> None:
        for col in self._shown_columns:
            self.relabel(col.key, self._label(col))

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        col = next((c for c in self._shown_columns if c.key == key), None)
        if col is None:
            return
        self.sort_column = key
        self.sort_reverse = col.descending_first if reverse is None else reverse
        self._relabel()
        self.sync()
        self.refresh()
        self.post_message(ViewChanged())
        direction = "↓" if self.sort_reverse else "↑"
        self.notify(f"Sorted by {col.label} {direction}", timeout=2)

    def action_cycle_sort(self) -> None:
        i = SORT_CYCLE.index(self.sort_column) if self.sort_column in SORT_CYCLE else -1
        self.sort_by(SORT_CYCLE[(i + 1) % len(SORT_CYCLE)])

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_column, not self.sort_reverse)

    def action_toggle_grouped(self) -> None:
        self.grouped = not self.grouped

    def watch_grouped(self, grouped: bool) -> None:
        self.sync()
        self.post_message(ViewChanged())
        self.notify("One row per variant (mean ± std) · Enter expands" if grouped
                    else "One row per run", timeout=2)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """a offers the other view of launches; [ ] step through launches in "this launch"."""
        if action == "every_launch":
            return bool(parameters and parameters[0]) != self.state.every_launch
        if action == "step_launch":
            return not self.state.every_launch
        return True

    def action_every_launch(self, every: bool) -> None:
        self.state.every_launch = every
        self.sync()
        self.post_message(ViewChanged())
        self.refresh_bindings()
        self.notify(self.scope_text(), timeout=3)

    def action_step_launch(self, delta: int) -> None:
        if self.state.step_launch(delta) is None:
            self.notify("No " + ("earlier" if delta < 0 else "later") + " launch", timeout=2)
            return
        self.sync()
        self.post_message(RunSelected(None))  # the charts and the verdict follow the launch
        self.notify(self.scope_text(), timeout=3)

    def scope_text(self) -> str:
        """What the table shows, in words: "Launch L3 of 5 (batch_norm, 14:05)"."""
        state = self.state
        numbers = state.launch_numbers()
        if state.every_launch or not state.chart_group:
            return f"Every launch: {len(state.session.records)} runs in {len(numbers)} " \
                   f"launch{'es' * (len(numbers) != 1)} · a: only one launch"
        runs = state.session.group_runs(state.chart_group)
        label = state.launch_label(runs[0]) if runs else "?"
        lesson = runs[0].preset or "custom" if runs else ""
        return f"Launch {label} of {len(numbers)} ({lesson}, {len(runs)} runs) · " \
               "[ ]: other launches · a: every launch"

    def action_toggle_diff(self) -> None:
        self.diff_only = not self.diff_only

    def watch_diff_only(self, diff_only: bool) -> None:
        if self.sort_column not in [c.key for c in columns_for(self.state, diff_only)]:
            self.sort_column, self.sort_reverse = "n", False
        self.sync()
        self.post_message(ViewChanged())
        self.notify("Only the settings that differ" if diff_only else "All columns",
                    timeout=2)

    @on(RowTable.HeaderSelected)
    def _header(self, event: RowTable.HeaderSelected) -> None:
        key = event.key
        if key == self.sort_column:
            self.sort_by(key, not self.sort_reverse)
        else:
            self.sort_by(key)

    # -- highlighting the run in the charts ----------------------------------------------------
    # Only once the user moves the cursor: while a lesson trains, every curve stays in full
    # colour; arrow keys (or Enter/click) spotlight one run; Esc or leaving the table ends it.
    _spotlight = False

    def _spot(self) -> None:
        self._spotlight = True
        self.post_message(RunSelected(self.cursor_run()))

    def action_cursor_up(self) -> None:
        super().action_cursor_up()
        self._spot()

    def action_cursor_down(self) -> None:
        super().action_cursor_down()
        self._spot()

    def action_page_up(self) -> None:
        super().action_page_up()
        self._spot()

    def action_page_down(self) -> None:
        super().action_page_down()
        self._spot()

    def action_scroll_top(self) -> None:
        super().action_scroll_top()
        self._spot()

    def action_scroll_bottom(self) -> None:
        super().action_scroll_bottom()
        self._spot()

    @on(RowTable.RowSelected)
    def _selected(self, event: RowTable.RowSelected) -> None:
        variant = self.cursor_variant()
        if variant is not None:  # Enter on a variant row: show or hide its runs
            self.expanded.symmetric_difference_update({variant.key})
            self.sync()
            return
        self._spot()

    @on(RowTable.RowHighlighted)
    def _highlighted(self, event: RowTable.RowHighlighted) -> None:
        if self._spotlight and self.has_focus:
            self.post_message(RunSelected(event.key))

    def on_blur(self) -> None:
        self.action_unhighlight()

    def action_unhighlight(self) -> None:
        if self._spotlight:
            self._spotlight = False
            self.post_message(RunSelected(None))


class RunDetail(Static):
    """One line about the run under the table cursor: the full failure reason, the config."""

    def show(self, state: RunsView, run_id: str | None) -> None:
        text = self._text(state, run_id)
        if self.content != text:
            self.update(text, layout=False)  # one line, height fixed by the .tcss: no relayout

    def _text(self, state: RunsView, run_id: str | None) -> Text:
        rec = state.session.records.get(run_id) if run_id else None
        if rec is None:
            return (Text("↑/↓ highlights a run in the charts · s sorts · g one row per "
                             "variant (Enter expands) · c differing columns only · / filter · "
                          "l label · del archive", style="dim"))
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"#{state.index(rec.run_id)} {rec.variant} rep {rec.repeat + 1} ", "bold")
        if rec.label:
            text.append(f"“{rec.label}” ", "italic")
        if rec.note:
            text.append(f"✎ {' '.join(rec.note.split())} · ", "italic")
        text.append_text(status_text(rec, state, width=200))
        if rec.summary.test_acc is not None:
            text.append(f" · test {fmt.pct(rec.summary.test_acc)}")
        if rec.summary.best_val_acc is not None:
            text.append(f" · best val {best_val(rec)}")
        try:
            cfg = RunConfig.from_dict(rec.config)
            text.append(" · " + cfg.label(skip=("repeats",)), "dim")
        except ConfigError:  # settings of another version that no longer combine: skip them
            pass
        err = rec.error
        if err is not None and err.message and rec.status in (
                RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.DIVERGED):
            status = rec.status.value
            text = Text(no_wrap=True, overflow="ellipsis")
            text.append(f"#{state.index(rec.run_id)} {rec.variant}: ", "bold")
            text.append(status + (f" ({err.kind})" if err.kind != status else "") + ": ",
                        "bold red" if rec.status is RunStatus.FAILED else "bold yellow")
            text.append(err.line)
        if rec.save_error:
            text.append(f"  ⚠ {rec.save_error}", "bold yellow")
        return text
