"""TrainerProcess with a real spawned worker and the real training loop (CPU, tiny configs).

Each spawned worker costs a few seconds (torch import + synthetic data), so most tests share
one TrainerProcess; the crash tests restart it, which is part of what they check.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import REPO, tiny

from trainer.engine.reporter import RunReporter, plain_event
from trainer.engine.worker import _Worker
from trainer.events import (
    TERMINAL,
    EpochEnd,
    Notice,
    Preparing,
    Progress,
    RunFailed,
    RunFinished,
    RunRequest,
    RunStarted,
    RunStopped,
    WorkerSettings,
)
from trainer.host.process import TrainerProcess, describe_exit
from trainer.store.liveness import pid_alive
from trainer.store.record import RunEnv
from trainer.store.runstore import RunStore

pytestmark = pytest.mark.timeout(120)

ROOT = REPO


def request(**changes) -> RunRequest:
    return RunRequest(config=tiny(**changes).to_dict(), preset="test", variant="v")


def pump(tp: TrainerProcess, until, timeout: float = 60.0, on_event=None) -> list:
    """Poll until `until(event)` is true for some event; return every event seen."""
    seen: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in tp.poll(0.05):
            seen.append(event)
            if on_event is not None:
                on_event(event)
            if until(event):
                return seen
    raise AssertionError(f"timed out; last events: {seen[-5:]}")


def ended(run_id: str):
    return lambda ev: isinstance(ev, TERMINAL) and ev.run_id == run_id


def of_run(events, run_id):
    return [e for e in events if getattr(e, "run_id", None) == run_id]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def shared(runs_dir):
    tp = TrainerProcess(WorkerSettings(runs_dir=str(runs_dir), device="cpu"))
    tp.start()  # import torch in the background while the first test gets going
    yield tp
    tp.shutdown()


def child_pids() -> set[int]:
    """Live (non-zombie) children of this process."""
    me = str(os.getpid())
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if fields[1].decode() == me and fields[0] != b"Z":
            out.add(int(entry))
    return out


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- the happy path --------------------------------------------------------------------------

def test_run_reports_events_in_order_and_is_stored(shared, runs_dir):
    req = request(epochs=2)
    shared.submit([req])
    assert shared.busy and shared.current() == req
    events = of_run(pump(shared, ended(req.run_id)), req.run_id)
    # Every wait has a status: what the run waits for comes before it trains.
    stages = [e.stage for e in events if isinstance(e, Preparing)]
    assert "building the model" in stages and stages[-1].startswith("warming up")
    first_step = next(i for i, e in enumerate(events) if isinstance(e, Progress))
    assert all(i < first_step for i, e in enumerate(events) if isinstance(e, Preparing))
    # (The data may come with an info notice, e.g. "drawing the synthetic dataset" when this
    # module is the first to need it: a status, like Preparing, not part of the run's life.)
    events = [e for e in events if not isinstance(e, Preparing)
              and not (isinstance(e, Notice) and e.level == "info")]
    kinds = [type(e).__name__ for e in events if not isinstance(e, Progress)]
    assert kinds == ["RunStarted", "EpochEnd", "EpochEnd", "RunFinished"]
    assert isinstance(events[0], RunStarted) and events[0].device == "cpu"
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
    assert not shared.busy and shared.current() is None

    rec = RunStore(runs_dir).get(req.run_id)
    assert rec.status == "finished" and rec.preset == "test"
    assert [h.epoch for h in rec.history] == [1, 2]
    assert rec.summary.test_acc == events[-1].test_acc
    assert rec.env.worker_pid == shared.worker_pid


def test_stop_mid_run_keeps_finished_epochs(shared, runs_dir):
    req = request(epochs=200)
    shared.submit(req)
    pump(shared, lambda e: isinstance(e, EpochEnd) and e.run_id == req.run_id)
    t0 = time.monotonic()
    assert shared.stop_current()
    events = pump(shared, ended(req.run_id), timeout=10)
    assert time.monotonic() - t0 < 2.0
    stopped = events[-1]
    assert isinstance(stopped, RunStopped) and stopped.epochs_done >= 1
    rec = RunStore(runs_dir).get(req.run_id)
    assert rec.status == "stopped"
    assert len(rec.history) == stopped.epochs_done == rec.summary.epochs_done
    assert not shared.stop_current()  # nothing running any more


def test_failed_runs_leave_the_worker_usable(shared, runs_dir):
    bad_key = RunRequest(config={**tiny().to_dict(), "widthz": [8]})
    too_small = request(train_subset=1)  # data loads, then the split fails: a config problem
    good = request(epochs=1, train_subset=64)
    shared.submit([bad_key, too_small, good])
    pid = shared.worker_pid
    events = pump(shared, ended(good.run_id))

    failed = {e.run_id: e for e in events if isinstance(e, RunFailed)}
    assert failed[bad_key.run_id].kind == "config"
    assert "widthz" in failed[bad_key.run_id].message
    assert "did you mean 'widths'" in failed[bad_key.run_id].message
    assert failed[too_small.run_id].kind == "config"
    assert "train_subset" in failed[too_small.run_id].message
    assert isinstance(events[-1], RunFinished) and shared.worker_pid == pid

    store = RunStore(runs_dir)
    rec = store.get(too_small.run_id)  # failed before RunStarted: still recorded
    assert rec.status == "failed" and rec.error.kind == "config"
    assert "Traceback" in rec.error.traceback
    assert store.get(bad_key.run_id).error.kind == "config"


def test_a_missing_dataset_holds_the_queue_until_the_caller_decides(tmp_path, runs_dir):
    """Every queued run on a broken dataset would fail the same way: hold, don't repeat it."""
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ["batches.meta", "test_batch", *(f"data_batch_{i}" for i in range(1, 6))]:
        (folder / name).write_bytes(b"\x80\x02truncated")
    tp = TrainerProcess(WorkerSettings(runs_dir=str(runs_dir), device="cpu",
                                       data_dir=str(tmp_path / "data")))
    try:
        first, second = request(dataset="cifar10"), request(dataset="cifar10")
        synthetic = request(epochs=1, train_subset=64)
        tp.submit([first, second])
        events = pump(tp, ended(first.run_id))
        assert isinstance(events[-1], RunFailed) and events[-1].kind == "data"
        assert "data_batch_1" in events[-1].message or "batches" in events[-1].message
        events += tp.poll(0.5)
        assert tp.held and tp.pending() == [second] and tp.current() is None
        assert not of_run(events, second.run_id)  # never tried
        assert tp.cancel_queued() == [second] and not tp.held
        tp.submit(synthetic)  # the caller switched to data that works: the queue moves
        assert isinstance(pump(tp, ended(synthetic.run_id))[-1], RunFinished)
    finally:
        tp.shutdown()


