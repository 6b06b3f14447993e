"""The verdict card: what the runs of a lesson showed, next to what the course found.

It renders `trainer.lessons.verdict.make_verdict` (which works at any stage: before, during
and after the runs), so it can be refreshed live as epochs and runs finish.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
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


def verdict_text(verdict: Verdict, compact: bool = False) -> Text:
    text = Text()
    style = STATUS_STYLE.get(verdict.status, "bold")
    text.append(STATUS_WORD.get(verdict.status, verdict.status), style)
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


class VerdictCard(Static):
    """Verdict of one lesson launch; `show(None, …)` for custom runs or no runs."""

    def __init__(self, *, compact: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.compact = compact
        self.border_title = "Verdict"
        self.verdict: Verdict | None = None

    def show(self, preset: Preset | None, records: Iterable[RunRecord]) -> None:
        records = list(records)
        if preset is None:
            self.verdict = None
            self.update(Text("Verdicts compare the variants of a lesson; a custom run has "
                             "none. Pick a lesson and press r.", style="dim"))
            return
        if not records:
            self.verdict = None
            self.update(Text(f"No runs of “{preset.title}” yet — press r to run it; the "
                             "verdict fills in as the runs finish.", style="dim"))
            return
        try:
            self.verdict = make_verdict(preset, records)
        except Exception as err:  # never let a statistics corner case take the app down
            self.verdict = None
            self.update(Text(f"(no verdict: {err})", style="dim"))
            return
        self.update(verdict_text(self.verdict, self.compact))
