"""RowTable: a one-line-per-row table that draws only the rows on screen.

Textual's DataTable measures every cell of every row as rows are added, which at a few
thousand stored runs costs seconds per sort, view change or start-up. The runs table needs
less: fixed columns, one line per row and a row cursor. Here a column's width comes from the
plain text lengths (kept per row), a new order is a new list, and only visible lines are
rendered (and cached), so sorting or switching views costs about the same at 20,000 rows as
at 20.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, NamedTuple

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = str | Text
PLAIN, EVEN, CURSOR, HEADER = 0, 1, 2, 3  # the kinds of line, each with its own style


class GridColumn(NamedTuple):
    key: str
    label: Text
    right: bool = False


class _Row:
    __slots__ = ("cells", "key", "widths")

    def __init__(self, key: str, cells: Sequence[Cell]) -> None:
        self.key = key
        self.cells = list(cells)
        self.widths = [cell_len(c.plain if isinstance(c, Text) else c) for c in self.cells]


class _KeyMessage(Message):
    """A message about one row or column of a RowTable, named by its key."""

    def __init__(self, table: RowTable, key: str) -> None:
        super().__init__()
        self.table, self.key = table, key

    @property
    def control(self) -> RowTable:
        return self.table


class RowTable(ScrollView, can_focus=True):
    """Rows of cells under a fixed header line; a row cursor; header clicks select columns."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_top", "Top", show=False),
        Binding("end", "scroll_bottom", "Bottom", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
        Binding("enter", "select_cursor", "Select", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "row-table--header", "row-table--cursor", "row-table--even-row",
    }
    PADDING = 1  # blank cells either side of every column

    cursor_row: reactive[int] = reactive(0, always_update=True, init=False)

    class RowHighlighted(_KeyMessage):
        """The cursor moved onto a row."""

    class RowSelected(_KeyMessage):
        """Enter or a click on a row."""

    class HeaderSelected(_KeyMessage):
        """A click on a column's header (`key` is the column's)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._columns: list[GridColumn] = []
        self._rows: list[_Row] = []
        self._index: dict[str, int] = {}
        self._widths: list[int] = []
        self._body_widths: list[int] = []  # widest cell per column, labels aside
        self._strips: dict[tuple[str, int], Strip] = {}
        self._header_strip: Strip | None = None

    # -- contents ---------------------------------------------------------------------------
    def set_columns(self, columns: Sequence[GridColumn]) -> None:
        """New columns (the rows must follow with `set_rows`)."""
        self._columns = list(columns)
        self._rows, self._index = [], {}
        self._measure()

    def relabel(self, key: str, label: Text) -> None:
        self._columns = [c._replace(label=label) if c.key == key else c for c in self._columns]
        self._measure(rows=False)

    def set_rows(self, rows: Sequence[tuple[str, Sequence[Cell]]]) -> None:
        """Replace every row, keeping the cursor on the same key where it is still shown."""
        keep = self.cursor_key()
        self._rows = [_Row(key, cells) for key, cells in rows]
        self._index = {row.key: i for i, row in enumerate(self._rows)}
        self._measure()
        self._restore_cursor(keep)

    def update_row(self, key: str, cells: Sequence[Cell]) -> None:
        """New cells for one row; columns widen if needed (they narrow at the next set_rows)."""
        i = self._index.get(key)
        if i is None:
            return
        row = self._rows[i] = _Row(key, cells)
        for kind in (PLAIN, EVEN, CURSOR):
            self._strips.pop((key, kind), None)
        if any(w > have for w, have in zip(row.widths, self._body_widths, strict=False)):
            self._body_widths = [max(a, b) for a, b in
                                 zip(row.widths, self._body_widths, strict=False)]
            self._measure(rows=False)
        else:
            self.refresh()

    def reorder(self, keys: Sequence[str]) -> None:
        """Show the same rows in a new order (unknown keys are ignored)."""
        keep = self.cursor_key()
        rows = {row.key: row for row in self._rows}
        self._rows = [rows[k] for k in keys if k in rows]
        self._index = {row.key: i for i, row in enumerate(self._rows)}
        self._strips.clear()  # zebra stripes follow the position
        self._restore_cursor(keep)
        self.refresh()

    # -- queries ----------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._rows)

    def row_keys(self) -> list[str]:
        return [row.key for row in self._rows]

    def column_keys(self) -> list[str]:
        return [c.key for c in self._columns]

    def cell(self, row_key: str, column_key: str) -> Cell:
        """The cell shown for a row and column (KeyError when either is not shown)."""
        row = self._rows[self._index[row_key]]
        return row.cells[self.column_keys().index(column_key)]

    def cursor_key(self) -> str | None:
        if not self._rows:
            return None
        return self._rows[min(self.cursor_row, len(self._rows) - 1)].key

    def move_cursor(self, row: int) -> None:
        self.cursor_row = row

    # -- cursor and keys --------------------------------------------------------------------
    def _restore_cursor(self, key: str | None) -> None:
        if key is not None and key in self._index:
            row = self._index[key]
            if row != self.cursor_row:
                self.set_reactive(RowTable.cursor_row, row)
                self._scroll_to_cursor()
        elif self.cursor_row >= len(self._rows):
            self.set_reactive(RowTable.cursor_row, max(len(self._rows) - 1, 0))

    def validate_cursor_row(self, row: int) -> int:
        return max(0, min(row, len(self._rows) - 1))

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()
        key = self.cursor_key()
        if key is not None:
            self.post_message(self.RowHighlighted(self, key))

    def _body_height(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _scroll_to_cursor(self) -> None:
        top, rows = int(self.scroll_y), self._body_height()
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + rows:
            self.scroll_to(y=self.cursor_row - rows + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self.cursor_row -= 1

    def action_cursor_down(self) -> None:
        self.cursor_row += 1

    def action_page_up(self) -> None:
        self.cursor_row -= self._body_height()

    def action_page_down(self) -> None:
        self.cursor_row += self._body_height()

    def action_scroll_top(self) -> None:
        self.cursor_row = 0

    def action_scroll_bottom(self) -> None:
        self.cursor_row = len(self._rows) - 1

    def action_select_cursor(self) -> None:
        key = self.cursor_key()
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = offset.x + int(self.scroll_x)
            for col, width in zip(self._columns, self._widths, strict=True):
                x -= width + 2 * self.PADDING
                if x < 0:
                    self.post_message(self.HeaderSelected(self, col.key))
                    return
            return
        row = int(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self._rows):
            self.cursor_row = row
            self.post_message(self.RowSelected(self, self._rows[row].key))

    # -- drawing ----------------------------------------------------------------------------
    def _measure(self, rows: bool = True) -> None:
        """Column widths: the widest plain text of the label and every row's cell."""
        if rows:
            body = [max(col) for col in zip(*(r.widths for r in self._rows), strict=False)]
            self._body_widths = body or [0] * len(self._columns)
        labels = [cell_len(c.label.plain) for c in self._columns]
        self._widths = [max(a, b) for a, b in zip(labels, self._body_widths, strict=False)]
        self._widths += labels[len(self._widths):]
        self._strips.clear()
        self._header_strip = None
        total = sum(self._widths) + 2 * self.PADDING * len(self._widths)
        self.virtual_size = Size(total, len(self._rows) + 1)
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._header_strip = None

    def _line(self, cells: Sequence[Cell], style: Style) -> Strip:
        pad = " " * self.PADDING
        line = Text(no_wrap=True, end="")
        for col, cell, width in zip(self._columns, cells, self._widths, strict=False):
            piece = cell.copy() if isinstance(cell, Text) else Text(cell)
            piece.align("right" if col.right else "left", width)
            line.append(pad)
            line.append_text(piece)
            line.append(pad)
        segments = list(line.render(self.app.console))
        return Strip(Segment.apply_style(segments, style), line.cell_len)

    _KIND_CLASS: ClassVar[dict[int, str]] = {
        HEADER: "row-table--header", EVEN: "row-table--even-row", CURSOR: "row-table--cursor"}

    def _style(self, kind: int) -> Style:
        """The line style of a header, plain, even (zebra) or cursor line."""
        name = self._KIND_CLASS.get(kind)
        return self.rich_style + self.get_component_rich_style(name) if name else \
            self.rich_style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x = int(self.scroll_x)
        if y == 0:
            if self._header_strip is None:
                self._header_strip = self._line([c.label for c in self._columns],
                                                self._style(HEADER))
            return self._header_strip.crop_extend(scroll_x, scroll_x + width,
                                                  self._style(HEADER))
        index = int(self.scroll_y) + y - 1
        if index >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        row = self._rows[index]
        kind = CURSOR if index == self.cursor_row else index % 2  # PLAIN or EVEN
        style = self._style(kind)
        strip = self._strips.get((row.key, kind))
        if strip is None:
            strip = self._strips[(row.key, kind)] = self._line(row.cells, style)
            if len(self._strips) > 4000:  # long scrolls through a big store: start afresh
                self._strips = {(row.key, kind): strip}
        # Past the last column the line keeps its background: plain lines the widget's.
        return strip.crop_extend(scroll_x, scroll_x + width,
                                 style if kind == CURSOR else self.rich_style)

    def on_focus(self) -> None:
        self._strips.clear()  # the cursor's style depends on focus
        self.refresh()

    def on_blur(self) -> None:
        self._strips.clear()
        self.refresh()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._rows) + 1