def test_cancel_queued_runs(shared, runs_dir):
    first, *queued = [request(epochs=200) for _ in range(3)]
    shared.submit([first, *queued])
    assert shared.pending() == queued
    pump(shared, lambda e: isinstance(e, RunStarted) and e.run_id == first.run_id)
    assert shared.cancel([queued[1].run_id]) == [queued[1]]
    assert shared.cancel_queued() == [queued[0]]
    assert shared.pending() == [] and shared.busy
    shared.stop_current()
    events = pump(shared, ended(first.run_id))
    events += shared.poll(0.3)
    assert not any(of_run(events, r.run_id) for r in queued)
    assert not shared.busy
    assert all(RunStore(runs_dir).get(r.run_id) is None for r in queued)


def test_poll_hands_out_bounded_batches(shared):
    """A flood of events (batch size 1) is handed out a few at a time, so a UI stays live."""
    req = request(epochs=50, batch_size=1, train_subset=100)
    shared.submit(req)
    sizes, seen = [], []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(ended(req.run_id)(e) for e in seen):
        batch = shared.poll(0.05, max_events=2)
        sizes.append(len(batch))
        seen += batch
        if any(isinstance(e, EpochEnd) for e in batch):
            shared.stop_current()
    assert any(isinstance(e, RunStopped) for e in seen) and max(sizes) <= 2
    assert len(seen) > 2  # so the bound did matter


