"""Small modal dialogs: export CSV, confirm, several choices (quit, partly done lessons),
dataset missing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from trainer.store.csvfile import ExportError


class ExportScreen(ModalScreen[Path | None]):
    """Ask where to write the CSV; Enter accepts the default. Errors keep the dialog open."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: Path, count: int, write: Callable[[Path], Path],
                 blink: bool = True) -> None:
        super().__init__()
        self.default = default
        self.count = count
        self.write = write  # raises ExportError; returns the path written
        self.blink = blink

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Label(f"Export {self.count} run{'s' * (self.count != 1)} to CSV",
                        classes="dialog-title")
            path = Input(str(self.default), id="export-path", select_on_focus=False)
            path.cursor_blink = self.blink
            yield path
            yield Static(Text("Enter writes the file · Esc cancels · same columns as "
                              "'cnn-tui export'", style="dim"), id="export-hint")
            error = Static(id="export-error")
            error.display = False
            yield error

    def on_mount(self) -> None:
        inp = self.query_one(Input)
        inp.focus()
        inp.cursor_position = len(inp.value)

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self._error("Type a file name (or Esc to cancel)")
            return
        try:
            written = self.write(Path(text).expanduser())
        except ExportError as err:
            self._error(err.message)
            return
        self.dismiss(written)

    def _error(self, message: str) -> None:
        error = self.query_one("#export-error", Static)
        error.update(Text("✗ " + message, style="bold red"))
        error.display = True
        self.query_one(Input).add_class("-invalid")

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceScreen(ModalScreen[bool]):
    """A two-button question: the primary answer (True) and the safe one (False).

    Subclasses give the buttons and the body; `y`/`n` and Esc answer from the keyboard.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(False)", "No", show=False),
    ]
    dialog_classes = "dialog"
    yes_variant: Literal["primary", "error"] = "primary"

    def __init__(self, title: str, yes: str, no: str) -> None:
        super().__init__()
        self.title_text = title
        self.yes = yes
        self.no = no

    def body(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        with Vertical(classes=self.dialog_classes):
            yield Label(Text(self.title_text), classes="dialog-title")
            yield from self.body()
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, variant=self.yes_variant, id="yes")
                yield Button(self.no, id="no")

    def on_mount(self) -> None:
        # (NoMatches: the app quit while the dialog was being put up; nothing to focus.)
        with contextlib.suppress(NoMatches):
            self.query_one("#yes", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ConfirmScreen(ChoiceScreen):
    """Yes/no question; Enter/y confirms, Esc/n cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n,escape", "answer(False)", "No", show=False),
    ]
    yes_variant = "error"

    def __init__(self, title: str, body: str, yes: str = "Quit", no: str = "Cancel",
                 safe_focus: bool = False) -> None:
        """`safe_focus`: Enter means "no" (for questions whose yes loses something)."""
        super().__init__(title, yes, no)
        self.text = body
        self.safe_focus = safe_focus

    def on_mount(self) -> None:
        self.query_one("#no" if self.safe_focus else "#yes", Button).focus()

    def body(self) -> ComposeResult:
        yield Static(Text(self.text), classes="dialog-body")


