"""TrainerProcess: the parent-side handle on the training worker, shared by the TUI and CLI.

Design notes (each one fixes a real failure mode):
- One spawn-context child (never fork: CUDA cannot be forked, and the TUI has threads).
- The queue of runs lives here, in the parent; the worker gets one request at a time. So
  cancelling queued runs is trivial, and a dead worker loses nothing that was waiting.
  Where runs train together (repeats that differ only in their seed, on CUDA by default:
  see `grouping`), one "request" is a list of up to MAX_GROUP of them, sent as one batch;
  each still ends on its own, and the next batch goes out when all of them have.
- Requests and events travel over plain pipes created fresh for every worker, and the stop
  request is a lock-free shared byte. multiprocessing Queues/Events hold semaphores; a worker
  killed while holding one would wedge every later worker (or the UI calling stop).
- Everything that needs multiprocessing's resource tracker is set up in __init__, before a
  Textual app runs: starting the tracker while Textual has swapped sys.stderr fails with
  "bad value(s) in fds_to_keep".
- poll() never blocks for long, so a consumer thread can always notice shutdown.
- This module must not import torch or the engine (the TUI imports it): the child is named
  by `trainer.host.spawn.worker_entry` and imports the engine itself.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import replace
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from typing import Any

from trainer import paths
from trainer.config import shared_step_key
from trainer.events import (
    TERMINAL,
    Event,
    Notice,
    RunFailed,
    RunRequest,
    RunStarted,
    RunStopped,
    WorkerSettings,
)
from trainer.host.spawn import worker_entry
from trainer.store.apply import now_iso, terminal_event
from trainer.store.record import RunError, RunRecord, RunStatus
from trainer.store.runstore import RunStore, StoreError
from trainer.text import first_line

MAX_DEATHS_IN_A_ROW = 3  # a worker that keeps dying fails the rest of the queue, not forever
MAX_GROUP = 8  # runs trained together at most (a lesson has 3 repeats per variant by default)
GROUP_ENV = "CNN_TUI_GROUP"  # auto | on | off: WorkerSettings.group when that is unset
GROUP_MODES = ("auto", "on", "off")
GRAPHS_ENV = "CNN_TUI_CUDA_GRAPHS"  # auto | on | off: WorkerSettings.cuda_graphs when unset
GRAPHS_MODES = ("auto", "on", "off")


def grouping(settings: WorkerSettings) -> str:
    """The group mode: the setting, else $CNN_TUI_GROUP, else auto (unknown text: auto)."""
    value = (settings.group or os.environ.get(GROUP_ENV, "")).strip().lower()
    return value if value in GROUP_MODES else "auto"


def graphing(settings: WorkerSettings) -> str:
    """The CUDA graph mode: the setting, else $CNN_TUI_CUDA_GRAPHS, else auto (unknown text:
    auto). "auto" and "on" both graph on CUDA only; "off" never."""
    value = (settings.cuda_graphs or os.environ.get(GRAPHS_ENV, "")).strip().lower()
    return value if value in GRAPHS_MODES else "auto"


class TrainerProcess:
    """Queue runs, stream their events, stop/cancel them, survive a worker crash.

    Thread-safe: any thread may submit/stop/cancel; exactly one consumer thread calls poll().
    """

    def __init__(self, settings: WorkerSettings | None = None) -> None:
        settings = settings or WorkerSettings()
        self.settings = replace(
            settings,
            runs_dir=str(settings.runs_dir or paths.runs_dir()),
            data_dir=str(settings.data_dir) if settings.data_dir else None,
            log_path=str(settings.log_path) if settings.log_path else None,
        )
        self.settings = replace(self.settings, group=grouping(self.settings),
                                cuda_graphs=graphing(self.settings))
        self.store = RunStore(self.settings.runs_dir)
        self._ctx = multiprocessing.get_context("spawn")
        resource_tracker.ensure_running()  # now, not while Textual owns stderr
        self._stop_flag = self._ctx.RawValue("b", 0)  # lock-free on purpose (see module doc)
        self._run_flags = self._ctx.RawArray("b", MAX_GROUP)  # stop one run of a batch
        self._lock = threading.RLock()
        self._wake = threading.Event()  # lets an idle poll() return early on submit
        self._pending: deque[RunRequest] = deque()
        self._batch: list[RunRequest] = []  # with the worker, until each one has ended
        self._force_stopped: set[str] = set()  # run ids killed by stop_current(force=True)
        self._cuda_seen = False  # a run of this process's worker trained on CUDA
        self._proc: Any = None
        self._requests: Connection | None = None  # parent → worker
        self._events: Connection | None = None  # worker → parent
        self._outbox: list[Event] = []  # events made here (worker died), returned by poll()
        self._deaths = 0
        self._held = False  # after a data failure: wait for the caller's decision
        self._closed = False
        atexit.register(self.shutdown)

    # -- queries ------------------------------------------------------------------------
    def pending(self) -> list[RunRequest]:
        """Runs waiting for their turn, next first."""
        with self._lock:
            return list(self._pending)

    def current(self) -> RunRequest | None:
        """The run the worker is on (from dispatch until its terminal event); the first of
        them when runs train together (see `running`)."""
        with self._lock:
            return self._batch[0] if self._batch else None

    def running(self) -> list[RunRequest]:
        """Every run the worker is on: one, or the runs that train together."""
        with self._lock:
            return list(self._batch)

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._batch or self._pending)

    @property
    def worker_pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    # -- commands -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker now (it imports torch in the background), so the first run
        does not wait for it. Optional: submit() starts it when needed."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the trainer process has been shut down")
            if not self._alive_locked():
                self._start_worker_locked()

    def submit(self, requests: RunRequest | Iterable[RunRequest]) -> None:
        """Queue runs (in order); the first starts at once if the worker is idle."""
        batch = [requests] if isinstance(requests, RunRequest) else list(requests)
        with self._lock:
            if self._closed:
                raise RuntimeError("the trainer process has been shut down")
            self._pending.extend(batch)
            self._held = False
            self._dispatch_locked()
        self._wake.set()

    def stop_current(self, force: bool = False) -> bool:
        """Ask the current run (every run training together) to stop; it ends within one
        batch as RunStopped, keeping its finished epochs. force=True kills the worker instead
        (for a run stuck before its first batch, e.g. in a long download); it is reported as
        RunStopped too. Returns False when nothing was running."""
        with self._lock:
            if not self._batch:
                return False
            self._stop_flag.value = 1
            if force and self._alive_locked():
                self._force_stopped = {r.run_id for r in self._batch}
                self._proc.kill()
            return True

    def stop_run(self, run_id: str, force: bool = False) -> bool:
        """Stop this run if it is training (see stop_current). Of runs training together only
        this one stops; force=True kills the worker, which stops all of them."""
        with self._lock:
            ids = [r.run_id for r in self._batch]
            if run_id not in ids:
                return False
            if len(ids) > 1 and not force:
                self._run_flags[ids.index(run_id)] = 1
                return True
        return self.stop_current(force)

    def cancel_queued(self) -> list[RunRequest]:
        """Drop every waiting run (the current one keeps going); returns what was dropped."""
        with self._lock:
            dropped = list(self._pending)
            self._pending.clear()
            self._held = False
            return dropped

    def cancel(self, run_ids: Iterable[str]) -> list[RunRequest]:
        """Drop the waiting runs with these ids; returns what was dropped."""
        ids = set(run_ids)
        with self._lock:
            dropped = [r for r in self._pending if r.run_id in ids]
            self._pending = deque(r for r in self._pending if r.run_id not in ids)
            self._held = False
            self._dispatch_locked()
        self._wake.set()
        return dropped

    def resume(self) -> None:
        """Go on with the queue after a data failure held it (see `held`)."""
        with self._lock:
            self._held = False
            self._dispatch_locked()
        self._wake.set()

    @property
    def held(self) -> bool:
        """True after a run failed for want of its dataset: the runs still waiting would
        fail the same way, so none starts until the caller submits, cancels or resumes."""
        with self._lock:
            return self._held and bool(self._pending)

    # -- the event pump -----------------------------------------------------------------
    def poll(self, timeout: float = 0.1, max_events: int = 1000) -> list[Event]:
        """Wait up to `timeout` s for events, then return at most `max_events` of them.

        Also moves the queue along (next run when the current one ended) and notices a dead
        worker: its run becomes RunFailed(kind="worker_died"), in the store too, and the next
        run gets a fresh worker. Call from one consumer thread only.
        """
        with self._lock:
            ready = self._outbox or self._closed
            conn, proc = self._events, self._proc
        if not ready:
            if conn is not None and proc is not None:
                with contextlib.suppress(OSError, ValueError):
                    wait([conn, proc.sentinel], timeout)
            else:
                self._wake.wait(timeout)
                self._wake.clear()
        with self._lock:
            out, self._outbox = self._outbox[:max_events], self._outbox[max_events:]
            if self._closed or self._events is not conn:
                return out
            eof = self._read_locked(out, max_events)
            dead = self._proc is not None and (eof or not self._proc.is_alive())
            if dead and len(out) < max_events:
                self._read_locked(out, max_events)  # anything sent just before dying
                if len(out) < max_events:
                    self._outbox.extend(self._worker_died_locked())
            self._dispatch_locked()
            extra, self._outbox = self._outbox[: max_events - len(out)], self._outbox[
                max_events - len(out):]
            out.extend(extra)
            return out

    def _read_locked(self, out: list[Event], max_events: int) -> bool:
        """Drain ready events into `out`; True when the worker's end is closed (EOF)."""
        conn = self._events
        if conn is None:
            return True
        while len(out) < max_events:
            try:
                if not conn.poll():
                    return False
                event = conn.recv()
            except (EOFError, OSError):
                return True
            except Exception as exc:  # an event this side cannot unpickle: say so, go on
                out.append(Notice(f"unreadable message from the trainer process: "
                                  f"{type(exc).__name__}: {exc}", "error"))
                continue
            out.append(event)
            self._note_locked(event)
        return False

    def _note_locked(self, event: Event) -> None:
        run_id = getattr(event, "run_id", None)
        if not any(r.run_id == run_id for r in self._batch):
            return
        if isinstance(event, RunStarted):
            self._deaths = 0
            self._cuda_seen = self._cuda_seen or event.device.startswith("cuda")
        elif isinstance(event, TERMINAL):
            self._batch = [r for r in self._batch if r.run_id != run_id]
            self._deaths = 0
            if isinstance(event, RunFailed) and event.kind == "data":
                self._held = True

    # -- worker lifecycle ---------------------------------------------------------------
    def _alive_locked(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _start_worker_locked(self) -> None:
        self._reap_locked()
        req_r, req_w = self._ctx.Pipe(duplex=False)
        ev_r, ev_w = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=worker_entry, name="cnn-tui-trainer", daemon=True,
                                 args=(req_r, ev_w, self._stop_flag, self.settings,
                                       self._run_flags))
        try:
            proc.start()
        except BaseException:
            for conn in (req_w, ev_r):
                conn.close()
            raise
        finally:
            # The child has its own copies now. Closing ours is what makes the worker's
            # death show up here as EOF, and keeps fds from piling up across restarts.
            req_r.close()
            ev_w.close()
        self._proc, self._requests, self._events = proc, req_w, ev_r

    def _dispatch_locked(self) -> None:
        """Hand the next waiting run (or runs to train together) to the worker if it is free
        (starting one if needed)."""
        while not self._batch and self._pending and not self._closed and not self._held:
            batch = self._next_batch_locked()
            try:
                if not self._alive_locked():
                    self._start_worker_locked()
                self._stop_flag.value = 0  # before sending: a stop can only target this batch
                for i in range(MAX_GROUP):
                    self._run_flags[i] = 0
                assert self._requests is not None
                self._requests.send(batch if len(batch) > 1 else batch[0])
            except Exception as exc:  # cannot start or reach a worker: fail these runs, go on
                self._reap_locked()
                reason = first_line(str(exc)) or "no reason given"
                for request in batch:
                    self._fail_unstarted_locked(request, f"could not start the trainer "
                                                f"process: {type(exc).__name__}: {reason}")
                continue
            self._batch = batch

    def _groups_locked(self) -> bool:
        """Whether runs go to the worker in batches to train together: grouping forced on, or
        auto and the worker trains on CUDA (asked for, or seen in a RunStarted: a parent
        never imports torch to find out)."""
        mode = self.settings.group
        cuda = self.settings.device.startswith("cuda") or self._cuda_seen
        return mode == "on" or (mode == "auto" and cuda)

    def mates(self, first: RunRequest, waiting: Iterable[RunRequest]) -> list[RunRequest]:
        """The runs of `waiting` this worker would train together with `first`: those that
        can share its training step (the same config but for the seed), in order; none
        where runs train one at a time here."""
        with self._lock:
            key = shared_step_key(first.config) if self._groups_locked() else None
        if key is None:
            return []
        return [r for r in waiting if shared_step_key(r.config) == key][:MAX_GROUP - 1]

    def _next_batch_locked(self) -> list[RunRequest]:
        """The next waiting run, with the waiting runs that train together with it."""
        first = self._pending.popleft()
        batch = [first, *self.mates(first, self._pending)]
        for request in batch[1:]:
            self._pending.remove(request)
        return batch

    def _worker_died_locked(self) -> list[Event]:
        """The worker is gone: settle its run (store and event) and clean up."""
        code = self._proc.exitcode if self._proc is not None else None
        if code is None and self._proc is not None:
            self._proc.join(0.5)  # EOF came first; the exit status follows in a moment
            code = self._proc.exitcode
        self._reap_locked()
        out: list[Event] = []
        batch, self._batch = self._batch, []
        if not batch:
            if code not in (0, None):
                out.append(Notice(f"{describe_exit(code)}; a new one starts with the next run",
                                  "warning"))
            return out
        stopped, self._force_stopped = self._force_stopped, set()
        died = [r for r in batch if r.run_id not in stopped]
        for request in batch:
            if request.run_id in stopped:
                out.extend(self._settle_locked(request, RunStatus.STOPPED, None))
        if not died:
            return out
        self._deaths += 1
        message = describe_exit(code)
        if self.settings.log_path:
            message += f" — see {self.settings.log_path}"
        error = RunError("worker_died", message)
        for request in died:
            out.extend(self._settle_locked(request, RunStatus.FAILED, error))
        if self._deaths >= MAX_DEATHS_IN_A_ROW and self._pending:
            reason = (f"not started: the trainer process died {self._deaths} times in a row "
                      f"(last: {message})")
            while self._pending:
                self._fail_unstarted_locked(self._pending.popleft(), reason)
        return out

    def _settle_locked(self, request: RunRequest, status: RunStatus,
                       error: RunError | None) -> list[Event]:
        """Record the end of a run the worker could not report, and make its event."""
        notices: list[Event] = []
        rec = self.store.get(request.run_id)
        lost = terminal_event(rec) if rec is not None else None
        if lost is not None:  # the worker saved its result but died before sending it
            return [lost]
        epochs = len(rec.history) if rec is not None else 0
        try:
            if rec is None:
                stamp = now_iso()
                self.store.save(RunRecord.from_request(request, status, created=stamp)
                                .with_changes(error=error))
            else:
                self.store.mark(request.run_id, status, error)
        except StoreError as exc:
            notices.append(Notice(exc.message, "warning", request.run_id))
        if status is RunStatus.STOPPED or error is None:
            return [*notices, RunStopped(run_id=request.run_id, epochs_done=epochs)]
        return [*notices, RunFailed(run_id=request.run_id, kind=error.kind,
                                    message=error.message)]

    def _fail_unstarted_locked(self, request: RunRequest, message: str) -> None:
        error = RunError("worker_died", message)
        self._outbox.extend(self._settle_locked(request, RunStatus.FAILED, error))

    def _reap_locked(self) -> None:
        """Forget the current worker: close our pipe ends and release the process object."""
        for conn in (self._requests, self._events):
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
        self._requests = self._events = None
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join(1.0)
            with contextlib.suppress(ValueError):
                proc.close()

    # -- shutdown -----------------------------------------------------------------------
    def shutdown(self, timeout: float = 3.0) -> list[Event]:
        """Stop the current run, drop the queue and end the worker; idempotent.

        Waits up to `timeout` s for a clean exit (the run in progress stops within one batch
        and is saved as stopped), then terminates/kills. Returns the events that arrived
        meanwhile (e.g. the final RunStopped) for callers that want to show them.
        """
        with self._lock:
            if self._closed:
                return []
            self._closed = True
            atexit.unregister(self.shutdown)
            self._pending.clear()
            out: list[Event] = list(self._outbox)
            self._outbox = []
            proc, conn = self._proc, self._events
            if proc is not None:
                self._stop_flag.value = 1
                with contextlib.suppress(OSError, ValueError):
                    assert self._requests is not None
                    self._requests.send(None)
                deadline = time.monotonic() + timeout
                while proc.is_alive() and time.monotonic() < deadline:
                    with contextlib.suppress(OSError, ValueError):
                        ready = [proc.sentinel] if conn is None else [conn, proc.sentinel]
                        wait(ready, max(0.0, deadline - time.monotonic()))
                    self._read_locked(out, 10**9)  # keep its pipe from filling up
                if proc.is_alive():
                    proc.terminate()
                    proc.join(1.0)
                self._read_locked(out, 10**9)
                if self._batch:  # never reported an end: settle them
                    self._force_stopped = {r.run_id for r in self._batch}
                    out.extend(self._worker_died_locked())
                self._reap_locked()
            self._wake.set()
            return out

    def __enter__(self) -> TrainerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def describe_exit(code: int | None) -> str:
    """Human text for a worker exit status (negative = killed by a signal)."""
    if code is None:
        return "trainer process died"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " — the system may have run out of memory" if name == "SIGKILL" else ""
        return f"trainer process died (exit code {code}, killed by {name}{hint})"
    return f"trainer process died (exit code {code})"
