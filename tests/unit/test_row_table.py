"""RowTable, the runs table's renderer: the cursor follows its row, widths follow the cells,
header clicks name the column, and only the rows on screen are drawn."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import App, ComposeResult

from tui.widgets.grid import GridColumn, RowTable


class TableApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.selected: list[str] = []

    def compose(self) -> ComposeResult:
        yield RowTable(id="t")

    def on_row_table_header_selected(self, event: RowTable.HeaderSelected) -> None:
        self.headers.append(event.key)

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        self.selected.append(event.key)


def aio(fn):
    def run(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))
    run.__name__ = fn.__name__
    return run


@aio
async def test_cursor_follows_its_row_and_widths_follow_the_cells():
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(RowTable)
        table.set_columns([GridColumn("n", Text("#"), right=True),
                           GridColumn("name", Text("Name"))])
        table.set_rows([(f"r{i}", [str(i), f"run {i}"]) for i in range(5000)])
        table.focus()
        await pilot.press("down", "down")
        assert table.cursor_key() == "r2"
        table.reorder([f"r{i}" for i in reversed(range(5000))])
        assert table.cursor_key() == "r2" and table.cursor_row == 4997
        assert table.scroll_y > 4900  # the cursor's row was scrolled into view
        await pilot.press("enter")
        assert app.selected == ["r2"]
        table.update_row("r2", ["2", "a much longer name than before"])
        assert str(table.cell("r2", "name")) == "a much longer name than before"
        assert table.virtual_size.width >= len("a much longer name than before") + 2
        await pilot.pause()
        line = table.render_line(table.cursor_row - int(table.scroll_y) + 1)
        assert "a much longer name than before" in line.text
        await pilot.click(RowTable, offset=(8, 0))  # the header line, over "Name"
        assert app.headers == ["name"]


@aio
async def test_only_visible_rows_are_rendered():
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(RowTable)
        table.set_columns([GridColumn("n", Text("#"))])
        table.set_rows([(f"r{i}", [str(i)]) for i in range(20000)])
        await pilot.pause()
        assert table.row_count == 20000
        assert len(table._strips) <= 12  # one cached line per row on screen, not 20,000
