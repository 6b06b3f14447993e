"""The results table: one row per run, filled in live, sortable from the keyboard."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

from trainer import formats as fmt
from trainer.config import ConfigError, RunConfig
from trainer.store.record import RunStatus
from tui.messages import RunSelected
from tui.state.columns import (
    SORT_CYCLE,
    Column,
    TableRow,
    best_val,
    columns_for,
    plain_row,
    sorted_ids,
    status_text,
    table_rows,
)
from tui.state.runs import RunsView


class ResultsTable(DataTable[str | Text]):
    """Renders the session's records; the screen calls `sync` from its refresh timer.

    Views: one row per run, or (g) one row per variant with mean ± std over its repeats —
    Enter expands a variant to its runs — and (c) only the config columns that differ.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("g", "toggle_grouped", "Group", show=False,
                tooltip="One row per variant (mean ± std over its repeats); Enter expands it"),
        Binding("c", "toggle_diff", "Diff columns", show=False,
                tooltip="Show only the config columns whose values differ"),
        Binding("escape", "unhighlight", "Unhighlight", show=False,
                tooltip="Stop highlighting the selected run in the charts"),
    ]

    grouped: reactive[bool] = reactive(False, init=False)
    """One row per variant (mean ± std over its repeats) instead of one per run."""
    diff_only: reactive[bool] = reactive(False, init=False)
    """Only the config columns whose values differ."""

    def __init__(self, state: RunsView, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.state = state
        self.sort_column = "n"
        self.sort_reverse = False
        self.expanded: set[str] = set()
        self.rows_shown: list[TableRow] = []
        self._columns: list[Column] = []

    def on_mount(self) -> None:
        self.sync(full=True)

    def _label(self, col: Column) -> Text:
        label = col.label
        if col.key == self.sort_column and col.key != "n":
            label += " ▼" if self.sort_reverse else " ▲"
        return Text(label, justify="right" if col.right else "left")

    # -- drawing ----------------------------------------------------------------------------
    def sync(self, full: bool = False) -> None:
        """Bring rows up to date: cells in place when the rows are the same, else rebuild.

        One row per run (the usual view) is updated incrementally: only the runs that changed
        are recomputed, and a new order moves rows instead of rebuilding the table, so a
        store of thousands of runs re-sorts in a blink and a live run costs one row a tick.
        """
        state = self.state
        columns = columns_for(state, self.diff_only)
        same_columns = [c.key for c in columns] == [c.key for c in self._columns]
        if not (full or self.grouped) and same_columns and self._sync_runs(columns):
            return
        rows = table_rows(state, columns, self.sort_column, self.sort_reverse, self.grouped,
                          self.expanded)
        if full or not same_columns or [r.key for r in rows] != [r.key for r in self.rows_shown]:
            self._rebuild(columns, rows, new_columns=full or not same_columns)
            return
        dirty = state.dirty_rows
        old = {r.key: r for r in self.rows_shown}
        for row in rows:
            if row.key in dirty or any(r in dirty for r in row.runs):
                self._update_cells(row.key, columns, row.cells, old[row.key].cells)
        self.rows_shown = rows

    def _update_cells(self, key: str, columns: list[Column], cells: list[str | Text],
                      before: list[str | Text]) -> None:
        """Redraw only the cells of one row whose text or style changed."""
        for col, value, was in zip(columns, cells, before, strict=True):
            if _plain(value) != _plain(was) or str(value) != str(was):
                self.update_cell(key, col.key, value, update_width=True)

    def _sync_runs(self, columns: list[Column]) -> bool:
        """The one-row-per-run view, in place; False when the set of runs changed."""
        state = self.state
        order = sorted_ids(state, self.sort_column, self.sort_reverse)
        shown = {r.key: r for r in self.rows_shown}
        if len(order) != len(shown) or any(r not in shown for r in order):
            return False
        for run_id in state.dirty_rows & shown.keys():
            row, fresh = shown[run_id], plain_row(state, columns, run_id)
            self._update_cells(run_id, columns, fresh.cells, row.cells)
            row.cells = fresh.cells
        if order != [r.key for r in self.rows_shown]:
            position = {run_id: i for i, run_id in enumerate(order)}
            keep = self.cursor_key()
            with self.prevent(DataTable.RowHighlighted):
                # Every column set ends with the run id: DataTable reorders by it, no re-measure.
                self.sort("run_id", key=lambda cell: position[_plain(cell)])
                if keep in position:
                    self.move_cursor(row=position[keep], animate=False)
            self.rows_shown = [shown[r] for r in order]
        return True

    def _rebuild(self, columns: list[Column], rows: list[TableRow], new_columns: bool) -> None:
        keep = self.cursor_key()
        with self.prevent(DataTable.RowHighlighted):
            self.clear(columns=new_columns)
            if new_columns:
                self._columns = columns
                for col in columns:
                    self.add_column(self._label(col), key=col.key)
            for row in rows:
                self.add_row(*row.cells, key=row.key)
            self.rows_shown = rows
            keys = [r.key for r in rows]
            if keep in keys:
                self.move_cursor(row=keys.index(keep), animate=False)

    def cursor_key(self) -> str | None:
        """Row key under the cursor (a run id or a variant row's key)."""
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # cursor outside the rows while they are rebuilt
            return None

    def cursor_run(self) -> str | None:
        """Run id under the cursor (None on a variant row or an empty table)."""
        key = self.cursor_key()
        return key if key in self.state.session.records else None

    def cursor_variant(self) -> TableRow | None:
        key = self.cursor_key()
        return next((r for r in self.rows_shown if r.key == key and r.run_id is None), None)

    def select_run(self, run_id: str) -> None:
        keys = [r.key for r in self.rows_shown]
        if run_id in keys:
            self.move_cursor(row=keys.index(run_id))

    # -- views and sorting -------------------------------------------------------------------
    def _relabel(self) -> None:
        for col in self._columns:
            self.columns[ColumnKey(col.key)].label = self._label(col)

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        col = next((c for c in self._columns if c.key == key), None)
        if col is None:
            return
        self.sort_column = key
        self.sort_reverse = col.descending_first if reverse is None else reverse
        self._relabel()
        self.sync()
        self.refresh()
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
        self.notify("One row per variant (mean ± std) · Enter expands" if grouped
                    else "One row per run", timeout=2)

    def action_toggle_diff(self) -> None:
        self.diff_only = not self.diff_only

    def watch_diff_only(self, diff_only: bool) -> None:
        if self.sort_column not in [c.key for c in columns_for(self.state, diff_only)]:
            self.sort_column, self.sort_reverse = "n", False
        self.sync(full=True)
        self.notify("Only the settings that differ" if diff_only else "All columns",
                    timeout=2)

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
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

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        variant = self.cursor_variant()
        if variant is not None:  # Enter on a variant row: show or hide its runs
            self.expanded.symmetric_difference_update({variant.key})
            self.sync()
            return
        self._spot()

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._spotlight and self.has_focus:
            self.post_message(RunSelected(event.row_key.value))

    def on_blur(self) -> None:
        self.action_unhighlight()

    def action_unhighlight(self) -> None:
        if self._spotlight:
            self._spotlight = False
            self.post_message(RunSelected(None))


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


class RunDetail(Static):
    """One line about the run under the table cursor: the full failure reason, the config."""

    def show(self, state: RunsView, run_id: str | None) -> None:
        rec = state.session.records.get(run_id) if run_id else None
        if rec is None:
            self.update(Text("↑/↓ highlights a run in the charts · s sorts · g one row per "
                             "variant (Enter expands) · c differing columns only", style="dim"))
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"#{state.index(rec.run_id)} {rec.variant} rep {rec.repeat + 1} ", "bold")
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
        self.update(text)
