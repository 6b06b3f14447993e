"""The one consumer of the trainer's event queue: a daemon thread that never blocks exit.

It calls `TrainerProcess.poll(timeout=…)` in a loop (poll also dispatches the next queued
request and notices a dead worker, so it must run even when nothing arrives), batches what it
reads and hands each batch to `deliver` — in the app, `post_message(TrainerEvents(...))`.
A change of the trainer's queue (a run dispatched, cancelled) is delivered too, as an empty
batch, so the UI re-reads the queue from the trainer, its only source of truth.

Back-pressure: while the UI has not yet handled the batches already posted (`ack`), new events
are accumulated instead of posted, and superseded `Progress` events are dropped, so a flood of
events costs one message per UI frame and bounded memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from trainer.events import Event, Progress, RunRequest

Deliver = Callable[[list[Event]], Any]


class EventSource(Protocol):
    """The part of `trainer.host.process.TrainerProcess` the bridge uses."""

    def poll(self, timeout: float = 0.1, max_events: int = 1000) -> list[Event]: ...
    def pending(self) -> list[RunRequest]: ...
    def current(self) -> RunRequest | None: ...


def squash_progress(events: list[Event]) -> list[Event]:
    """Drop every Progress that a later Progress of the same run supersedes (order kept)."""
    seen: set[str] = set()
    out: list[Event] = []
    for ev in reversed(events):
        if isinstance(ev, Progress):
            if ev.run_id in seen:
                continue
            seen.add(ev.run_id)
        out.append(ev)
    out.reverse()
    return out


class Bridge:
    """Moves events from the trainer to the UI thread in batches, on a daemon thread."""

    def __init__(self, source: EventSource, deliver: Deliver, *, timeout: float = 0.1,
                 min_interval: float = 0.05, max_inflight: int = 2,
                 on_error: Callable[[str], Any] | None = None) -> None:
        self.source = source
        self.deliver = deliver
        self.timeout = timeout
        self.min_interval = min_interval  # batch at least this long once events flow
        self.max_inflight = max_inflight
        self.on_error = on_error
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight = 0
        self._thread: threading.Thread | None = None
        self._last_queue: tuple[tuple[str, ...], str | None] = ((), None)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cnn-tui-bridge", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the loop to end and wait for it (it wakes at least every `timeout` s)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ack(self) -> None:
        """The UI finished handling one delivered batch."""
        with self._lock:
            self._inflight = max(0, self._inflight - 1)

    def _busy(self) -> bool:
        with self._lock:
            return self._inflight >= self.max_inflight

    def _run(self) -> None:
        batch: list[Event] = []
        first_at = 0.0
        errors = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                events = self.source.poll(timeout=self.timeout)
                pending = self.source.pending()
                current = self.source.current()
                errors = 0
            except Exception as exc:  # never let the thread die: the UI must stay informed
                errors += 1
                if errors == 1 and self.on_error is not None:
                    self.on_error(f"lost contact with the trainer process: {exc}")
                self._stop.wait(0.5)
                continue
            if events:
                if not batch:
                    first_at = time.monotonic()
                batch.extend(events)
                if len(batch) > 2000:
                    batch = squash_progress(batch)
            queue_key = (tuple(r.run_id for r in pending), current.run_id if current else None)
            queue_changed = queue_key != self._last_queue
            waited = time.monotonic() - first_at
            ready = bool(batch) and waited >= self.min_interval
            if (ready or (queue_changed and not batch)) and not self._busy():
                out, batch = squash_progress(batch), []
                with self._lock:
                    self._inflight += 1
                self._last_queue = queue_key
                try:
                    self.deliver(out)
                except Exception:  # the app is shutting down; nothing left to tell
                    return
            elif not events and time.monotonic() - started < self.timeout / 2:
                # poll returned at once (no worker yet): don't spin.
                self._stop.wait(self.timeout)
