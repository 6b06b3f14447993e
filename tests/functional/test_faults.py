"""The fault matrix: each fault a user can meet, through the real trainer process (CPU,
synthetic data). Rows that need no worker (corrupt files, bad presets, bad values typed or
passed on the command line) are tested where their code lives; README's "Faults" section maps
every row to its tests.

Worker faults that cannot be caused on demand on a CPU box (a crash inside a run, CUDA running
out of memory, a full disk) are injected with CNN_TUI_FAULT=KIND@EPOCH, which the worker reads
at start (trainer/worker.py, `_Fault`): the exception or the failing save happens inside the
real spawned worker and travels the same path as the real thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from multiprocessing import resource_tracker
from pathlib import Path

import pytest
from helpers import REPO, tiny, wait_for, wait_until
from helpers.fake_trainer import FakeTrainer

from trainer.engine.faults import FAULT_ENV
from trainer.events import (
    TERMINAL,
    EpochEnd,
    Notice,
    RunFailed,
    RunFinished,
    RunRequest,
    WorkerSettings,
)
from trainer.host.process import TrainerProcess
from trainer.store.record import RunRecord
from trainer.store.runstore import RunStore, read_record
from tui.app import CnnTuiApp, StartOptions
from tui.widgets.results import ResultsTable

pytestmark = pytest.mark.timeout(240)

ROOT = REPO
SLOW = 180  # a loaded 2-core CI box can take long to spawn a worker and import torch

# A lesson whose first variant ends at once and whose second runs until it is stopped: so a
# fault in the middle of the second always has a finished run next to it that must survive.
LESSON = """\
title = "Short then long"
summary = "one finished run, one in progress"
lesson = "fault-matrix fixture"
expect = "nothing"
repeats = 1
[[variants]]
label = "short"
epochs = 1
[[variants]]
label = "long"
epochs = 500
"""
TINY_ARGS = ["--dataset", "synthetic", "--set", "train_subset=256", "--set", "widths=8,8,8",
             "--device", "cpu"]


def request(**changes) -> RunRequest:
    return RunRequest(config=tiny(**changes).to_dict(), preset="faults", variant="v")


def pump(tp: TrainerProcess, run_id: str, timeout: float = SLOW) -> list:
    """Every event until `run_id` ends."""
    seen: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in tp.poll(0.05):
            seen.append(event)
            if isinstance(event, TERMINAL) and event.run_id == run_id:
                return seen
    raise AssertionError(f"timed out; last events: {seen[-5:]}")


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True



def records(runs: Path) -> dict[str, RunRecord]:
    """The run files as they are on disk, by variant (unreadable/half-written ones skipped)."""
    out = {}
    for path in runs.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            rec = read_record(path)
            out[rec.variant] = rec
    return out


def long_run_has_an_epoch(runs: Path) -> RunRecord | None:
    recs = records(runs)
    short, long = recs.get("short"), recs.get("long")
    if short and short.status == "finished" and long and long.history:
        return long
    return None


@pytest.fixture
def lessons(tmp_path) -> Path:
    folder = tmp_path / "lessons"
    folder.mkdir()
    (folder / "short_long.toml").write_text(LESSON)
    return folder


# -- a run crashes, runs out of memory, meets a full disk ----------------------------------

@pytest.mark.parametrize("fault", ["error", "oom"])
def test_a_crashing_run_fails_with_a_reason_and_the_worker_goes_on(fault, tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, f"{fault}@2")
    runs = tmp_path / "runs"
    tp = TrainerProcess(WorkerSettings(runs_dir=str(runs), device="cpu"))
    try:
        bad, good = request(epochs=3), request(epochs=1)
        tp.submit([bad, good])
        events = pump(tp, bad.run_id)
        pid = tp.worker_pid
        failed = events[-1]
        assert isinstance(failed, RunFailed) and "\n" not in failed.message
        if fault == "oom":
            assert failed.kind == "out_of_memory"
            assert "out of memory" in failed.message and "smaller batch_size" in failed.message
        else:
            assert failed.kind == "error"
            assert failed.message.startswith("RuntimeError: injected fault")
        rec = RunStore(runs).get(bad.run_id)
        assert rec.status == "failed" and rec.error.kind == failed.kind
        assert "Traceback (most recent call last)" in rec.error.traceback
        assert [h.epoch for h in rec.history] == [1]  # the epoch before the fault is kept

        assert isinstance(pump(tp, good.run_id)[-1], RunFinished)
        assert tp.worker_pid == pid  # the same worker, still usable
        assert RunStore(runs).get(good.run_id).status == "finished"
    finally:
        tp.shutdown()


def test_the_cli_prints_the_one_line_reason_and_exits_1(tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, FAULT_ENV: "error@1"}
    proc = subprocess.run([sys.executable, "-m", "trainer", "run", *TINY_ARGS, "--epochs", "2",
                           "--runs-dir", str(runs)], capture_output=True, text=True,
                          timeout=SLOW, cwd=ROOT, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "RuntimeError: injected fault" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr  # the traceback is in the store
    (rec,) = records(runs).values()
    assert rec.status == "failed" and "Traceback" in rec.error.traceback


def test_a_full_disk_warns_once_keeps_training_and_the_old_file(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "disk_full@2")
    runs = tmp_path / "runs"
    tp = TrainerProcess(WorkerSettings(runs_dir=str(runs), device="cpu"))
    try:
        full, after = request(epochs=3), request(epochs=1)
        tp.submit([full, after])
        events = pump(tp, full.run_id)
        warnings = [e for e in events if isinstance(e, Notice) and e.level == "warning"]
        assert len(warnings) == 1
        assert "No space left on device" in warnings[0].message
        assert str(runs) in warnings[0].message  # names the file it could not write
        assert isinstance(events[-1], RunFinished)  # training went on to the end
        assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2, 3]
        # What was saved before the disk filled up is intact and loads.
        rec = RunStore(runs).get(full.run_id)
        assert rec is not None and [h.epoch for h in rec.history] == [1]
        assert not list(runs.glob(".*tmp*"))  # no temp files left behind
        pump(tp, after.run_id)  # once there is room again, records are saved as usual
        assert RunStore(runs).get(after.run_id).status == "finished"
    finally:
        tp.shutdown()


# -- the worker is killed; the app is killed or hung up; quit / Ctrl-C ----------------------

def test_tui_notices_a_killed_worker_and_restarts_one(tmp_path):
    """SIGKILL the worker mid-run: the run is failed (worker died) in < 2 s; r starts a new one."""
    asyncio.run(_killed_worker_scenario(tmp_path))


def real_app(tmp_path: Path, epochs: int, train_subset: int
             ) -> tuple[CnnTuiApp, TrainerProcess, Path]:
    """The app on a real CPU worker, tiny synthetic runs; returns (app, trainer, runs dir)."""
    runs = tmp_path / "runs"
    trainer = TrainerProcess(WorkerSettings(runs_dir=str(runs), device="cpu",
                                            log_path=str(tmp_path / "worker.log")))
    overrides = {"dataset": "synthetic", "epochs": epochs, "repeats": 1,
                 "train_subset": train_subset, "widths": (8, 8, 8)}
    app = CnnTuiApp(trainer, StartOptions(runs_dir=runs, overrides=overrides, blink=False,
                                          refresh_interval=0.1, check_data=False))
    return app, trainer, runs


async def _killed_worker_scenario(tmp_path: Path) -> None:
    app, trainer, runs = real_app(tmp_path, epochs=500, train_subset=256)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("t")  # the current toggles as one run
        session = app.session
        await wait_for(pilot, lambda: any(r.history for r in session.records.values()), SLOW,
                       "a first epoch")
        (run_id,) = app.session.records
        first_pid = trainer.worker_pid
        os.kill(first_pid, signal.SIGKILL)
        t0 = time.monotonic()
        status = app.session.status_label
        await wait_for(pilot, lambda: status(run_id) == "failed", 10, "the failure")
        assert time.monotonic() - t0 < 2.0
        table = app.main.query_one(ResultsTable)

        def shown() -> str:
            status = table.cell(run_id, "status")
            return getattr(status, "plain", str(status))

        await wait_for(pilot, lambda: "failed" in shown(), 2, "the table to show the failure")
        rec = RunStore(runs).get(run_id)
        assert rec.status == "failed" and rec.error.kind == "worker_died"
        assert "SIGKILL" in rec.error.message and len(rec.history) >= 1

        await pilot.press("t")  # the next run gets a fresh worker
        await wait_for(pilot, lambda: len(app.session.records) == 2 and trainer.worker_pid, SLOW,
                    "a second run")
        assert trainer.worker_pid != first_pid
        second = next(r for r in app.session.records if r != run_id)
        await wait_for(pilot, lambda: status(second) == "running", SLOW, "the second run")
        await pilot.press("x")
        await wait_for(pilot, lambda: status(second) == "stopped", 30, "stop")
    trainer.shutdown()


def test_cli_ctrl_c_stops_keeps_finished_and_leaves_no_process(tmp_path, lessons):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", "run", "--preset", "short_long", *TINY_ARGS,
         "--presets-dir", str(lessons), "--runs-dir", str(runs)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=_as_a_terminal_job)
    try:
        long = wait_until(lambda: long_run_has_an_epoch(runs), SLOW, "the long run's epoch")
        worker = long.env.worker_pid
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    assert gone_within(worker, 2.0)
    recs = records(runs)
    assert recs["short"].status == "finished"
    assert recs["long"].status == "stopped" and len(recs["long"].history) >= 1


def _as_a_terminal_job() -> None:
    """In the child: SIGINT and SIGHUP do what they do to a job in a terminal. A test run
    started under nohup or in a non-interactive shell's background (as CI may be) passes
    them on ignored, and cnn-tui rightly honours an inherited "ignore"."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _take_tty() -> None:
    """In the child, after setsid: make the pty our controlling terminal, as sshd does, so
    that the kernel sends SIGHUP when the terminal goes away."""
    _as_a_terminal_job()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """`cnn-tui` in a pseudo-terminal, as over SSH: keys go in, the screen is drained."""

    def __init__(self, args: list[str], cwd: Path, controlling: bool = True) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())",
             *args], stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
            start_new_session=True, preexec_fn=_take_tty if controlling else _as_a_terminal_job)
        os.close(slave)
        self.screen = bytearray()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.screen += chunk[-100_000:]

    def press(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        with contextlib.suppress(OSError):
            os.close(self.master)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGHUP", "hang-up", "terminal-lost"])
def test_killed_or_hung_up_app_leaves_no_worker_and_loses_no_epoch(how, tmp_path, lessons):
    """The app dies mid-run: kill -9; SIGHUP; its terminal goes away as when SSH drops (the
    kernel sends SIGHUP); or the terminal goes away without any signal (not the controlling
    terminal: the app notices by itself). The worker exits within 2 s; on relaunch the
    finished run is there and the run in progress is `interrupted` with its epochs."""
    runs = tmp_path / "runs"
    term = Terminal(["--runs-dir", str(runs), "--presets-dir", str(lessons), *TINY_ARGS],
                    ROOT, controlling=how != "terminal-lost")
    try:
        wait_until(lambda: b"Short then long" in term.screen or term.proc.poll() is not None,
                   60, "the app to draw its lesson list")
        assert term.proc.poll() is None, term.screen.decode(errors="replace")[-2000:]
        # The lesson by name from the command palette: "Run lesson: Short then long".
        # Each step waits for what it needs on the screen (the palette, then its matches:
        # only "Run lesson" commands say "… variants × … repeats").
        mark = len(term.screen)
        term.press("\x10")  # ctrl+p
        wait_until(lambda: b"Search for commands" in term.screen[mark:], 30, "the palette")
        mark = len(term.screen)
        term.press("Run lesson: Short then long")
        wait_until(lambda: "variants × ".encode() in term.screen[mark:], 30, "the matches")
        term.press("\r")
        long = wait_until(lambda: long_run_has_an_epoch(runs), SLOW, "the long run's epoch")
        worker = long.env.worker_pid
        assert alive(worker)
        if how in ("hang-up", "terminal-lost"):
            os.close(term.master)  # the terminal goes away
        else:
            os.kill(term.proc.pid, getattr(signal, how))
        assert gone_within(worker, 2.0), f"worker {worker} outlived the app ({how})"
        term.proc.wait(10)
    finally:
        term.close()

    store = RunStore(runs)
    found, warnings = store.load()
    assert not warnings
    loaded = {rec.variant: rec for rec in found}
    assert loaded["short"].status == "finished"
    assert loaded["long"].status == "interrupted"
    assert len(loaded["long"].history) >= 1
    asyncio.run(_relaunch_shows(runs))


async def _relaunch_shows(runs: Path) -> None:
    app = CnnTuiApp(FakeTrainer(), StartOptions(runs_dir=runs, blink=False, check_data=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause(0.3)
        table = app.main.query_one(ResultsTable)
        assert table.row_count == 2
        shown = sorted(str(getattr(table.cell(r, "status"), "plain",
                                   table.cell(r, "status"))) for r in app.session.records)
        assert any("finished" in s for s in shown) and any("interrupted" in s for s in shown)


# -- many runs in one app process ----------------------------------------------------------

def test_ten_runs_in_one_app_leak_no_fds_or_processes(tmp_path):
    """A leak of one descriptor per run shows after ten (the check allows two of slack)."""
    asyncio.run(_many_runs(tmp_path, 10))


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _children() -> set[int]:
    me = str(os.getpid())
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_bytes()
                fields = stat[stat.rfind(b")") + 2:].split()
                if fields[1].decode() == me and fields[0] != b"Z":
                    out.add(int(entry))
    return out


async def _many_runs(tmp_path: Path, runs: int) -> None:
    app, trainer, _ = real_app(tmp_path, epochs=1, train_subset=64)
    async with app.run_test(size=(120, 40)) as pilot:
        async def run_once(n_before: int) -> None:
            await pilot.press("t")
            deadline = time.monotonic() + SLOW
            done = app.session.records
            while not (len(done) == n_before + 1
                       and all(app.session.status_label(r) == "finished" for r in done)):
                assert time.monotonic() < deadline, "timed out waiting for a run"
                await pilot.pause(0.05)

        await run_once(0)  # the worker is up and the data cached: the baseline
        await pilot.pause(0.5)
        fds, children = _open_fds(), _children()
        for n in range(1, runs + 1):
            await run_once(n)
        await pilot.pause(0.5)
        assert len(app.session.records) == runs + 1
        assert _children() == children  # the same single worker, nothing else
        assert _open_fds() <= fds + 2, (fds, _open_fds())  # a little slack for Textual timers
    trainer.shutdown()
    # Only multiprocessing's resource tracker may remain (it ends with this process).
    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    assert _children() <= {tracker}
