"""Typed Textual messages the bridge thread and the widgets post to the screen."""

from __future__ import annotations

from textual.message import Message

from trainer.events import Event


class TrainerEvents(Message):
    """A batch of trainer events (empty: only the trainer's queue changed).

    One message per batch (not per event) keeps the UI's message queue short however fast the
    trainer reports: a tiny model at batch size 1 can produce thousands of events a second.
    """

    def __init__(self, events: list[Event]) -> None:
        super().__init__()
        self.events = events


class BridgeProblem(Message):
    """Talking to the trainer process raised; the bridge keeps trying, the user should know."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class LessonChosen(Message):
    """The highlighted lesson changed (key = preset key, or 'custom')."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class TogglesChanged(Message):
    """A toggle was edited (valid or not): summaries and the run guard must refresh."""


class RunSelected(Message):
    """The results table's cursor moved to a run: the charts highlight it."""

    def __init__(self, run_id: str | None) -> None:
        super().__init__()
        self.run_id = run_id


class ViewChanged(Message):
    """A view choice changed (charts mode, grouping, columns, sort, launches): the app
    remembers it for the next session."""
