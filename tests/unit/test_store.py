"""Run store: pure event folding, atomic saves, and recovery from crashes and bad files."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time

import pytest

from trainer.events import (
    EpochEnd,
    Notice,
    Progress,
    RunFailed,
    RunFinished,
    RunRequest,
    RunStarted,
    RunStopped,
)
from trainer.store import atomic as store_mod  # the atomic write lives there
from trainer.store import liveness
from trainer.store.apply import apply_event, started_record, terminal_event
from trainer.store.record import EpochRow, RunError, RunRecord, RunStatus
from trainer.store.runstore import RunStore, StoreError


def started(run_id="r1", **kw) -> RunStarted:
    base = dict(run_id=run_id, config={"lr": 0.001, "epochs": 3}, preset="batch_norm",
                variant="BN on", repeat=1, group="g1", device="cpu", device_name="test cpu",
                torch_version="2.x", params=1234, steps_per_epoch=7, train_size=435,
                val_size=77, test_size=2000, dataset_note="synthetic data (not CIFAR-10)")
    base.update(kw)
    return RunStarted(**base)


def epoch(n, val_loss, is_best, run_id="r1", val_acc=None) -> EpochEnd:
    return EpochEnd(run_id=run_id, epoch=n, train_loss=2.0 / n, train_acc=0.1 * n,
                    val_loss=val_loss, val_acc=val_acc if val_acc is not None else 0.1 * n,
                    lr=0.001, seconds=1.5, is_best=is_best, lr_dropped=False)


def finished(run_id="r1") -> RunFinished:
    return RunFinished(run_id=run_id, test_loss=1.1, test_acc=0.61, best_epoch=2,
                       best_val_acc=0.6, best_val_loss=1.0, epochs_done=3,
                       train_seconds=4.5, images_per_s=900.0, early_stopped=False)


def fold(events, record=None):
    for ev in events:
        record = apply_event(record, ev)
    return record


def new_record(event: RunStarted, **kw) -> RunRecord:
    return started_record(event, **kw)


def test_new_record_has_the_documented_shape():
    rec = new_record(started())
    assert rec.status is RunStatus.RUNNING and rec.run_id == "r1"
    assert rec.preset == "batch_norm" and rec.variant == "BN on" and rec.repeat == 1
    assert rec.env.worker_pid == os.getpid() and rec.env.device == "cpu"
    assert rec.env.torch == "2.x" and rec.env.host
    assert rec.params == 1234 and rec.steps_per_epoch == 7 and rec.test_size == 2000
    assert rec.history == () and rec.summary.test_acc is None and rec.error is None
    doc = json.loads(json.dumps(rec.to_json()))  # JSON-ready, in the documented layout
    assert doc["schema"] == 1 and doc["run_id"] == "r1" and doc["status"] == "running"
    assert doc["env"]["worker_pid"] == os.getpid() and doc["history"] == []
    assert doc["summary"] == {} and doc["error"] is None


def test_apply_event_is_pure_and_folds_a_whole_run():
    rec0 = new_record(started())
    rec1 = apply_event(rec0, Progress("r1", 1, 3, 7, 2.1, 0.2, 500.0))
    assert rec1 is rec0  # progress is transient: never part of the record
    rec2 = apply_event(rec1, epoch(1, 1.5, True))
    assert rec1.history == () and len(rec2.history) == 1
    rec = fold([epoch(2, 1.0, True), epoch(3, 1.2, False), finished()], rec2)
    assert [h.epoch for h in rec.history] == [1, 2, 3]
    assert rec.status is RunStatus.FINISHED and rec.error is None
    assert rec.summary.test_acc == 0.61 and rec.summary.epochs_done == 3
    assert rec2.status is RunStatus.RUNNING and len(rec2.history) == 1


def test_summary_tracks_best_so_far_for_unfinished_runs():
    rec = fold([started(), epoch(1, 1.5, True), epoch(2, 1.0, True, val_acc=0.7),
                epoch(3, 1.2, False, val_acc=0.8), RunStopped("r1", 3)])
    s = rec.summary
    assert rec.status is RunStatus.STOPPED and s.epochs_done == 3
    assert s.best_epoch == 2 and s.best_val_loss == 1.0 and s.best_val_acc == 0.7
    assert s.train_seconds == pytest.approx(4.5)


def test_repeated_epoch_replaces_instead_of_duplicating():
    rec = fold([started(), epoch(1, 1.5, True), epoch(1, 1.4, True)])
    assert len(rec.history) == 1 and rec.history[0].val_loss == 1.4


def test_failure_keeps_epochs_and_records_error():
    rec = fold([started(), epoch(1, 1.5, True),
                RunFailed("r1", "out_of_memory", "out of memory on cuda", "Traceback...")])
    assert rec.status is RunStatus.FAILED and len(rec.history) == 1
    assert rec.error == RunError("out_of_memory", "out of memory on cuda", "Traceback...")


def test_events_without_a_record_or_of_other_runs():
    rec = apply_event(None, RunFailed("r9", "data", "no data"))
    assert rec.run_id == "r9" and rec.status is RunStatus.FAILED
    other = apply_event(rec, epoch(1, 1.0, True, run_id="r1"))
    assert other is rec
    noted = apply_event(new_record(started()), Notice("disk almost full", "warning", "r1"))
    assert noted.notices == ("disk almost full",)
    assert apply_event(new_record(started()), Notice("fyi", "info", "r1")).notices == ()


def test_request_record_then_started_keeps_created():
    req = RunRequest(config={"lr": 0.01}, preset="p", variant="v", repeat=2, group="g")
    queued = RunRecord.from_request(req, created="2026-01-01T00:00:00+00:00")
    assert queued.status is RunStatus.QUEUED and queued.config == {"lr": 0.01}
    rec = apply_event(queued, started(run_id=req.run_id))
    assert rec.status is RunStatus.RUNNING and rec.created == queued.created
    assert rec.params == 1234


def test_terminal_event_rebuilds_lost_events():
    rec = fold([started(), epoch(1, 1.5, True), finished()])
    assert terminal_event(rec) == finished()
    assert terminal_event(fold([started(), RunStopped("r1", 0)])) == RunStopped("r1", 0)
    failed = fold([started(), RunFailed("r1", "error", "boom", "tb")])
    assert terminal_event(failed) == RunFailed("r1", "error", "boom", "tb")
    assert terminal_event(new_record(started())) is None


def test_save_and_load_roundtrip_sorted_with_nan(tmp_path):
    st = RunStore(tmp_path / "runs")
    late = new_record(started(run_id="b"))
    early = new_record(started(run_id="a")).with_changes(created="2000-01-01T00:00:00+00:00")
    nan_run = fold([epoch(1, float("nan"), False, run_id="b")], late)
    st.save(nan_run)
    st.save(early)
    records, warnings = st.load()
    assert warnings == []
    assert [r.run_id for r in records] == ["a", "b"]
    assert records[1].history[0].val_loss != records[1].history[0].val_loss  # NaN
    assert json.dumps(records[1].to_json()) == json.dumps(nan_run.to_json())  # every field
    got = st.get("a")
    assert got is not None and got.run_id == "a" and st.get("zzz") is None
    assert not list((tmp_path / "runs").glob(".*tmp*"))


def test_load_without_folder_is_empty(tmp_path):
    assert RunStore(tmp_path / "nope").load() == ([], [])


def test_corrupt_files_are_skipped_with_warnings(tmp_path):
    st = RunStore(tmp_path)
    st.save(fold([started(run_id="good"), epoch(1, 1.0, True, run_id="good"),
                  finished(run_id="good")]))
    full = json.dumps(new_record(started(run_id="half")).to_json())
    (tmp_path / "half.json").write_text(full[: len(full) // 2])
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "future.json").write_text(json.dumps({
        **new_record(started(run_id="f")).to_json(), "schema": 99}))
    records, warnings = st.load()
    assert [r.run_id for r in records] == ["good"]
    assert len(warnings) == 4
    for name in ("half.json", "empty.json", "list.json", "future.json"):
        assert any(name in w for w in warnings), (name, warnings)


def test_records_written_by_the_first_release_still_load(tmp_path):
    """Schema 1 as 0.1.0 wrote it (a stale `progress` field, summary keys partly missing)."""
    doc = {"schema": 1, "run_id": "20261122-221503-3fa2c1", "group": "g-1", "preset": "batch_norm",
           "variant": "BN on", "repeat": 0, "config": {"batch_norm": True, "widths": [8, 16]},
           "status": "stopped", "created": "2026-11-22T22:15:03+00:00",
           "updated": "2026-11-22T22:16:00+00:00",
           "env": {"device": "cpu", "device_name": "x", "torch": "2.9", "python": "3.11.7",
                   "host": "elsewhere", "worker_pid": 7},
           "params": 1234, "steps_per_epoch": 7, "train_size": 435, "val_size": 77,
           "test_size": 2000, "dataset_note": "", "progress": {"epoch": 2, "step": 3},
           "history": [{"epoch": 1, "train_loss": 2.0, "train_acc": 0.1, "val_loss": 1.9,
                        "val_acc": 0.2, "lr": 0.001, "seconds": 1.5, "is_best": True,
                        "lr_dropped": False}],
           "summary": {"epochs_done": 1, "train_seconds": 1.5, "best_epoch": 1,
                       "best_val_loss": 1.9, "best_val_acc": 0.2}, "error": None}
    (tmp_path / f"{doc['run_id']}.json").write_text(json.dumps(doc))  # as it saved them
    (rec,), warnings = RunStore(tmp_path).load()
    assert warnings == []
    assert rec.status is RunStatus.STOPPED and rec.config["widths"] == [8, 16]
    assert rec.history == (EpochRow(1, 2.0, 0.1, 1.9, 0.2, 0.001, 1.5, True, False),)
    assert rec.best_epoch == 1 and rec.seconds_per_epoch == 1.5 and rec.env.worker_pid == 7


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_running_becomes_interrupted_and_keeps_epochs(tmp_path):
    st = RunStore(tmp_path)
    dead = apply_event(new_record(started(run_id="dead"), worker_pid=dead_pid()),
                       epoch(1, 1.2, True, run_id="dead"))
    alive = new_record(started(run_id="alive"))  # this test process: still alive
    st.save(dead)
    st.save(alive)
    records, warnings = st.load()
    by_id = {r.run_id: r for r in records}
    assert warnings == []
    assert by_id["dead"].status is RunStatus.INTERRUPTED
    assert by_id["dead"].summary.epochs_done == 1 and len(by_id["dead"].history) == 1
    assert by_id["dead"].error is not None and by_id["dead"].error.kind == "interrupted"
    assert by_id["alive"].status is RunStatus.RUNNING
    saved = st.get("dead")
    assert saved is not None and saved.status is RunStatus.INTERRUPTED  # saved, not just shown


def test_other_host_running_is_interrupted_only_when_stale(tmp_path):
    st = RunStore(tmp_path)
    fresh = new_record(started(run_id="fresh"), host="elsewhere", worker_pid=1)
    old = new_record(started(run_id="old"), host="elsewhere", worker_pid=1).with_changes(
        updated="2001-01-01T00:00:00+00:00")
    st.save(fresh)
    st.save(old)
    by_id = {r.run_id: r.status for r in st.load()[0]}
    assert by_id == {"fresh": RunStatus.RUNNING, "old": RunStatus.INTERRUPTED}


def test_zombie_counts_as_dead():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # wait until it exited but was not reaped
            with open(f"/proc/{proc.pid}/stat", "rb") as f:
                if b") Z" in f.read():
                    break
            time.sleep(0.01)
        assert not liveness.pid_alive(proc.pid)
    finally:
        proc.wait()
    assert liveness.pid_alive(os.getpid())


def test_disk_full_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    st = RunStore(tmp_path)
    rec = new_record(started())
    st.save(rec)
    before = (tmp_path / "r1.json").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod.os, "write", full)
    with pytest.raises(StoreError) as info:
        st.save(apply_event(rec, epoch(1, 1.0, True)))
    assert "No space left" in info.value.message and "r1.json" in info.value.message
    assert (tmp_path / "r1.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1.json"]

    monkeypatch.undo()
    monkeypatch.setattr(store_mod.os, "replace", full)
    with pytest.raises(StoreError):
        st.save(apply_event(rec, epoch(1, 1.0, True)))
    assert (tmp_path / "r1.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1.json"]


def test_unwritable_folder_raises_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as info:
        RunStore(blocker / "runs").save(new_record(started()))
    assert str(blocker) in info.value.message


def test_mark_and_delete(tmp_path):
    st = RunStore(tmp_path)
    st.save(new_record(started()))
    rec = st.mark("r1", RunStatus.FAILED, RunError("worker_died", "x"))
    got = st.get("r1")
    assert rec is not None and rec.status is RunStatus.FAILED
    assert got is not None and got.error is not None and got.error.kind == "worker_died"
    assert st.mark("missing", RunStatus.FAILED) is None
    assert st.delete("r1") and not st.delete("r1")


def test_default_dir_follows_cnn_tui_home(isolated_home):
    assert RunStore().dir == isolated_home / "runs"
