"""One run's reporting from inside the worker: fold, persist, then send each event.

Torch-free, so it is tested without a worker.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from trainer.events import TERMINAL, EpochEnd, Event, Notice, RunFailed, RunRequest, RunStarted
from trainer.store.apply import apply_event, now_iso
from trainer.store.record import RunEnv, RunRecord, RunStatus
from trainer.store.runstore import StoreError
from trainer.text import first_line

_verbose = False  # log progress lines only into a log file, never onto a user's terminal


def set_verbose(on: bool) -> None:
    global _verbose
    _verbose = on


def log(text: str, always: bool = False) -> None:
    """A line in the worker log (stderr is the log file when a UI owns the terminal)."""
    if not (_verbose or always):
        return
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [worker {os.getpid()}] {text}",
          file=sys.stderr, flush=True)


class Saver(Protocol):
    """Where a reporter persists records: a RunStore (or a test's stand-in)."""

    def save(self, record: RunRecord) -> Any: ...


def _plain(value: Any) -> Any:
    """`value` as builtin Python types. Events are unpickled in the torch-free parent: a
    torch or numpy scalar (or torch's TorchVersion string) in an event would import torch
    there, or fail to unpickle."""
    kind = type(value)
    if kind in (str, int, float, bool) or value is None:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain_event(value)  # type: ignore[arg-type]  # nested: LayerStats, TestDiagnosis
    if hasattr(value, "item"):  # numpy / torch scalars
        return _plain(value.item())
    return str(value)


def plain_event(event: Event) -> Event:
    """The event with every field a builtin (a copy only when something had to change)."""
    changes = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if type(value) not in (str, int, float, bool):
            plain = _plain(value)
            if plain is not value:
                changes[f.name] = plain
    return dataclasses.replace(event, **changes) if changes else event


class RunReporter:
    """One run's reporting: fold each event into the record, persist it at the durable points
    (RunStarted, every EpochEnd, the end), then send it on.

    Saving before sending means that whenever the parent sees an event, the store already has
    it. With `background`, saving and sending happen on a thread of their own, in order, so
    the training thread never waits for a disk (two fsyncs per epoch end); `close` waits for
    everything to be out. A failed save (disk full) does not stop training: the user gets one
    warning per run. Torch-free, so it can be tested without a worker.
    """

    def __init__(self, store: Saver, send: Callable[[Event], None], request: RunRequest,
                 env: RunEnv | None = None, background: bool = False) -> None:
        self.store = store
        self.send = send
        self.request = request
        self.run_id = request.run_id
        self.env = env or RunEnv()
        self.record: RunRecord | None = None
        self.terminal = False  # a RunFinished/RunStopped/RunFailed went out
        self.store_warned = False
        self.unsaved = False  # the last save failed: the file on disk is behind the record
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[Event, RunRecord | None] | None] | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._drain, daemon=True,
                                            name=f"save-{self.run_id}")
            self._thread.start()

    def emit(self, event: Event) -> None:
        event = plain_event(event)
        with self._lock:
            if isinstance(event, TERMINAL):
                if self.terminal:
                    return  # one result per run, whatever happens afterwards
                self.terminal = True
            self.record = apply_event(self.record, event)
            durable = isinstance(event, (RunStarted, EpochEnd, *TERMINAL))
            snapshot = self.record if durable else None
        if self._queue is None:
            self._deliver(event, snapshot)
        else:
            self._queue.put((event, snapshot))

    def close(self) -> None:
        """Wait until every event is saved and sent (the end of the run)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None

    def _drain(self) -> None:
        assert self._queue is not None
        while (item := self._queue.get()) is not None:
            self._deliver(*item)

    def _deliver(self, event: Event, snapshot: RunRecord | None) -> None:
        notice = self._save(snapshot) if snapshot is not None else None
        self.send(event)
        if notice is not None:
            self.send(notice)

    def _save(self, record: RunRecord) -> Notice | None:
        """Persist `record`; on failure return the (first) warning to show."""
        try:
            self.store.save(record)
        except StoreError as exc:
            log(exc.message)
            self.unsaved = True
            if self.store_warned:
                return None
            self.store_warned = True  # once per run: the UI should not drown in warnings
            notice = Notice(message=f"{exc.message} — training goes on, but this run may not "
                            "be kept", level="warning", run_id=self.run_id, kind="unsaved")
            with self._lock:
                self.record = apply_event(self.record, notice)
            return notice
        if self.unsaved:  # the disk has room again: this save holds every epoch so far
            self.unsaved = False
            return Notice(message=f"run {self.run_id} is saved again (every epoch so far)",
                          level="info", run_id=self.run_id, kind="saved")
        return None

    def fail(self, kind: str, message: str, tb: str = "") -> None:
        """Report the run as failed; a run that never started still gets a stored record."""
        if self.record is None:
            stamp = now_iso()
            self.record = RunRecord.from_request(self.request, RunStatus.RUNNING,
                                                 created=stamp).with_changes(env=self.env)
        if tb:
            log(f"run {self.run_id} failed ({kind}): {first_line(message)}\n{tb}")
        self.emit(RunFailed(run_id=self.run_id, kind=kind, message=message, traceback=tb))