def test_many_short_runs_do_not_leak(shared):
    """20 runs (two trained to the end, the rest stopped at their first batch):
    no file descriptors or processes pile up, in the parent or in the worker."""
    warm = request(epochs=1, train_subset=64)
    shared.submit(warm)
    pump(shared, ended(warm.run_id))
    fds, children = open_fds(), child_pids()
    worker = shared.worker_pid
    worker_fds = open_fds(worker)

    reqs = [request(epochs=1 if i % 10 == 0 else 100, train_subset=64) for i in range(20)]
    shared.submit(reqs)

    def stop_early(ev):
        if isinstance(ev, RunStarted) and ev.config["epochs"] == 100:
            shared.stop_current()

    events = pump(shared, ended(reqs[-1].run_id), timeout=90, on_event=stop_early)
    results = [e for e in events if isinstance(e, TERMINAL)]
    assert len(results) == 20
    assert sum(isinstance(e, RunFinished) for e in results) == 2
    assert sum(isinstance(e, RunStopped) for e in results) == 18
    assert shared.worker_pid == worker
    assert open_fds() <= fds and child_pids() == children
    assert open_fds(worker) <= worker_fds + 2  # +2: slack for lazily opened library files
    assert len(multiprocessing.active_children()) == 1


# -- crashes -----------------------------------------------------------------------------------

class TextualLikeStderr:
    """What Textual puts in sys.stderr while an app runs: fileno() is -1."""

    def write(self, text):
        return len(text)

    def flush(self):
        pass

    def fileno(self):
        return -1


def test_killed_worker_fails_its_run_and_the_queue_goes_on(shared, runs_dir, monkeypatch):
    victim, survivor = request(epochs=200), request(epochs=1)
    shared.submit([victim, survivor])
    pump(shared, lambda e: isinstance(e, EpochEnd) and e.run_id == victim.run_id)
    old_pid = shared.worker_pid
    # The restart below must work while "Textual" holds stderr (fds_to_keep trap).
    monkeypatch.setattr(sys, "stderr", TextualLikeStderr())

    t0 = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    events = pump(shared, ended(victim.run_id), timeout=10)
    assert time.monotonic() - t0 < 2.0
    died = events[-1]
    assert isinstance(died, RunFailed) and died.kind == "worker_died"
    assert "SIGKILL" in died.message
    rec = RunStore(runs_dir).get(victim.run_id)
    assert rec.status == "failed" and rec.error.kind == "worker_died"
    assert len(rec.history) >= 1  # finished epochs are kept

    # The queue goes on with a fresh worker.
    events = pump(shared, ended(survivor.run_id))
    assert isinstance(events[-1], RunFinished)
    assert shared.worker_pid not in (None, old_pid) and not pid_alive(old_pid)


def test_idle_death_forced_stop_and_forced_shutdown(runs_dir):
    """Cheap crash paths: every worker here is killed while still importing torch."""
    tp = TrainerProcess(WorkerSettings(runs_dir=str(runs_dir), device="cpu"))
    tp.start()
    time.sleep(0.3)
    os.kill(tp.worker_pid, signal.SIGTERM)  # an idle worker dies (SIGTERM, OOM killer...)
    events = pump(tp, lambda e: isinstance(e, Notice), timeout=5)
    assert "SIGTERM" in events[-1].message and tp.worker_pid is None

    stuck, queued = request(), request()
    tp.submit([stuck, queued])  # a fresh worker starts for them
    time.sleep(0.3)
    assert tp.stop_current(force=True)  # e.g. stuck in a long download: kill it
    events = pump(tp, ended(stuck.run_id), timeout=5)
    assert events[-1] == RunStopped(run_id=stuck.run_id, epochs_done=0)
    assert RunStore(runs_dir).get(stuck.run_id).status == "stopped"

    time.sleep(0.3)  # `queued` went to yet another worker, which cannot react yet either
    pid = tp.worker_pid
    t0 = time.monotonic()
    leftovers = tp.shutdown(timeout=0.2)
    assert time.monotonic() - t0 < 2.0
    assert leftovers == [RunStopped(run_id=queued.run_id, epochs_done=0)]
    assert RunStore(runs_dir).get(queued.run_id).status == "stopped"
    assert not pid_alive(pid)