class DataMissingScreen(ChoiceScreen):
    """CIFAR-10 is missing and could not be downloaded: the fix, and the synthetic offer.

    Nothing is swapped silently: the synthetic data is used only if the user picks it.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "answer(True)", "Use synthetic", show=False),
        Binding("escape", "answer(False)", "Close", show=False),
    ]
    dialog_classes = "dialog wide"

    def __init__(self, message: str) -> None:
        super().__init__("CIFAR-10 is not available", "Use synthetic data", "Close")
        self.message = message

    def body(self) -> ComposeResult:
        # The fix-it text is long; it scrolls so the buttons stay on an 80×24 screen.
        with VerticalScroll(classes="dialog-scroll"):
            yield Static(Text(self.message), classes="dialog-body")
            yield Static(Text("The built-in synthetic dataset works offline: 10 classes "
                              "of 32×32 colour images with shapes and textures. It is a "
                              "stand-in for trying the app, not CIFAR-10, so its numbers "
                              "will differ from the course's.", style="dim"),
                         classes="dialog-body")


class ChoicesScreen(ModalScreen[str | None]):
    """A question with several answers, each a button with its own key; Esc answers None.

    The first choice is the default (focused, Enter). Used where two buttons are not enough:
    quitting with runs going (keep them training / stop them / stay), and running a lesson
    that is partly done (the missing runs / all again / neither).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "choose('')", "Cancel", show=False),
    ]

    def __init__(self, title: str, body: str, choices: list[tuple[str, str, str]]) -> None:
        """`choices`: (answer, button label, key) in order, the default first."""
        super().__init__()
        self.title_text = title
        self.text = body
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(Text(self.title_text), classes="dialog-title")
            yield Static(Text(self.text), classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                for i, (answer, label, key) in enumerate(self.choices):
                    yield Button(f"{label} ({key})", id=f"choice-{answer}",
                                 variant="primary" if i == 0 else "default")

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    def on_key(self, event: events.Key) -> None:
        for answer, _, key in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(answer)
                return

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss((event.button.id or "").removeprefix("choice-") or None)

    def action_choose(self, answer: str) -> None:
        self.dismiss(answer or None)


class RunNoteScreen(ModalScreen[tuple[str, str] | None]):
    """The user's label and note for a run that has ended; Enter saves, Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, name: str, label: str, note: str, blink: bool = True) -> None:
        super().__init__()
        self.run_name, self.label, self.note, self.blink = name, label, note, blink

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(Text(f"Label and note · {self.run_name}"), classes="dialog-title")
            label = Input(self.label, placeholder="label (shown beside the run's name)",
                          id="run-label", max_length=80)
            note = Input(self.note, placeholder="note (shown in the run's details)",
                         id="run-note", max_length=2000)
            for inp in (label, note):
                inp.cursor_blink = self.blink
                yield inp
            yield Static(Text("Enter saves (into the run's file) · Esc cancels · empty "
                              "removes", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#run-label", Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "run-label":
            # At once, not on the next idle as focus() would: keys typed in one burst (over
            # SSH) must land in the note, not at the end of the label.
            self.set_focus(self.query_one("#run-note", Input))
            return
        self.dismiss((self.query_one("#run-label", Input).value,
                      self.query_one("#run-note", Input).value))

    def action_cancel(self) -> None:
        self.dismiss(None)


class SearchScreen(ModalScreen[str | None]):
    """Words the shown runs must contain; Enter filters (empty shows every run again)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str, blink: bool = True) -> None:
        super().__init__()
        self.current, self.blink = current, blink

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Filter the runs", classes="dialog-title")
            inp = Input(self.current, placeholder="e.g. BN on finished", id="search",
                        max_length=200, select_on_focus=False)
            inp.cursor_blink = self.blink
            yield inp
            yield Static(Text("Every word must appear in a run's name, label, note, lesson, "
                              "status or id · Enter filters · empty: no filter · Esc cancels",
                              style="dim"))

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ProblemsScreen(ModalScreen[None]):
    """Every file the app could not use, and why, by kind (run store, lesson files,
    preferences): a start with hundreds of bad files shows one notice, not hundreds, and
    this list keeps the whole of it. The texts are already made safe; shown as plain text."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", show=False),
    ]

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        """`problems`: (kind, what was wrong), in the order they were found."""
        super().__init__()
        self.problems = problems

    def compose(self) -> ComposeResult:
        n = len(self.problems)
        with VerticalScroll(id="problems", classes="dialog wide"):
            yield Label(f"{n:,} file{'s' * (n != 1)} skipped", classes="dialog-title")
            text = Text()
            for kind in dict.fromkeys(k for k, _ in self.problems):
                text.append(f"{kind}\n", style="bold underline")
                for k, what in self.problems:
                    if k == kind:
                        text.append(f"• {what}\n")
                text.append("\n")
            yield Static(text, id="problems-list")
            yield Static(Text("esc or q closes this list", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
