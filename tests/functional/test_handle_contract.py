"""The trainer-handle contract, run against the test fake and the real TrainerProcess.

Both sides of the app (the TUI's RunSession and `cnn-tui run`) rely on exactly these
behaviours; the FakeTrainer that the fast tests use must keep them too, or those tests
would prove nothing about the real thing.
"""

from __future__ import annotations

import time

import pytest
from helpers import tiny
from helpers.fake_trainer import FakeTrainer, Script

from trainer.events import (
    TERMINAL,
    EpochEnd,
    Event,
    RunFinished,
    RunRequest,
    RunStarted,
    RunStopped,
    WorkerSettings,
)
from trainer.host.process import TrainerProcess
from trainer.host.session import RunSession, TrainerHandle
from trainer.store.record import RunStatus

SLOW = 180  # a loaded 2-core box can take long to spawn a worker and import torch


@pytest.fixture(params=["fake", "real"])
def handle(request, tmp_path):
    trainer: TrainerHandle
    if request.param == "fake":
        trainer = FakeTrainer(Script(steps=6, steps_per_poll=2))
    else:
        trainer = TrainerProcess(WorkerSettings(runs_dir=str(tmp_path / "runs"), device="cpu"))
    yield trainer
    trainer.shutdown()


def req(label: str, epochs: int = 2, **changes) -> RunRequest:
    return RunRequest(config=tiny(epochs=epochs, **changes).to_dict(), preset="contract",
                      variant=label)


def pump(trainer: TrainerHandle, until, timeout: float = SLOW) -> list[Event]:
    seen: list[Event] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in trainer.poll(0.1):
            seen.append(event)
            if until(event):
                return seen
    raise AssertionError(f"timed out; last events: {seen[-5:]}")


def test_runs_go_in_order_with_events_in_order(handle):
    a, b = req("a"), req("b")
    handle.submit([a, b])
    assert handle.busy and [r.run_id for r in handle.pending()] in (
        [a.run_id, b.run_id], [b.run_id])  # a may already have been handed over
    events = pump(handle, lambda e: isinstance(e, TERMINAL) and e.run_id == b.run_id)
    order = [(type(e).__name__, e.run_id) for e in events
             if isinstance(e, RunStarted | EpochEnd | RunFinished)]
    assert order == [("RunStarted", a.run_id), ("EpochEnd", a.run_id), ("EpochEnd", a.run_id),
                     ("RunFinished", a.run_id), ("RunStarted", b.run_id),
                     ("EpochEnd", b.run_id), ("EpochEnd", b.run_id), ("RunFinished", b.run_id)]
    assert not handle.busy and handle.current() is None and handle.pending() == []


def test_stop_keeps_finished_epochs_and_cancel_drops_only_the_waiting(handle):
    long, waiting, other = req("long", epochs=200), req("waiting"), req("other")
    handle.submit([long, waiting, other])
    pump(handle, lambda e: isinstance(e, EpochEnd) and e.run_id == long.run_id)
    assert handle.current() == long
    assert [r.run_id for r in handle.cancel([waiting.run_id])] == [waiting.run_id]
    assert [r.run_id for r in handle.pending()] == [other.run_id]
    assert handle.stop_current()
    events = pump(handle, lambda e: isinstance(e, TERMINAL) and e.run_id == long.run_id, 30)
    stopped = events[-1]
    assert isinstance(stopped, RunStopped) and stopped.epochs_done >= 1
    assert [r.run_id for r in handle.cancel_queued()] in ([other.run_id], [])
    assert not any(getattr(e, "run_id", "") == waiting.run_id for e in events)


def test_a_session_follows_the_handle(handle):
    """The session's rows are the handle's queue: placeholders, then the real records."""
    session = RunSession(handle)
    a, b = req("a", epochs=1), req("b", epochs=1)
    session.submit([a, b])
    assert [session.status_label(r) for r in session.records] == ["queued", "queued"]
    deadline = time.monotonic() + SLOW
    while not session.settled([a.run_id, b.run_id]):
        assert time.monotonic() < deadline, "timed out"
        session.apply(handle.poll(0.1))
    assert [r.status for r in session.records.values()] == [RunStatus.FINISHED] * 2
    assert not session.active() and session.pending == []
