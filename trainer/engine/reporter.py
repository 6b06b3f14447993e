"""One run's reporting from inside the worker: fold, persist, then send each event.

Torch-free, so it is tested without a worker.
"""

from __future__ import annotations

import dataclasses
import os
import sys
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
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
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
    it. A failed save (disk full) does not stop training: the user gets one warning per run.
    Torch-free, so it can be tested without a worker.
    """

    def __init__(self, store: Saver, send: Callable[[Event], None], request: RunRequest,
                 env: RunEnv | None = None) -> None:
        self.store = store
        self.send = send
        self.request = request
        self.run_id = request.run_id
        self.env = env or RunEnv()
        self.record: RunRecord | None = None
        self.terminal = False  # a RunFinished/RunStopped/RunFailed went out
        self.store_warned = False
        self.unsaved = False  # the last save failed: the file on disk is behind the record

    def emit(self, event: Event) -> None:
        event = plain_event(event)
        if isinstance(event, TERMINAL):
            if self.terminal:
                return  # one result per run, whatever happens afterwards
            self.terminal = True
        self.record = apply_event(self.record, event)
        notice = None
        if isinstance(event, (RunStarted, EpochEnd, *TERMINAL)):
            notice = self.save()
        self.send(event)
        if notice is not None:
            self.send(notice)

    def save(self) -> Notice | None:
        """Persist the record; on failure return the (first) warning to show."""
        assert self.record is not None
        try:
            self.store.save(self.record)
        except StoreError as exc:
            log(exc.message)
            self.unsaved = True
            if self.store_warned:
                return None
            self.store_warned = True  # once per run: the UI should not drown in warnings
            notice = Notice(message=f"{exc.message} — training goes on, but this run may not "
                            "be kept", level="warning", run_id=self.run_id, kind="unsaved")
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
