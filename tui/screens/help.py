"""The help screen: every key, grouped by where it works, generated from the bindings."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

KEY_NAMES = {
    "question_mark": "?", "escape": "esc", "enter": "enter", "space": "space", "up": "↑",
    "down": "↓", "left": "←", "right": "→", "pageup": "pgup", "pagedown": "pgdn",
    "home": "home", "end": "end", "tab": "tab", "shift+tab": "shift+tab",
    "left_square_bracket": "[", "right_square_bracket": "]", "slash": "/", "delete": "del",
}

# Keys that belong to Textual's own widgets (not declared by us) but a user needs to know.
NAVIGATION: list[tuple[str, str]] = [
    ("tab / shift+tab", "move between panels and fields"),
    ("↑ ↓ / pgup pgdn", "move in lists and the table; in the toggles, to the previous / next "
     "field"),
    ("enter / space", "open a select, flip a switch"),
    ("160+ columns", "the lessons or toggles sit beside the runs (no Runs tab: 3 moves into "
     "the table)"),
    ("ctrl+p", "command palette: every action, lessons by name, themes"),
]


def key_text(key: str) -> str:
    """'question_mark' → '?', 'X' → 'X (shift+x)', 'n,escape' → 'n / esc'."""
    parts = []
    for k in key.split(","):
        k = k.strip()
        name = KEY_NAMES.get(k, k)
        if len(k) == 1 and k.isupper():
            name = f"{k} (shift+{k.lower()})"
        parts.append(name)
    return " / ".join(parts)


def binding_rows(items: list[BindingType]) -> list[tuple[str, str]]:
    """(keys, what they do) per action of a class: keys bound to one action share a row."""
    rows: dict[str, tuple[list[str], str]] = {}
    for b in items:
        if not isinstance(b, Binding):
            b = Binding(*b)  # tuples (key, action, description)
        if not b.description:
            continue
        key = key_text(b.key)
        # A key that flips a view both ways ("v": verdict / table) is bound twice, with a
        # parameter each, but it is one thing to learn: one row.
        base = b.action.split("(")[0]
        row = next((a for a, (ks, _) in rows.items() if a.split("(")[0] == base and key in ks),
                   b.action)
        keys = rows.setdefault(row, ([], b.tooltip or b.description))[0]
        if key not in keys:
            keys.append(key)
    return [(" / ".join(keys), what) for keys, what in rows.values()]


Section = tuple[str, list[tuple[str, str]]]


def help_renderable(sections: list[Section]) -> Group:
    parts: list[RenderableType] = []
    for title, rows in sections:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", min_width=16, no_wrap=True)
        table.add_column()
        for key, what in rows:
            table.add_row(key, what)
        parts.append(Text(title, style="bold underline"))
        parts.append(table)
        parts.append(Text(""))
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    """All keys; any of esc, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "close", "Close", show=False),
    ]

    def __init__(self, sections: list[Section]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog wide"):
            yield Label("cnn-tui · keys", classes="dialog-title")
            yield Static(Text(
                "Pick a lesson, press r: every variant × repeat is queued on the trainer "
                "process. Curves and the table fill in live; runs are saved as they go, so "
                "quitting or a dropped connection loses nothing finished.\n", style="dim"))
            yield Static(help_renderable(self.sections), id="help-keys")
            yield Static(Text("esc, q or ? closes this screen", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