PARENT = textwrap.dedent("""
    import sys, time
    from trainer.events import EpochEnd, RunRequest
    from trainer.host.process import TrainerProcess
    from trainer.events import WorkerSettings

    def main():
        runs, log, config = sys.argv[1], sys.argv[2], eval(sys.argv[3])
        tp = TrainerProcess(WorkerSettings(runs_dir=runs, device="cpu", log_path=log))
        tp.submit(RunRequest(config=config, run_id="orphan"))
        while True:
            if any(isinstance(e, EpochEnd) for e in tp.poll(0.1)):
                print(tp.worker_pid, "torch" in sys.modules, flush=True)
                time.sleep(600)

    if __name__ == "__main__":
        main()
""")


def test_worker_exits_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    runs, log = tmp_path / "runs", tmp_path / "worker.log"
    config = repr(tiny(epochs=500).to_dict())
    parent = subprocess.Popen([sys.executable, str(script), str(runs), str(log), config],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = parent.stdout.readline()  # after the first epoch
        pid_text, torch_loaded = line.split()
        worker = int(pid_text)
        assert torch_loaded == "False"  # the parent side never imports torch
        assert pid_alive(worker)
        parent.kill()
        parent.wait()
        t0 = time.monotonic()
        while pid_alive(worker) and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        assert not pid_alive(worker), "worker outlived its parent"
        assert time.monotonic() - t0 < 2.5
    finally:
        parent.kill()
        parent.wait()
    records, warnings = RunStore(runs).load()
    assert warnings == []
    (rec,) = records
    assert rec.run_id == "orphan" and rec.status == "interrupted"
    assert rec.summary.epochs_done >= 1 and len(rec.history) >= 1
    assert "parent process is gone" in log.read_text()


# -- pieces that need no worker ---------------------------------------------------------------


def test_describe_exit():
    assert describe_exit(1) == "trainer process died (exit code 1)"
    assert "SIGKILL" in describe_exit(-9) and "memory" in describe_exit(-9)
    assert "SIGTERM" in describe_exit(-15)


class FakeOOM(RuntimeError):
    pass


def test_out_of_memory_is_reported_with_advice():
    worker = _Worker.__new__(_Worker)  # classification needs no torch, only its error type
    worker.torch = SimpleNamespace(cuda=SimpleNamespace(OutOfMemoryError=FakeOOM))
    cfg = tiny(batch_size=512)
    kind, message, _ = worker.classify(FakeOOM("CUDA out of memory. Tried..."), cfg, "cuda")
    assert kind == "out_of_memory"
    assert message == "out of memory on cuda — try a smaller batch_size (was 512)"
    cpu = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB")
    assert worker.classify(cpu, cfg, "cpu")[0] == "out_of_memory"
    kind, message, _ = worker.classify(ValueError("bad\nsecond line"), cfg, "cpu")
    assert (kind, message) == ("error", "ValueError: bad")


# -- the worker's reporting, without a worker -------------------------------------------------

def started_event(req: RunRequest) -> RunStarted:
    return RunStarted(run_id=req.run_id, config=req.config, preset=req.preset,
                      variant=req.variant, repeat=0, group="", device="cpu", device_name="cpu",
                      torch_version="2", params=10, steps_per_epoch=2, train_size=100,
                      val_size=20, test_size=50)


def epoch_event(req: RunRequest, n: int) -> EpochEnd:
    return EpochEnd(req.run_id, n, 2.0, 0.2, 2.1, 0.25, 0.001, 1.0, True, False)


def test_reporter_keeps_training_when_the_disk_is_full(tmp_path, monkeypatch):
    from trainer.store import atomic as store_mod  # the atomic write lives there

    store, sent, req = RunStore(tmp_path), [], request()
    report = RunReporter(store, sent.append, req)
    report.emit(started_event(req))
    on_disk = (tmp_path / f"{req.run_id}.json").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod.os, "write", full)
    report.emit(epoch_event(req, 1))
    report.emit(epoch_event(req, 2))
    assert [type(e).__name__ for e in sent] == ["RunStarted", "EpochEnd", "Notice", "EpochEnd"]
    notice = sent[2]
    assert notice.level == "warning" and "No space left" in notice.message
    assert notice.run_id == req.run_id
    assert (tmp_path / f"{req.run_id}.json").read_bytes() == on_disk  # old version intact
    assert [p.name for p in tmp_path.iterdir()] == [f"{req.run_id}.json"]  # no temp file

    monkeypatch.undo()  # space again: the end of the run is saved, with every epoch
    report.emit(RunStopped(req.run_id, 2))
    report.emit(RunStopped(req.run_id, 2))  # a second result is ignored
    rec = store.get(req.run_id)
    assert rec.status == "stopped" and len(rec.history) == 2
    assert sum(isinstance(e, RunStopped) for e in sent) == 1


