"""The toggles panel: every RunConfig key as a proper control.

Switches for booleans, selects for choices, validated inputs for numbers and widths. Each row
says where its value comes from (lesson, start option, your edit) and, for an invalid value,
why — the run keys refuse to start until it is fixed. The panel owns no state: it edits the
screen's `ToggleState` and asks it what to show.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Select, Static, Switch

from trainer.config import SCHEMA, ConfigError, describe, format_value, parse_value
from tui.messages import TogglesChanged
from tui.state.toggles import GROUPS, ToggleState

CHOICE_KINDS = ("choice", "int_choice")


def control_id(key: str) -> str:
    return f"toggle-{key}"


class ConfigValidator(Validator):
    """Marks the input itself (Input's -invalid class) with the same rule the state uses."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_value(self.key, value)
        except ConfigError as err:
            return self.failure(err.message)
        return self.success()


class OnOff(Switch):
    """A one-line switch that also says on/off in words (readable in any colour mode)."""

    def render(self) -> Text:
        style = self.get_component_rich_style("switch--slider")
        if self.value:
            return Text.assemble(("━━", style), ("●", style), " on")
        return Text.assemble(("●", style), ("━━", style), " off")

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return 7


class ToggleSelect(Select, inherit_bindings=False):
    """A Select that opens on Enter or space only: ↑ ↓ move between the toggles (the form's
    keys), as on every other control, instead of opening the list under the cursor."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,space", "show_overlay", "Show menu", show=False),
    ]

    # The form is mounted after the first frame; quitting at that moment closes the Select's
    # children before they compose, and Textual's Select then fails to find its overlay and
    # label (a traceback at exit). Nothing is on screen any more by then. The guard sits on
    # the two steps of Select's own mount handler, not on an `_on_mount` of ours: Textual
    # calls every class's `_on_mount` along the MRO, so an override ran Select's twice, the
    # second time unguarded.
    def _setup_options_renderables(self) -> None:
        with contextlib.suppress(NoMatches):
            super()._setup_options_renderables()

    def _init_selected_option(self, hint: Any = Select.NULL) -> None:
        with contextlib.suppress(NoMatches):
            super()._init_selected_option(hint)


def make_control(key: str, value: Any, blink: bool = True) -> Switch | Select | Input:
    """The control for `key`, created with its current value (so mounting it is no edit)."""
    f = SCHEMA[key]
    cid = control_id(key)
    if f.kind == "bool":
        return OnOff(bool(value), id=cid, animate=False)
    if f.kind in CHOICE_KINDS:
        return ToggleSelect([(str(c), c) for c in f.choices], value=value, allow_blank=False,
                            compact=True, id=cid)
    placeholder = "e.g. 32,64,128" if f.kind == "widths" else f.kind
    control = Input(format_value(key, value), placeholder=placeholder, compact=True, id=cid,
                    select_on_focus=True, validators=[ConfigValidator(key)])
    control.cursor_blink = blink
    return control


class ToggleRow(Vertical):
    """key · control · note (source or base value); below them, for an invalid value, the
    whole reason on a line of its own (the note column is too narrow for it at 80 columns)."""

    def __init__(self, key: str, value: Any, blink: bool = True) -> None:
        super().__init__(classes="toggle-row", id=f"row-{key}")
        self.key = key
        self.value = value
        self.blink = blink

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toggle-line"):
            yield Label(self.key, classes="toggle-key")
            yield make_control(self.key, self.value, self.blink)
            yield Static(classes="toggle-note")
        yield Static(classes="toggle-error")

    def on_mount(self) -> None:
        self.tooltip = SCHEMA[self.key].help


class ToggleForm(VerticalScroll):
    """All toggles in sections; edits go straight into the ToggleState."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "reset", "Reset", tooltip="Reset the toggles to the lesson's values"),
        Binding("escape", "leave", "Leave field", show=False),
        Binding("down", "move(1)", "Next field", show=False,
                tooltip="Next toggle (enter or space opens a select)"),
        Binding("up", "move(-1)", "Previous field", show=False, tooltip="Previous toggle"),
    ]

    def __init__(self, toggles: ToggleState, *, blink: bool = True,
                 id: str | None = None) -> None:
        super().__init__(id=id, can_focus=False)
        self.toggles = toggles
        self.blink = blink

    def compose(self) -> ComposeResult:
        yield Static(id="toggle-summary")
        values = self.toggles.config().to_dict()
        for title, keys in GROUPS:
            yield Label(title, classes="toggle-group")
            for key in keys:
                yield ToggleRow(key, values[key], self.blink)

    def on_mount(self) -> None:
        # Mounted after the first frame: an app that quits meanwhile removes the controls
        # before this runs. Nothing is on screen to load any more.
        with contextlib.suppress(NoMatches):
            self.load()

    # -- state → controls --------------------------------------------------------------------
    def load(self) -> None:
        """Show the current lesson's values (invalid texts included) without echo events."""
        values = self.toggles.config().to_dict()
        with self.prevent(Input.Changed, Switch.Changed, Select.Changed):
            for key in SCHEMA:
                control = self.query_one(f"#{control_id(key)}")
                if key in self.toggles.errors and isinstance(control, Input):
                    text = self.toggles.errors[key][0]
                else:
                    text = format_value(key, values[key])
                if isinstance(control, Switch):
                    control.value = bool(values[key])
                elif isinstance(control, Select):
                    control.value = values[key]
                elif isinstance(control, Input):
                    control.value = text
                    control.validate(text)
        self.refresh_notes()

    def refresh_notes(self) -> None:
        t = self.toggles
        lesson = t.lesson_base().to_dict()
        varied = set(t.varied_keys())
        preset = t.preset
        for key in SCHEMA:
            row = self.query_one(f"#row-{key}", ToggleRow)
            note = row.query_one(".toggle-note", Static)
            source = t.source(key)
            error = t.errors.get(key)
            row.set_class(error is not None, "-invalid")
            row.set_class(source in ("edited", "option"), "-changed")
            reason = Text("✗ " + error[1], "bold red") if error else Text("")
            row.query_one(".toggle-error", Static).update(reason)
            # One line per row (the full help is the row's tooltip); the reason has its own.
            text = Text()
            if error:
                text.append("✗ invalid (why: below)", "bold red")
            elif source == "edited":
                text.append("● edited", "bold")
                text.append(f" · lesson: {format_value(key, lesson[key])}", "dim")
            elif source == "option":
                text.append("● start option", "bold")
                text.append(f" · lesson: {format_value(key, lesson[key])}", "dim")
            elif key in varied and preset is not None:
                per = " · ".join(f"{v.label}: {format_value(key, v.changes[key])}"
                                 for v in preset.variants if key in v.changes)
                text.append("varies by variant — ", "italic")
                text.append(per, "dim")
            elif source == "lesson":
                text.append("set by the lesson", "italic")
                text.append(f" · {SCHEMA[key].help}", "dim")
            else:
                text.append(SCHEMA[key].help, "dim")
            note.update(text)
        self.query_one("#toggle-summary", Static).update(self.summary())

    def summary(self) -> Text:
        t = self.toggles
        text = Text()
        text.append(t.title, "bold")
        changes = t.changes()
        options = {k: v for k, v in changes.items() if t.source(k) == "option"}
        edits = {k: v for k, v in changes.items() if t.source(k) == "edited"}
        if not changes:
            text.append(" · as the lesson sets it", "dim")
        if options:
            text.append("\nstart options: ", "dim")
            text.append(" · ".join(describe(k, v) for k, v in options.items()))
        if edits:
            text.append("\nyour edits: ", "dim")
            text.append(" · ".join(describe(k, v) for k, v in edits.items()), "bold")
        if t.errors:
            n = len(t.errors)
            text.append(f"\n✗ {n} invalid value{'s' * (n != 1)}: runs can't start until "
                        "fixed", "bold red")
        text.append("\nctrl+r resets · esc leaves a field · t runs these toggles, r the lesson",
                    "dim")
        return text

    # -- controls → state --------------------------------------------------------------------
    @staticmethod
    def _key(widget_id: str | None) -> str | None:
        if widget_id and widget_id.startswith("toggle-"):
            return widget_id[len("toggle-"):]
        return None

    @on(Switch.Changed)
    def _switch(self, event: Switch.Changed) -> None:
        event.stop()
        self._apply(self._key(event.switch.id), event.value)

    @on(Select.Changed)
    def _select(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.BLANK:
            self._apply(self._key(event.select.id), event.value)

    @on(Input.Changed)
    def _input(self, event: Input.Changed) -> None:
        key = self._key(event.input.id)
        if key is None:
            return
        event.stop()
        bad = self.toggles.set_text(key, event.value) is not None
        self.refresh_notes()
        if bad:
            # The reason is a line below the field: bring the whole row into view.
            row = self.query_one(f"#row-{key}", ToggleRow)
            self.call_after_refresh(self.scroll_to_widget, row, animate=False)
        self.post_message(TogglesChanged())

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._key(event.input.id) not in self.toggles.errors:
            self.screen.focus_next()

    def _apply(self, key: str | None, value: Any) -> None:
        if key is None or (key not in self.toggles.errors and self.toggles.value(key) == value):
            return  # an echo of a value the state already has (e.g. set on mount)
        self.toggles.set_value(key, value)
        self.refresh_notes()
        self.post_message(TogglesChanged())

    # -- actions -----------------------------------------------------------------------------
    def action_reset(self) -> None:
        self.toggles.reset()
        self.load()
        self.post_message(TogglesChanged())
        self.notify("Toggles reset to the lesson's values", timeout=2)

    def action_leave(self) -> None:
        """Esc: stop typing so the single-key bindings (r, t, q …) work again."""
        self.screen.set_focus(None)

    def action_move(self, step: int) -> None:
        """↑ ↓: the previous / next toggle, whatever kind of control has the focus."""
        controls = [self.query_one(f"#{control_id(k)}") for _, keys in GROUPS for k in keys]
        focused = self.screen.focused
        at = controls.index(focused) if focused in controls else -1
        target = controls[max(0, min(len(controls) - 1, at + step))]
        # At once, not on the next idle as `focus()` would: a key held down (or keys sent in
        # one burst over SSH) must move once per press.
        self.screen.set_focus(target)
        row = self.query_one(f"#row-{self._key(target.id)}", ToggleRow)
        # The first row also brings the summary back into view.
        self.scroll_to_widget(row if at + step > 0 else self.query_one("#toggle-summary"),
                              animate=False)

    def focus_key(self, key: str) -> None:
        control = self.query_one(f"#{control_id(key)}")
        control.focus()
        self.scroll_to_widget(self.query_one(f"#row-{key}", ToggleRow), animate=False)

    def first_control(self):
        return self.query_one(f"#{control_id(GROUPS[0][1][0])}")
