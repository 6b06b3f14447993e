"""RunSession: the one model of the runs a client shows (the TUI and `cnn-tui run`)."""

from __future__ import annotations

from helpers import tiny
from helpers.fake_trainer import FakeTrainer, Script

from trainer.events import RunRequest
from trainer.host.session import RunSession
from trainer.store.record import RunStatus


def req(label: str, dataset: str = "synthetic") -> RunRequest:
    return RunRequest(config=tiny(epochs=1, dataset=dataset).to_dict(), preset="p",
                      variant=label)


def drain(session: RunSession, run_ids: list[str], polls: int = 500):
    updates = []
    for _ in range(polls):
        updates.append(session.apply(session.trainer.poll(0.0)))
        if session.settled(run_ids):
            return updates
    raise AssertionError("the runs did not settle")


def test_a_data_failure_drops_the_runs_on_that_dataset_and_keeps_the_rest():
    fake = FakeTrainer(Script(fail={"a": ("data", "CIFAR-10 not found\nput it in DIR")},
                              delay=0.0))
    session = RunSession(fake)
    a, b, c = req("a", "cifar10"), req("b", "cifar10"), req("c", "synthetic")
    session.submit([a, b, c])
    updates = drain(session, [a.run_id, c.run_id])
    (failure,) = [u.data_failure for u in updates if u.data_failure is not None]
    assert failure.run_id == a.run_id and "put it in DIR" in failure.message
    assert [r.run_id for u in updates for r in u.dropped] == [b.run_id]
    assert b.run_id not in session.records  # a TUI forgets what never ran …
    assert session.records[c.run_id].status is RunStatus.FINISHED  # … the rest went on
    assert not fake.held and fake.pending() == []


def test_a_cli_session_keeps_cancelled_runs_for_its_table():
    fake = FakeTrainer(Script(hold=True, delay=0.0))
    session = RunSession(fake, keep_cancelled=True)
    a, b = req("a"), req("b")
    session.submit([a, b])
    assert session.cancel_queue() == [a, b]
    assert [r.status for r in session.records.values()] == [RunStatus.CANCELLED] * 2
    assert session.settled([a.run_id, b.run_id]) and not session.active()


def test_rows_come_from_the_handles_queue_and_stop_is_shown_until_it_lands():
    fake = FakeTrainer(Script(steps=4, steps_per_poll=1, delay=0.0))
    fake.submit([req("from elsewhere")])  # e.g. another client of the same trainer
    session = RunSession(fake)
    assert session.sync_queue()
    (rec,) = session.records.values()
    assert rec.status is RunStatus.QUEUED and rec.variant == "from elsewhere"
    session.apply(fake.poll(0.0))  # started
    assert session.stop() is not None and session.status_label(rec.run_id) == "stopping"
    drain(session, [rec.run_id])
    assert session.status_label(rec.run_id) == "stopped"


def test_stopping_only_my_runs_reaches_one_not_started_yet():
    """Ctrl-C on `cnn-tui run` in a shared lab: its run may be handed to a worker and not have
    said RunStarted yet; it must stop all the same, and another client's runs go on."""
    fake = FakeTrainer(Script(hold=True))
    session = RunSession(fake)
    mine, later, theirs = req("mine"), req("mine too"), req("theirs")
    session.submit([mine, later])
    fake.hand_over()  # with the worker, no RunStarted yet
    session.submit([theirs])
    mine_ids = {mine.run_id, later.run_id}
    assert session.stop(only=mine_ids) == mine and fake.stop_requests == 1
    dropped = session.cancel_queue(only=mine_ids)
    assert [r.run_id for r in dropped] == [later.run_id]
    assert [r.run_id for r in fake.pending()] == [theirs.run_id]
