"""The lab service: one per runs folder, detached from every terminal, serving its session.

Started on demand by the first client (`trainer.lab.client.spawn_lab`) as `python -m trainer
lab serve` in its own session with no controlling terminal and its output in the lab log.
It owns the queue (on disk), one worker per device and the `RunSession` of every run it has
queued or trained; clients attach over the authenticated socket, get the whole state, then
every event batch. It exits after `idle_s` with no runs and no clients, on `lab stop`, or on
SIGTERM (stopping the runs in progress, which keep their finished epochs).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from multiprocessing.connection import Connection, Listener
from typing import Any

from trainer.events import Event, RunRequest, WorkerSettings, check_device
from trainer.host.session import RunSession
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
from trainer.lab.scheduler import LocalWorkers, Scheduler, load_queue
from trainer.store.apply import now_iso
from trainer.store.liveness import pid_alive
from trainer.store.runstore import RunStore

HELLO_TIMEOUT_S = 5.0
IDLE_EXIT_S = float(os.environ.get("CNN_TUI_LAB_IDLE_S", "300"))  # no runs, no clients


class _Client:
    def __init__(self, conn: Connection, hello: Hello) -> None:
        self.conn = conn
        self.hello = hello
        self.send_lock = threading.Lock()
        self.alive = True

    def send(self, message: Any) -> bool:
        with self.send_lock:
            if not self.alive:
                return False
            try:
                self.conn.send(message)
                return True
            except (OSError, ValueError, EOFError):
                self.alive = False
                return False


class Lab:
    """The running service (`serve` builds it, then calls `run`)."""

    def __init__(self, place: LabPlace, settings: WorkerSettings, devices: list[str],
                 idle_s: float, recovered: list[RunRequest], recovered_note: str) -> None:
        self.place = place
        self.devices = devices
        self.idle_s = idle_s
        self.workers = LocalWorkers(settings, devices)
        self.scheduler = Scheduler(self.workers, place.queue_file, recovered)
        self.session = RunSession(self.scheduler)
        self.session.sync_queue()
        self.recovered = recovered_note
        self.started = now_iso()
        self.lock = threading.RLock()
        self.clients: list[_Client] = []
        self.stopping = threading.Event()
        self._last_queue: QueueState | None = None

    # -- state -----------------------------------------------------------------------------
    def queue_state(self) -> QueueState:
        return QueueState(tuple(self.scheduler.pending()), tuple(self.scheduler.running()),
                          self.scheduler.held)

    def snapshot(self) -> Snapshot:
        with self.lock:
            return Snapshot(
                records=tuple(self.session.records.values()),
                progress=tuple(self.session.progress.values()),
                queue=self.queue_state(), devices=tuple(self.devices), lab_pid=os.getpid(),
                started=self.started,
                clients=tuple(f"{c.hello.client} (pid {c.hello.pid})" for c in self.clients
                              if c.alive),
                recovered=self.recovered)

    def broadcast(self, events: list[Event]) -> None:
        with self.lock:
            queue = self.queue_state()
            if not events and queue == self._last_queue:
                return
            self._last_queue = queue
            push = Push(tuple(events), queue)
            self.clients = [c for c in self.clients if c.send(push)]

    # -- clients -----------------------------------------------------------------------------
    def accept(self, listener: Listener) -> None:
        while not self.stopping.is_set():
            try:
                conn = listener.accept()
            except (OSError, EOFError):
                if self.stopping.is_set():
                    return
                continue  # a peer without the key (AuthenticationError is an OSError)
            except Exception:
                continue
            threading.Thread(target=self.serve_client, args=(conn,), daemon=True).start()

    def serve_client(self, conn: Connection) -> None:
        try:
            if not conn.poll(HELLO_TIMEOUT_S):
                conn.close()
                return
            hello = conn.recv()
        except Exception:
            conn.close()
            return
        if not isinstance(hello, Hello) or hello.protocol != PROTOCOL:
            theirs = getattr(hello, "protocol", "?")
            with contextlib.suppress(Exception):
                conn.send(Refused(PROTOCOL, f"this lab speaks protocol {PROTOCOL}, the client "
                                            f"{theirs}: stop it with 'cnn-tui lab stop' (or "
                                            f"kill {os.getpid()}) and start again"))
            conn.close()
            return
        client = _Client(conn, hello)
        with self.lock:
            client.send(Welcome(PROTOCOL, self.snapshot()))
            self.clients.append(client)
        while client.alive:
            try:
                command = conn.recv()
            except (EOFError, OSError):
                break
            except Exception:
                continue
            if isinstance(command, Command):
                client.send(self.execute(command))
                self.broadcast([])
        client.alive = False
        with contextlib.suppress(OSError):
            conn.close()

    def execute(self, command: Command) -> Reply:
        """One client command, under the lab lock, so racing clients see one queue."""
        args = command.args
        try:
            with self.lock:
                value: Any = None
                if command.name == "submit":
                    self.session.submit(list(args["requests"]))
                elif command.name == "stop":
                    run_id = args.get("run_id")
                    force = bool(args.get("force", False))
                    value = (self.scheduler.stop_run(run_id, force) if run_id
                             else self.scheduler.stop_current(force))
                elif command.name == "cancel_queued":
                    value = self.session.cancel_queue()
                    self.recovered = ""
                elif command.name == "cancel":
                    value = self.session.cancel_queue(only=set(args["run_ids"]))
                elif command.name == "resume":
                    self.scheduler.resume()
                    self.recovered = ""
                elif command.name == "status":
                    value = self.snapshot()
                elif command.name == "shutdown":
                    if self.scheduler.busy and not args.get("force"):
                        return Reply(command.id, False, error="runs are queued or training; "
                                     "use --force to stop them")
                    self.stopping.set()
                else:
                    return Reply(command.id, False, error=f"unknown command {command.name!r}")
                return Reply(command.id, True, (value, self.queue_state()))
        except Exception as exc:
            return Reply(command.id, False, error=f"{type(exc).__name__}: {exc}")

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        idle_since = time.monotonic()
        while not self.stopping.is_set():
            events = self.scheduler.poll(0.1)
            with self.lock:
                if events:
                    self.session.apply(events)
                self.broadcast(events)
                # A held queue waits on disk as well as here: it does not keep the lab up.
                waiting = bool(self.scheduler.pending()) and not self.scheduler.held
                active = (bool(self.scheduler.running()) or waiting
                          or any(c.alive for c in self.clients))
            if active:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > self.idle_s:
                break
        # Idle with a held queue: leave it on disk (the next lab offers it again).
        events = self.scheduler.shutdown(keep_queue=not self.stopping.is_set())
        with self.lock:
            self.session.apply(events)
            self.broadcast(events)
            for client in self.clients:
                with contextlib.suppress(OSError):
                    client.conn.close()


def devices_from(text: str | None, default: str) -> list[str]:
    """`--devices cuda:0,cuda:2` / CNN_TUI_DEVICES; else one worker on `default`."""
    if not text:
        return [default]
    items = []
    for part in (p for p in text.split(",") if p.strip()):
        try:
            items.append(check_device(part))
        except ValueError as exc:
            raise LabError(f"{exc} in the device list, comma-separated (e.g. "
                           "cuda:0,cuda:2)") from None
    return list(dict.fromkeys(items))


def visible_cuda_devices() -> list[str]:
    """Every CUDA device this machine shows, without importing torch: nvidia-smi's list,
    narrowed by CUDA_VISIBLE_DEVICES when set."""
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    count = sum(1 for line in out.splitlines() if line.startswith("GPU "))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = min(count, len([v for v in visible.split(",") if v.strip()]))
    return [f"cuda:{i}" for i in range(count)]


def serve(place: LabPlace, settings: WorkerSettings, devices: list[str],
          idle_s: float) -> int:
    """Run the lab until it is stopped or idle; 0 also when another lab already serves."""
    place.prepare()
    lock = os.open(place.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        return 0  # another lab holds this folder: clients connect to that one
    try:
        return _serve_locked(place, settings, devices, idle_s)
    finally:
        with contextlib.suppress(OSError):
            place.pid_file.unlink()
        os.close(lock)


def _serve_locked(place: LabPlace, settings: WorkerSettings, devices: list[str],
                  idle_s: float) -> int:
    note = ""
    old = place.pid()
    if old is not None and old != os.getpid() and not pid_alive(old):
        note = f"the previous lab (pid {old}) stopped unexpectedly"
    requests, problems = load_queue(place.queue_file)
    store = RunStore(settings.runs_dir or place.runs_dir)
    requests = [r for r in requests if (rec := store.get(r.run_id)) is None or not rec.terminal]
    if requests:
        n = len(requests)
        note = (note + "; " if note else "") + (
            f"{n} run{'s' * (n != 1)} that were waiting are held: resume or cancel them")
    for problem in problems:
        print(problem.message, flush=True)
    place.pid_file.write_text(f"{os.getpid()}\n")
    key = place.key(create=True)
    with contextlib.suppress(FileNotFoundError):
        place.socket.unlink()  # left by a lab that died: we hold the lock, so it is stale
    old_umask = os.umask(0o177)  # the socket is created 0600
    try:
        listener = Listener(str(place.socket), family="AF_UNIX", backlog=16, authkey=key)
    finally:
        os.umask(old_umask)
    lab = Lab(place, settings, devices, idle_s, requests, note)
    signal.signal(signal.SIGTERM, lambda *_: lab.stopping.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # no terminal to lose; never stop on it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(f"{now_iso()} lab {os.getpid()} serving {place.runs_dir} on {devices}", flush=True)
    lab.workers.prestart()
    threading.Thread(target=lab.accept, args=(listener,), daemon=True).start()
    try:
        lab.run()
    finally:
        lab.stopping.set()
        with contextlib.suppress(OSError):
            listener.close()
        with contextlib.suppress(OSError):
            place.socket.unlink()
    print(f"{now_iso()} lab {os.getpid()} stopped", flush=True)
    return 0
