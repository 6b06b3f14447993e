"""The lab's scheduler over fake workers: runs spread over free devices, one each, next
first; the queue is on disk; a data failure holds it; a recovered queue waits for resume."""

from __future__ import annotations

from pathlib import Path

from helpers import tiny

from trainer.events import Event, RunFailed, RunFinished, RunRequest
from trainer.lab.scheduler import Scheduler, load_queue


class FakeWorkers:
    """Slots that record what they were given; `finish` makes a run end."""

    def __init__(self, *slots: str) -> None:
        self._slots = list(slots)
        self.given: dict[str, list[str]] = {s: [] for s in slots}
        self.out: list[Event] = []
        self.stopped: list[str] = []

    def slots(self) -> list[str]:
        return list(self._slots)

    def mates(self, slot: str, first: RunRequest, waiting: list[RunRequest]) -> list[RunRequest]:
        """Like a CUDA slot that trains repeats together: the waiting runs of `first`'s
        variant (in these tests, a variant named "g…")."""
        return [r for r in waiting if first.variant.startswith("g") and r.variant == first.variant]

    def start(self, slot: str, requests: list[RunRequest]) -> None:
        self.given[slot].extend(r.run_id for r in requests)

    def stop(self, slot: str, force: bool = False, run_id: str | None = None) -> bool:
        self.stopped.append(slot if run_id is None else run_id)
        return True

    def poll(self, timeout: float) -> list[Event]:
        out, self.out = self.out, []
        return out

    def shutdown(self, timeout: float = 3.0) -> list[Event]:
        return []


def reqs(n: int, dataset: str = "synthetic") -> list[RunRequest]:
    cfg = tiny(dataset=dataset).to_dict()
    return [RunRequest(config=cfg, variant=f"v{i}") for i in range(n)]


def done(run_id: str) -> RunFinished:
    return RunFinished(run_id, 1.0, 0.5, 1, 0.5, 1.0, 1, 1.0, 1.0)


def test_runs_spread_over_free_devices_and_the_queue_is_on_disk(tmp_path: Path):
    workers = FakeWorkers("cuda:0", "cuda:1")
    queue = tmp_path / "queue.json"
    sched = Scheduler(workers, queue)
    batch = reqs(5)
    sched.submit(batch)
    assert workers.given == {"cuda:0": [batch[0].run_id], "cuda:1": [batch[1].run_id]}
    assert [(r.run_id, d) for r, d in sched.running()] == [
        (batch[0].run_id, "cuda:0"), (batch[1].run_id, "cuda:1")]
    assert [r.run_id for r in load_queue(queue)[0]] == [r.run_id for r in batch[2:]]
    workers.out = [done(batch[1].run_id)]
    sched.poll()
    assert workers.given["cuda:1"] == [batch[1].run_id, batch[2].run_id]  # the free one
    sched.submit(batch[:1])  # already running: never twice
    assert len(sched.pending()) == 2
    assert sched.stop_run(batch[0].run_id) and workers.stopped == [batch[0].run_id]


def test_a_slot_takes_the_runs_that_train_together_and_is_free_when_all_ended():
    workers = FakeWorkers("cuda:0")
    sched = Scheduler(workers)
    cfg = tiny().to_dict()
    group = [RunRequest(config=cfg, variant="g1") for _ in range(3)]
    other = RunRequest(config=cfg, variant="v2")
    sched.submit([group[0], other, *group[1:]])
    assert workers.given["cuda:0"] == [r.run_id for r in group]
    assert [r.run_id for r in sched.pending()] == [other.run_id]
    assert sched.stop_run(group[1].run_id) and workers.stopped == [group[1].run_id]
    workers.out = [done(group[0].run_id), done(group[1].run_id)]
    sched.poll()
    assert workers.given["cuda:0"] == [r.run_id for r in group]  # group[2] still trains
    workers.out = [done(group[2].run_id)]
    sched.poll()
    assert workers.given["cuda:0"][-1] == other.run_id and not sched.pending()


def test_a_data_failure_holds_the_queue_and_a_recovered_queue_waits(tmp_path: Path):
    workers = FakeWorkers("cpu")
    sched = Scheduler(workers)
    batch = reqs(3)
    sched.submit(batch)
    workers.out = [RunFailed(batch[0].run_id, "data", "CIFAR-10 is missing")]
    sched.poll()
    assert sched.held and workers.given["cpu"] == [batch[0].run_id]
    sched.resume()
    assert workers.given["cpu"][-1] == batch[1].run_id
    recovered = Scheduler(FakeWorkers("cpu"), recovered=reqs(2))
    assert recovered.held and not recovered.running()
    recovered.resume()
    assert len(recovered.running()) == 1


def test_a_lab_stopped_on_purpose_drops_its_queue_an_idle_one_keeps_a_held_one(tmp_path: Path):
    queue = tmp_path / "queue.json"
    held = Scheduler(FakeWorkers("cpu"), queue, recovered=reqs(2))
    held.shutdown(keep_queue=True)  # idle exit with a held queue: the next lab offers it
    assert len(load_queue(queue)[0]) == 2
    stopped = Scheduler(FakeWorkers("cpu"), queue, recovered=load_queue(queue)[0])
    stopped.shutdown()  # `lab stop`: the waiting runs are dropped on purpose
    assert load_queue(queue)[0] == []