def test_reporter_records_runs_that_fail_before_starting(tmp_path):
    store, sent, req = RunStore(tmp_path), [], request()
    report = RunReporter(store, sent.append, req, env=RunEnv(host="h", worker_pid=1))
    report.fail("data", "CIFAR-10 not found\nlooked in: /x\nfix: ...", "Traceback ...")
    (event,) = sent
    assert isinstance(event, RunFailed) and event.kind == "data"
    assert event.message.startswith("CIFAR-10 not found\n")  # full fix-it text
    rec = store.get(req.run_id)
    assert rec.status == "failed" and rec.config == req.config
    assert rec.error.message == event.message and rec.env.host == "h"


class TorchVersionLike(str):
    pass


class ScalarLike:
    def item(self):
        return 0.5


def test_events_are_sent_as_plain_python():
    req = request()
    ev = plain_event(replace(started_event(req), torch_version=TorchVersionLike("2.5")))
    assert type(ev.torch_version) is str
    ev = plain_event(replace(epoch_event(req, 1), val_acc=ScalarLike()))
    assert ev.val_acc == 0.5 and type(ev.val_acc) is float
    plain = epoch_event(req, 1)
    assert plain_event(plain) is plain


# -- shutdown ----------------------------------------------------------------------------------

def test_shutdown_stops_the_run_and_leaves_no_process(shared, runs_dir):
    """Runs last in this module: it shuts the shared process down."""
    tp = shared
    before = child_pids() - {tp.worker_pid}
    req = request(epochs=200)
    tp.submit([req, request(), request()])
    pump(tp, lambda e: isinstance(e, EpochEnd) and e.run_id == req.run_id)
    pid = tp.worker_pid
    t0 = time.monotonic()
    leftovers = tp.shutdown()
    assert time.monotonic() - t0 < 3.5
    assert any(isinstance(e, RunStopped) and e.run_id == req.run_id for e in leftovers)
    assert RunStore(runs_dir).get(req.run_id).status == "stopped"
    assert not pid_alive(pid) and child_pids() <= before
    assert tp.worker_pid is None and tp.pending() == [] and not tp.busy
    assert tp.shutdown() == []  # idempotent
    assert tp.poll(0.01) == []
    with pytest.raises(RuntimeError):
        tp.submit(request())


def test_shutdown_of_an_idle_never_started_process_is_instant():
    tp = TrainerProcess()
    t0 = time.monotonic()
    assert tp.shutdown() == []
    assert time.monotonic() - t0 < 0.5
    assert tp.store.dir == RunStore().dir  # default runs dir follows CNN_TUI_HOME
