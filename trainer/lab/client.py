"""LabClient: a `TrainerHandle` that talks to the lab, so the TUI and `cnn-tui run` are clients.

`connect` finds the lab serving a runs folder, starting one (fully detached) when there is
none, proves the key and receives the whole current state (`snapshot`); a reader thread then
queues every pushed event batch for `poll` and keeps the queue as the lab last described it.
`shutdown` only detaches: the runs go on. When the lab disappears under a client (killed,
out of memory), the runs it was training are reported as interrupted and the next command
starts a new lab.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from trainer.events import Event, Notice, RunInterrupted, RunRequest, WorkerSettings
from trainer.lab.place import LabError, LabPlace
from trainer.lab.protocol import (
    PROTOCOL,
    Command,
    Hello,
    Push,
    QueueState,
    Refused,
    Reply,
    Snapshot,
    Welcome,
)

START_TIMEOUT_S = 20.0
REPLY_TIMEOUT_S = 30.0


def _dial(place: LabPlace) -> Connection | None:
    """A connection to the lab, or None when nobody listens (no socket, a stale one)."""
    if not place.key_file.exists():
        return None  # a lab writes its key before it listens: whatever socket is there is stale
    try:
        return Client(str(place.socket), family="AF_UNIX", authkey=place.key())
    except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError,
            EOFError):
        return None  # (reset: a lab that is dying still had its socket open)
    except AuthenticationError:
        raise LabError(f"the lab at {place.socket} did not accept our key ({place.key_file}); "
                       "stop it ('cnn-tui lab stop --force') and start again") from None


def spawn_lab(place: LabPlace, settings: WorkerSettings,
              devices: str | None) -> subprocess.Popen[bytes]:
    """Start `python -m trainer lab serve` in its own session, with no terminal."""
    place.prepare()
    cmd = [sys.executable, "-m", "trainer", "lab", "serve", "--runs-dir", str(place.runs_dir),
           "--device", settings.device or "auto"]
    if settings.data_dir:
        cmd += ["--data-dir", str(settings.data_dir)]
    if devices:
        cmd += ["--devices", devices]
    # The lab runs the same code as this client (a checkout, not whatever is installed).
    here = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (here, os.environ.get("PYTHONPATH", "")) if p)}
    log = open(place.log_file, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True, cwd=str(place.root),
                                env=env)
    finally:
        log.close()


def _open(place: LabPlace, client: str, settings: WorkerSettings, devices: str | None,
          start: bool) -> tuple[Connection, Welcome]:
    """Dial the lab (starting it if `start`), say hello, get the whole state."""
    place.prepare()
    conn = _dial(place)
    if conn is None:
        if not start:
            raise LabError(f"no lab is running for {place.runs_dir}")
        lab = spawn_lab(place, settings, devices)
        deadline = time.monotonic() + START_TIMEOUT_S
        while conn is None and time.monotonic() < deadline:
            time.sleep(0.05)
            conn = _dial(place)
            if conn is None and lab.poll() is not None:
                # It found the folder's lock still held (a dying lab has not let go yet)
                # and left; try again until the old one is gone.
                lab = spawn_lab(place, settings, devices)
        if conn is None:
            raise LabError(f"the lab did not start within {START_TIMEOUT_S:.0f} s; see "
                           f"{place.log_file}")
    try:
        conn.send(Hello(PROTOCOL, client, os.getpid()))
        if not conn.poll(REPLY_TIMEOUT_S):
            raise LabError(f"the lab at {place.socket} did not answer")
        answer = conn.recv()
    except (OSError, EOFError) as exc:
        conn.close()
        raise LabError(f"the lab at {place.socket} hung up: {exc or 'no reason'}") from None
    except LabError:
        conn.close()
        raise
    if isinstance(answer, Refused):
        conn.close()
        raise LabError(f"a lab of another version is running for {place.runs_dir}: "
                       f"{answer.message}")
    if not isinstance(answer, Welcome):
        conn.close()
        raise LabError(f"the lab at {place.socket} answered {type(answer).__name__}")
    return conn, answer


class LabClient:
    """Submit, stop, cancel, resume and follow the runs of one lab."""

    def __init__(self, runs_dir: str, client: str, settings: WorkerSettings | None = None,
                 devices: str | None = None, start: bool = True) -> None:
        self.place = LabPlace.for_runs(runs_dir)
        self.client = client
        self.settings = settings or WorkerSettings(runs_dir=str(self.place.runs_dir))
        self.devices_arg = devices
        self.can_start = start
        self._lock = threading.Condition()
        self._events: deque[Event] = deque()
        self._replies: dict[int, Reply] = {}
        self._ids = itertools.count(1)
        self._conn: Connection | None = None
        self.lost = False
        self.closed = False
        self._attach(*_open(self.place, client, self.settings, devices, start))

    @classmethod
    def connect(cls, runs_dir: str, client: str, settings: WorkerSettings | None = None,
                devices: str | None = None, start: bool = True) -> LabClient:
        """Attach to the folder's lab, starting one if `start`; LabError says why not."""
        return cls(runs_dir, client, settings, devices, start)

    def _attach(self, conn: Connection, welcome: Welcome) -> None:
        with self._lock:
            self._conn = conn
            self.snapshot: Snapshot = welcome.snapshot
            self._queue: QueueState = welcome.snapshot.queue
            self.lost = False
        threading.Thread(target=self._read, args=(conn,), daemon=True,
                         name="cnn-tui-lab-client").start()

    # -- TrainerHandle -----------------------------------------------------------------------
    def pending(self) -> list[RunRequest]:
        with self._lock:
            return list(self._queue.pending)

    def current(self) -> RunRequest | None:
        with self._lock:
            return self._queue.running[0][0] if self._queue.running else None

    def running(self) -> list[tuple[RunRequest, str]]:
        with self._lock:
            return list(self._queue.running)

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._queue.pending or self._queue.running)

    @property
    def held(self) -> bool:
        with self._lock:
            return self._queue.held and bool(self._queue.pending)

    @property
    def devices(self) -> tuple[str, ...]:
        return self.snapshot.devices

    def submit(self, requests: RunRequest | Iterable[RunRequest]) -> None:
        batch = [requests] if isinstance(requests, RunRequest) else list(requests)
        self.call("submit", requests=batch)

    def stop_current(self, force: bool = False) -> bool:
        return bool(self.call("stop", force=force))

    def stop_run(self, run_id: str, force: bool = False) -> bool:
        return bool(self.call("stop", run_id=run_id, force=force))

    def cancel_queued(self) -> list[RunRequest]:
        return list(self.call("cancel_queued") or [])

    def cancel(self, run_ids: Iterable[str]) -> list[RunRequest]:
        return list(self.call("cancel", run_ids=list(run_ids)) or [])

    def resume(self) -> None:
        self.call("resume")

    def status(self) -> Snapshot:
        return self.call("status")

    def stop_lab(self, force: bool = False) -> None:
        self.call("shutdown", force=force)

    def poll(self, timeout: float = 0.1, max_events: int = 1000) -> list[Event]:
        with self._lock:
            if not self._events and not self.closed:
                self._lock.wait(timeout)
            out = [self._events.popleft() for _ in range(min(max_events, len(self._events)))]
        return out

    def shutdown(self, timeout: float = 3.0) -> list[Event]:
        """Detach (the lab and its runs go on); idempotent."""
        with self._lock:
            self.closed = True
            conn, self._conn = self._conn, None
            self._lock.notify_all()
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
        return []

    # -- inside ------------------------------------------------------------------------------
    def call(self, name: str, **args: Any) -> Any:
        """Send a command and wait for its reply; RuntimeError carries the lab's reason.
        After the lab died under us, a new one is started first (it holds the old queue)."""
        if self.lost and self.can_start and not self.closed:
            try:
                self._reconnect()
            except LabError as exc:
                raise RuntimeError(str(exc)) from None
        with self._lock:
            conn = self._conn
            if conn is None or self.lost:
                raise RuntimeError("the lab is not reachable (it stopped); run the command "
                                   "again to start a new one")
            command = Command(next(self._ids), name, args)
            try:
                conn.send(command)
            except (OSError, ValueError) as exc:
                raise RuntimeError(f"the lab is not reachable: {exc}") from None
            deadline = time.monotonic() + REPLY_TIMEOUT_S
            while command.id not in self._replies:
                if self.lost or time.monotonic() > deadline:
                    raise RuntimeError("the lab did not answer")
                self._lock.wait(0.1)
            reply = self._replies.pop(command.id)
        if not reply.ok:
            raise RuntimeError(reply.error)
        value, queue = reply.value
        with self._lock:
            self._queue = queue
        return value

    def _read(self, conn: Connection) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            except Exception:
                continue
            with self._lock:
                if isinstance(message, Reply):
                    self._replies[message.id] = message
                elif isinstance(message, Push):
                    self._events.extend(message.events)
                    self._queue = message.queue
                self._lock.notify_all()
        with self._lock:
            if self.closed or self._conn is not conn:
                return
            self.lost = True
            cut = [req for req, _ in self._queue.running]
            self._events.append(Notice(
                "the lab stopped unexpectedly; runs in progress are kept as interrupted "
                f"(see {self.place.log_file})", "error"))
            for req in cut:
                self._events.append(RunInterrupted(
                    req.run_id, "the lab stopped before this run ended"))
            # The waiting runs are in the dead lab's queue file: the next lab holds them
            # until someone resumes or cancels, and so does this view.
            self._queue = QueueState(pending=self._queue.pending, held=True)
            self._lock.notify_all()

    def _reconnect(self) -> None:
        """The lab died under us: the next command starts (or finds) a new one."""
        self._attach(*_open(self.place, self.client, self.settings, self.devices_arg, True))
