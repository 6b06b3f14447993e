"""Repeats trained together through the real spawned worker (grouping forced on, on CPU)."""

from __future__ import annotations

import time

import pytest
from helpers import tiny

from trainer.engine.faults import FAULT_ENV
from trainer.events import TERMINAL, RunFinished, RunRequest, RunStarted, RunStopped, WorkerSettings
from trainer.host.process import TrainerProcess
from trainer.store.runstore import RunStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def repeats(n: int, **changes) -> list[RunRequest]:
    return [RunRequest(tiny(seed=s, **changes).to_dict(), preset="test", variant="v",
                       repeat=s, group="g") for s in range(n)]


def pump_until_ended(tp: TrainerProcess, ids: set[str], on_event=None,
                     timeout: float = 150.0) -> list:
    seen: list = []
    deadline = time.monotonic() + timeout
    while not ids <= {e.run_id for e in seen if isinstance(e, TERMINAL)}:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last events: {seen[-5:]}")
        for event in tp.poll(0.05):
            seen.append(event)
            if on_event is not None:
                on_event(tp, event)
    return seen


@pytest.fixture
def trainer(tmp_path):
    tp = TrainerProcess(WorkerSettings(runs_dir=str(tmp_path), device="cpu", group="on"))
    yield tp
    tp.shutdown()


def test_three_repeats_train_together_and_a_different_model_alone(trainer, tmp_path):
    group = repeats(3)
    other = RunRequest(tiny(seed=0, batch_norm=True).to_dict(), preset="test", variant="BN")
    trainer.submit([group[0], other, *group[1:]])
    assert trainer.running() == group  # the repeats went out as one batch, BN waits
    events = pump_until_ended(trainer, {r.run_id for r in [*group, other]})
    store = RunStore(tmp_path)
    for req in group:
        rec = store.get(req.run_id)
        assert rec is not None and rec.status == "finished"
        assert rec.env.trained_together == 3 and len(rec.history) == 2
        assert rec.config["seed"] == req.config["seed"]
    alone = store.get(other.run_id)
    assert alone is not None and alone.status == "finished" and alone.env.trained_together == 1
    finished = [e for e in events if isinstance(e, RunFinished)]
    assert len(finished) == 4 and not trainer.busy


def test_stopping_one_run_of_a_group_leaves_the_others_training(trainer, tmp_path):
    group = repeats(3, epochs=3, train_subset=512)
    started: set[str] = set()

    def stop_middle_once_all_started(tp, event):
        if isinstance(event, RunStarted):
            started.add(event.run_id)
            if len(started) == 3:
                assert tp.stop_run(group[1].run_id)

    trainer.submit(group)
    events = pump_until_ended(trainer, {r.run_id for r in group}, stop_middle_once_all_started)
    ends = {e.run_id: e for e in events if isinstance(e, TERMINAL)}
    assert isinstance(ends[group[1].run_id], RunStopped)
    assert all(isinstance(ends[r.run_id], RunFinished) for r in (group[0], group[2]))
    assert RunStore(tmp_path).get(group[1].run_id).status == "stopped"


def test_a_group_out_of_memory_is_split_in_halves(tmp_path, monkeypatch):
    """An (injected) out-of-memory error in a group of 3: run 0 trains again alone and runs
    1–2 together; all three finish, and their records say how they trained."""
    monkeypatch.setenv(FAULT_ENV, "oom@1")
    tp = TrainerProcess(WorkerSettings(runs_dir=str(tmp_path), device="cpu", group="on"))
    try:
        group = repeats(3)
        tp.submit(group)
        pump_until_ended(tp, {r.run_id for r in group})
    finally:
        tp.shutdown()
    store = RunStore(tmp_path)
    records = [store.get(r.run_id) for r in group]
    assert [r.status for r in records] == ["finished"] * 3
    assert [r.env.trained_together for r in records] == [1, 2, 2]
    assert all(len(r.history) == 2 for r in records)  # the retry started each record afresh
