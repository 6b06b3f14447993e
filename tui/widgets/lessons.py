"""The lesson list and the lesson text: what each preset teaches and how it will run."""

from __future__ import annotations

import contextlib
from typing import ClassVar

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from trainer.config import describe
from trainer.lessons.preset import CUSTOM, Preset
from trainer.text import reflow
from tui.messages import LessonChosen
from tui.state.runs import RunsView
from tui.state.toggles import ToggleState
from tui.widgets.legend import colour, hex_colour
from tui.widgets.verdict import VerdictCard


class LessonList(OptionList):
    """Title + one-line summary per lesson; moving the highlight selects the lesson.

    In a narrow panel the summaries would wrap to three or four lines each and push most
    lessons out of view, so there only the titles are listed (the summary heads the lesson
    text next to it anyway).
    """

    WIDE_ENOUGH = 34  # panel width from which summaries are shown

    def __init__(self, presets: dict[str, Preset], *, id: str | None = None) -> None:
        self.presets = presets
        self.with_summaries = False
        super().__init__(*self._make_options(False), id=id)
        self.border_title = "Lessons"

    def _make_options(self, summaries: bool) -> list[Option]:
        options = []
        for key, p in self.presets.items():
            prompt = Text()
            prompt.append(p.title, "bold" if summaries else "")
            if summaries and p.summary:
                prompt.append("\n" + p.summary, style="dim")
            options.append(Option(prompt, id=key))
        custom = Text()
        custom.append("Custom run", "bold" if summaries else "italic")
        if summaries:
            custom.append("\nYour own toggles, starting from the course defaults", style="dim")
        options.append(Option(custom, id=CUSTOM))
        return options

    def on_resize(self) -> None:
        wide = self.size.width >= self.WIDE_ENOUGH
        if wide != self.with_summaries:
            self.with_summaries = wide
            keep = self.highlighted
            with self.prevent(OptionList.OptionHighlighted):
                self.clear_options()
                self.add_options(self._make_options(wide))
                self.highlighted = keep

    def select_key(self, key: str) -> None:
        with contextlib.suppress(OptionDoesNotExist):  # unknown key: leave the highlight
            self.highlighted = self.get_option_index(key)

    @on(OptionList.OptionSelected)
    def _read(self, event: OptionList.OptionSelected) -> None:
        """Enter: move into the lesson text to scroll it (r still runs the lesson)."""
        event.stop()
        self.screen.query_one(LessonView).focus()

    @on(OptionList.OptionHighlighted)
    def _chosen(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id:
            self.post_message(LessonChosen(event.option.id))


class LessonView(VerticalScroll, can_focus=True):
    """The selected lesson: how it will run, its verdict so far, the explanation, the course's
    finding and the variants. Enter in the list focuses it (arrows scroll); Esc goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,left", "back", "Lessons", show=False,
                tooltip="Back to the lesson list"),
    ]

    def action_back(self) -> None:
        self.screen.query_one(LessonList).focus()

    def compose(self):
        yield Static(id="lesson-head")
        yield VerdictCard(compact=False, id="lesson-verdict")
        yield Static(id="lesson-text")

    def show(self, toggles: ToggleState, runs: RunsView | None = None) -> None:
        self.query_one("#lesson-head", Static).update(head_renderable(toggles))
        self.query_one("#lesson-text", Static).update(lesson_renderable(toggles))
        self.show_verdict(toggles, runs)

    def show_verdict(self, toggles: ToggleState, runs: RunsView | None) -> None:
        card = self.query_one("#lesson-verdict", VerdictCard)
        preset = toggles.preset
        session = runs.session if runs is not None else None
        group = session.latest_group(preset.key) if session is not None and preset else None
        card.display = preset is not None
        card.show(preset, session.group_runs(group) if session is not None and group else [])


def head_renderable(toggles: ToggleState) -> Group:
    """Title, summary and the run plan: what `r` will do right now."""
    p = toggles.preset
    head = Text()
    if p is None:
        head.append("Custom run\n", "bold")
        head.append("Train one configuration of your own. ", style="italic")
        head.append("Start from the course defaults (the Keras setup: Adam 0.001, batch 64, "
                    "30 epochs, Glorot init, no BN), change anything on the Toggles tab (2), "
                    "then press t or r.")
    else:
        head.append(p.title + "\n", "bold")
        if p.summary:
            head.append(p.summary, style="italic")
    return Group(head, Text(""), plan_text(toggles))


def lesson_renderable(toggles: ToggleState) -> Group:
    """The lesson itself: explanation, what the course found, variants, what to try next."""
    p = toggles.preset
    if p is None:
        return Group()
    parts: list[Text] = [Text(reflow(p.lesson))]
    found = Text()
    found.append("What the course found\n", "bold")
    found.append(reflow(p.expect))
    parts.append(found)
    runs = Text()
    runs.append("Variants", "bold")
    for i, v in enumerate(p.variants):
        runs.append("\n  ")
        runs.append("██ ", Style(color=hex_colour(colour(i))))
        runs.append(v.label, "bold")
        what = " · ".join(describe(k, val) for k, val in v.changes.items())
        if what and what != v.label:
            runs.append(f"  {what}", "dim")
        if i == 0:
            runs.append("  (baseline)", "dim")
    parts.append(runs)
    if p.try_next:
        nxt = Text()
        nxt.append("Try next", "bold")
        for s in p.try_next:
            nxt.append(f"\n  • {s}")
        parts.append(nxt)
    body: list[Text] = []
    for part in parts:
        body.append(Text(""))
        body.append(part)
    return Group(*body)


def plan_text(toggles: ToggleState) -> Text:
    """How `r` will run this lesson: variants × repeats, epochs, data, and the user's changes."""
    p = toggles.preset
    cfg = toggles.config()
    n_var = len(p.variants) if p else 1
    n = n_var * cfg.repeats
    text = Text()
    text.append("Press r", "bold")
    text.append(f" to run {n_var} variant{'s' * (n_var != 1)} × {cfg.repeats} "
                f"repeat{'s' * (cfg.repeats != 1)} = {n} run{'s' * (n != 1)}")
    text.append(f" · {cfg.epochs} epochs · {cfg.dataset}")
    if cfg.train_subset:
        text.append(f" (first {cfg.train_subset:,} images)")
    changes = {k: v for k, v in toggles.changes().items() if k != "repeats"}
    options = {k: v for k, v in changes.items() if toggles.source(k) == "option"}
    edits = {k: v for k, v in changes.items() if toggles.source(k) == "edited"}
    if options:
        text.append("\nStart options: ", "dim")
        text.append(" · ".join(describe(k, v) for k, v in options.items()))
    if edits:
        text.append("\nYour edits: ", "bold")
        text.append(" · ".join(describe(k, v) for k, v in edits.items()))
    if changes:
        shadowed = [k for k in changes if k in toggles.varied_keys()]
        if shadowed:
            text.append(f"\n  ({', '.join(shadowed)} is set by each variant, so it only "
                        "applies to t runs)", "dim")
    blocked = toggles.blocking_error()
    if blocked is not None:
        text.append(f"\n✗ {blocked[1]}", "bold red")
    return text
