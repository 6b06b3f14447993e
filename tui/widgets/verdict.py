"""The verdict card: what the runs of a lesson showed, next to what the course found.

It renders `trainer.lessons.verdict.make_verdict` (which works at any stage: before, during
and after the runs), so it can be refreshed live as epochs and runs finish.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from trainer.lessons.preset import Preset
from trainer.lessons.verdict import Verdict, make_verdict
from trainer.store.record import RunRecord

STATUS_STYLE = {
    "agree": "bold green", "disagree": "bold red", "mixed": "bold yellow",
    "inconclusive": "bold yellow", "running": "bold", "pending": "dim",
}
STATUS_WORD = {
    "agree": "✓ matches the course", "disagree": "✗ differs from the course",
    "mixed": "◐ mixed", "inconclusive": "? inconclusive", "running": "▶ in progress",
    "pending": "◌ waiting",
}
# One seed per variant: the same outcome, worded as the body words it (no uncertainty).
TENTATIVE_WORD = {
    "agree": "✓? matches at face value (one seed)",
    "disagree": "✗? differs at face value (one seed)",
    "mixed": "◐? mixed at face value (one seed)",
}


def status_word(verdict: Verdict) -> str:
    if verdict.tentative and verdict.status in TENTATIVE_WORD:
        return TENTATIVE_WORD[verdict.status]
    return STATUS_WORD.get(verdict.status, verdict.status)


def verdict_text(verdict: Verdict, compact: bool = False) -> Text:
    text = Text()
    style = STATUS_STYLE.get(verdict.status, "bold")
    text.append(status_word(verdict), style)
    text.append("\n")
    text.append(verdict.headline, "bold")
    sentences = verdict.sentences[:2] if compact else verdict.sentences
    for sentence in sentences:
        text.append("\n" + sentence)
    if verdict.suggestions and not compact:
        text.append("\n\nTry next", "bold")
        for s in verdict.suggestions:
            text.append(f"\n  • {s}")
    return text


def verdict_line(verdict: Verdict | None, note: Text) -> Text:
    """The verdict in one line (status word and headline), for a panel too narrow for the
    card: `note` says what is missing and how to see it."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("Verdict ", "bold")
    if verdict is None:
        text.append_text(note)
        return text
    text.append(status_word(verdict), STATUS_STYLE.get(verdict.status, "bold"))
    text.append(" · ")
    text.append_text(note)
    text.append(" · ")
    text.append(verdict.headline)
    return text


class VerdictCard(Static):
    """Verdict of one lesson launch; `show(None, …)` for custom runs or no runs.

    `compact` keeps two sentences and no suggestions (beside the table); it can change while
    shown (the Runs tab swaps the table for the full card).
    """

    compact: reactive[bool] = reactive(False, init=False)

    def __init__(self, *, compact: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_reactive(VerdictCard.compact, compact)
        self.border_title = "Verdict"
        self.verdict: Verdict | None = None
        self.empty_text = Text("")

    def watch_compact(self) -> None:
        if self.verdict is not None:
            self.update(verdict_text(self.verdict, self.compact))

    def show(self, preset: Preset | None, records: Iterable[RunRecord]) -> None:
        records = list(records)
        if preset is None:
            self._empty("Verdicts compare the variants of a lesson; a custom run has none. "
                        "Pick a lesson and press r.")
            return
        if not records:
            self._empty(f"No runs of “{preset.title}” yet — press r to run it; the verdict "
                        "fills in as the runs finish.")
            return
        try:
            self.verdict = make_verdict(preset, records)
        except Exception as err:  # never let a statistics corner case take the app down
            self._empty(f"(no verdict: {err})")
            return
        self._show(verdict_text(self.verdict, self.compact))

    def _show(self, text: Text) -> None:
        if self.content != text:  # (a relayout of the screen for nothing otherwise)
            self.update(text)

    def _empty(self, why: str) -> None:
        self.verdict = None
        self.empty_text = Text(why, style="dim")
        self._show(self.empty_text)


class VerdictPanel(VerticalScroll):
    """The Runs tab's verdict card: beside the table when there is room, or (v) in its
    place, focused so the arrows scroll it and esc goes back to the table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "screen.verdict_view(False)", "Table", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        # Focusable only in the table's place: beside it, it would be one more tab stop.
        super().__init__(id=id, can_focus=False)
