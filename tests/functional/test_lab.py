"""The lab through real processes: detach and attach, a killed lab, killed clients, racing
clients, stale sockets, other versions, unsafe directories, and `lab status|stop`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import REPO, tiny, wait_until

from trainer.events import EpochEnd, Progress, RunInterrupted, RunRequest, WorkerSettings
from trainer.lab import client as lab_client
from trainer.lab.client import LabClient
from trainer.lab.place import LabError, LabPlace
from trainer.store.liveness import pid_alive
from trainer.store.record import RunStatus
from trainer.store.runstore import RunStore

TINY = ["--dataset", "synthetic", "--set", "train_subset=512", "--set", "widths=8,16,16",
        "--set", "batch_size=64"]


@pytest.fixture
def lab_on(monkeypatch, isolated_home):
    """The lab enabled; whatever lab a test started is gone afterwards."""
    monkeypatch.setenv("CNN_TUI_LAB", "on")
    runs = isolated_home / "runs"
    yield runs
    place = LabPlace.for_runs(runs)
    with contextlib.suppress(OSError):  # shown when the test failed
        print(place.log_file.read_text())
    pid = place.pid()
    if pid and pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not pid_alive(pid), 20, "the lab to stop")


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "trainer", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120, env=os.environ.copy())
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def requests(n: int, epochs: int = 2) -> list[RunRequest]:
    cfg = tiny(epochs=epochs).to_dict()
    return [RunRequest(config=cfg, preset="custom", variant=f"v{i}", group="g-test")
            for i in range(n)]


def collect(client: LabClient, until, timeout: float = 60.0) -> list:
    """Events until `until(events)` holds."""
    seen: list = []

    def done() -> bool:
        seen.extend(client.poll(0.1))
        return until(seen)

    wait_until(done, timeout, "lab events")
    return seen


def test_detached_runs_train_on_and_a_new_client_sees_them_live(lab_on):
    out = cli("run", "--preset", "batch_norm", "--repeats", "1", "--epochs", "6", *TINY,
              "--detach")
    assert "queued 2 runs into the lab" in out.stdout
    place = LabPlace.for_runs(lab_on)
    assert place.root.stat().st_mode & 0o777 == 0o700
    assert place.socket.stat().st_mode & 0o777 == 0o600
    assert place.key_file.stat().st_mode & 0o777 == 0o600
    # The client that queued them is gone; a new one attaches and gets the whole state.
    client = LabClient.connect(str(lab_on), "test")
    try:
        snap = client.snapshot
        assert {r.variant for r in snap.records} == {"BN off", "BN on"}
        events = collect(client, lambda ev: any(isinstance(e, EpochEnd) for e in ev)
                         and any(isinstance(e, Progress) for e in ev))
        assert events
        status = cli("lab", "status").stdout
        assert "devices" in status and "training" in status
        assert "BN o" in status  # the run in progress (or the one waiting) is listed
    finally:
        client.shutdown()  # detach only
    store = RunStore(lab_on)
    wait_until(lambda: all(r.status is RunStatus.FINISHED for r in store.load()[0])
               and len(store.load()[0]) == 2, 120, "both detached runs to finish")
    stopped = cli("lab", "stop")
    assert "lab stopped" in stopped.stdout
    assert not place.socket.exists()


def test_a_killed_lab_leaves_an_interrupted_run_and_a_held_queue(lab_on):
    client = LabClient.connect(str(lab_on), "test")
    reqs = requests(3, epochs=30)
    client.submit(reqs)
    collect(client, lambda ev: any(isinstance(e, EpochEnd) for e in ev))
    pid = client.snapshot.lab_pid
    os.kill(pid, signal.SIGKILL)
    events = collect(client, lambda ev: any(isinstance(e, RunInterrupted) for e in ev), 20)
    assert any("stopped unexpectedly" in getattr(e, "message", "") for e in events)
    assert client.held and len(client.pending()) == 2
    client.shutdown()
    # The next client starts a new lab, which says what happened and holds the queue.
    again = LabClient.connect(str(lab_on), "test")
    try:
        snap = again.snapshot
        assert snap.lab_pid != pid
        assert "stopped unexpectedly" in snap.recovered
        assert [r.run_id for r in snap.queue.pending] == [r.run_id for r in reqs[1:]]
        assert snap.queue.held and not snap.queue.running
        cut = RunStore(lab_on).load()[0]
        assert [r.status for r in cut if r.run_id == reqs[0].run_id] == [RunStatus.INTERRUPTED]
        again.cancel_queued()
        assert not again.pending()
    finally:
        again.shutdown()


def test_a_killed_client_never_stops_the_training(lab_on):
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "run", "--epochs", "4", *TINY],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=os.environ.copy(), start_new_session=True)
    place = LabPlace.for_runs(lab_on)
    store = RunStore(lab_on)
    wait_until(lambda: any(len(r.history) >= 1 for r in store.load()[0]), 90,
               "the first epoch")
    os.killpg(proc.pid, signal.SIGKILL)  # the client and its whole terminal session
    proc.wait(10)
    wait_until(lambda: [r.status for r in store.load()[0]] == [RunStatus.FINISHED], 90,
               "the run to finish without its client")
    assert pid_alive(place.pid() or -1)


def test_racing_clients_see_one_queue(lab_on):
    first = LabClient.connect(str(lab_on), "a")
    second = LabClient.connect(str(lab_on), "b")
    try:
        first.submit(requests(1, epochs=30))  # keeps the worker busy: the rest waits
        batches = [requests(4), requests(4)]
        threads = [threading.Thread(target=c.submit, args=(b,))
                   for c, b in zip((first, second), batches, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        second.cancel([batches[0][0].run_id, batches[1][1].run_id])
        wait_until(lambda: [r.run_id for r in first.pending()]
                   == [r.run_id for r in second.pending()], 10, "both views to agree")
        ids = [r.run_id for r in first.pending()]
        assert len(ids) == len(set(ids)) == 6
        assert batches[0][0].run_id not in ids and batches[1][1].run_id not in ids
        # A client that attaches later does not see the cancelled runs as still queued.
        third = LabClient.connect(str(lab_on), "c")
        third.shutdown()
        shown = {r.run_id for r in third.snapshot.records}
        assert batches[0][0].run_id not in shown and batches[1][1].run_id not in shown
        first.stop_current()
        first.cancel_queued()
        wait_until(lambda: not second.busy, 30, "the lab to be idle")
    finally:
        first.shutdown()
        second.shutdown()


def test_stale_sockets_other_versions_and_unsafe_directories(lab_on, monkeypatch):
    place = LabPlace.for_runs(lab_on)
    place.prepare()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(place.socket))  # a socket file nobody listens on, as a dead lab leaves it
    stale.close()
    client = LabClient.connect(str(lab_on), "test")  # replaced silently
    try:
        real = lab_client.PROTOCOL
        monkeypatch.setattr(lab_client, "PROTOCOL", 999)
        with pytest.raises(LabError, match="another version"):
            LabClient.connect(str(lab_on), "old")
        monkeypatch.setattr(lab_client, "PROTOCOL", real)
        good_key = place.key_file.read_bytes()
        place.key_file.write_bytes(b"not the key")
        with pytest.raises(LabError, match="did not accept our key"):
            LabClient.connect(str(lab_on), "intruder")
        place.key_file.write_bytes(good_key)
    finally:
        client.shutdown()
    os.chmod(place.root, 0o755)
    try:
        with pytest.raises(LabError, match="chmod 700"):
            LabClient.connect(str(lab_on), "test")
        out = cli("run", "--epochs", "1", *TINY, check=False)
        assert out.returncode == 1 and "chmod 700" in out.stderr and "Traceback" not in out.stderr
    finally:
        os.chmod(place.root, 0o700)


def test_lab_devices_are_checked_and_cuda_n_is_accepted(lab_on):
    from trainer.lab.service import devices_from

    assert devices_from("cuda:0, cuda:2,cuda:0", "auto") == ["cuda:0", "cuda:2"]
    assert devices_from(None, "cpu") == ["cpu"]
    with pytest.raises(LabError, match="cuda:N"):
        devices_from("gpu0", "auto")
    bad = cli("run", "--device", "cuda:x", "--epochs", "1", *TINY, check=False)
    assert bad.returncode == 2 and "cuda:N" in bad.stderr


def test_ctrl_c_stops_only_the_runs_it_submitted(lab_on):
    other = LabClient.connect(str(lab_on), "other")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "trainer", "run", "--epochs", "30",
                                 *TINY], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
        wait_until(lambda: other.running(), 60, "the CLI's run to start")
        theirs = requests(1)
        other.submit(theirs)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 130, out
        assert theirs[0].run_id in {r.run_id for r in other.pending()} | {
            r.run_id for r, _ in other.running()}
        store = RunStore(lab_on)
        wait_until(lambda: any(r.run_id == theirs[0].run_id and r.status is RunStatus.FINISHED
                               for r in store.load()[0]), 90, "the other client's run")
    finally:
        other.shutdown()


def test_the_settings_of_a_lab_come_from_the_client_that_starts_it(lab_on):
    settings = WorkerSettings(runs_dir=str(lab_on), device="cpu")
    client = LabClient.connect(str(Path(lab_on)), "test", settings)
    try:
        assert client.devices == ("cpu",)
    finally:
        client.shutdown()
