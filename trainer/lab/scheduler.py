"""The queue of a lab and the workers that train it: one run per free worker, next first.

`Workers` is the one interface between the queue and whatever trains: here one trainer
process per device (`LocalWorkers`); a cluster backend would implement the same six methods.
A slot may take several runs at once when they train together (`mates`: repeats that differ
only in their seed, on CUDA); it is free again when all of them have ended.
`Scheduler` is a `TrainerHandle` (the session model drives it like a single trainer), keeps
the waiting runs on disk so a lab that dies loses none of them, and holds the queue when a
decision is needed: after a data failure (the others on that dataset would fail alike) or
when a queue is recovered from a lab that died.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Protocol

from trainer.events import TERMINAL, Event, Notice, RunFailed, RunRequest, WorkerSettings
from trainer.files import FileRefused, read_bounded
from trainer.host.process import TrainerProcess
from trainer.store.atomic import atomic_write

MAX_QUEUE_BYTES = 64 * 1024 * 1024


class Workers(Protocol):
    """Where runs train; each slot (a device name) takes one run, or one batch of runs that
    train together, at a time."""

    def slots(self) -> list[str]: ...
    def mates(self, slot: str, first: RunRequest,
              waiting: list[RunRequest]) -> list[RunRequest]: ...
    def start(self, slot: str, requests: list[RunRequest]) -> None: ...
    def stop(self, slot: str, force: bool = False, run_id: str | None = None) -> bool: ...
    def poll(self, timeout: float) -> list[Event]: ...
    def shutdown(self, timeout: float = 3.0) -> list[Event]: ...


class LocalWorkers:
    """One `TrainerProcess` (a spawned worker) per device on this machine."""

    def __init__(self, settings: WorkerSettings, devices: list[str]) -> None:
        self._procs = {d: TrainerProcess(replace(settings, device=d)) for d in devices}

    def slots(self) -> list[str]:
        return list(self._procs)

    def mates(self, slot: str, first: RunRequest,
              waiting: list[RunRequest]) -> list[RunRequest]:
        """The waiting runs this slot would train together with `first` (none if it trains
        one at a time)."""
        return self._procs[slot].mates(first, waiting)

    def start(self, slot: str, requests: list[RunRequest]) -> None:
        self._procs[slot].submit(requests)

    def stop(self, slot: str, force: bool = False, run_id: str | None = None) -> bool:
        proc = self._procs[slot]
        return proc.stop_current(force) if run_id is None else proc.stop_run(run_id, force)

    def prestart(self) -> None:
        """Start every worker now, so the first runs do not wait for torch to import."""
        for proc in self._procs.values():
            with contextlib.suppress(Exception):  # the run will report why it cannot start
                proc.start()

    def poll(self, timeout: float) -> list[Event]:
        procs = list(self._procs.values())
        out: list[Event] = []
        for i, proc in enumerate(procs):
            out += proc.poll(timeout if i == 0 and not out else 0.0)
        return out

    def shutdown(self, timeout: float = 3.0) -> list[Event]:
        out: list[Event] = []
        for proc in self._procs.values():
            out += proc.shutdown(timeout)
        return out


class Scheduler:
    """The lab's queue over `Workers`; thread-safe, one consumer thread calls poll()."""

    def __init__(self, workers: Workers, queue_file: Path | None = None,
                 recovered: list[RunRequest] | None = None) -> None:
        self.workers = workers
        self.queue_file = queue_file
        self._lock = threading.RLock()
        self._pending: deque[RunRequest] = deque(recovered or [])
        self._running: dict[str, tuple[RunRequest, str]] = {}  # run id → (request, slot)
        self._held = bool(recovered)
        self._closed = False
        self._save()

    # -- TrainerHandle -------------------------------------------------------------------
    def pending(self) -> list[RunRequest]:
        with self._lock:
            return list(self._pending)

    def current(self) -> RunRequest | None:
        with self._lock:
            return next((req for req, _ in self._running.values()), None)

    def running(self) -> list[tuple[RunRequest, str]]:
        """Every run in progress and the device it trains on."""
        with self._lock:
            return list(self._running.values())

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._running or self._pending)

    @property
    def held(self) -> bool:
        with self._lock:
            return self._held and bool(self._pending)

    def submit(self, requests: RunRequest | Iterable[RunRequest]) -> None:
        batch = [requests] if isinstance(requests, RunRequest) else list(requests)
        with self._lock:
            if self._closed:
                raise RuntimeError("the lab is shutting down")
            known = {r.run_id for r in self._pending} | set(self._running)
            self._pending.extend(r for r in batch if r.run_id not in known)
            self._held = False
            if not self._dispatch():
                self._save()

    def stop_current(self, force: bool = False) -> bool:
        """Stop every run in progress (each within a batch); False when none runs."""
        with self._lock:
            slots = [slot for _, slot in self._running.values()]
        return any([self.workers.stop(slot, force) for slot in slots])

    def stop_run(self, run_id: str, force: bool = False) -> bool:
        with self._lock:
            entry = self._running.get(run_id)
        return entry is not None and self.workers.stop(entry[1], force, run_id)

    def cancel_queued(self) -> list[RunRequest]:
        with self._lock:
            dropped = list(self._pending)
            self._pending.clear()
            self._held = False
            self._save()
            return dropped

    def cancel(self, run_ids: Iterable[str]) -> list[RunRequest]:
        ids = set(run_ids)
        with self._lock:
            dropped = [r for r in self._pending if r.run_id in ids]
            self._pending = deque(r for r in self._pending if r.run_id not in ids)
            if not self._dispatch():
                self._save()
            return dropped

    def resume(self) -> None:
        with self._lock:
            self._held = False
            self._dispatch()

    def poll(self, timeout: float = 0.1, max_events: int = 1000) -> list[Event]:
        events = self.workers.poll(timeout)
        with self._lock:
            for ev in events:
                if isinstance(ev, TERMINAL) and ev.run_id in self._running:
                    del self._running[ev.run_id]
                    if isinstance(ev, RunFailed) and ev.kind == "data" and self._pending:
                        self._held = True  # the client decides (see RunSession.apply)
            self._dispatch()
        return events

    def shutdown(self, timeout: float = 3.0, keep_queue: bool = False) -> list[Event]:
        """Stop the runs in progress and the workers. A lab stopped on purpose drops its
        queue (the file empties); with `keep_queue` (a held queue, an idle exit) it stays on
        disk for the next lab, as after a crash."""
        with self._lock:
            self._closed = True
            if not keep_queue:
                self._pending.clear()
                self._save()
        events = self.workers.shutdown(timeout)
        with self._lock:
            self._running.clear()
        return events

    # -- inside ----------------------------------------------------------------------------
    def _dispatch(self) -> bool:
        """Hand waiting runs to free slots; True when any left the queue. The queue file is
        saved once, before they start (a run that started is never offered again)."""
        if self._closed or self._held:
            return False
        busy = {slot for _, slot in self._running.values()}
        handed: list[tuple[str, list[RunRequest]]] = []
        for slot in self.workers.slots():
            if not self._pending:
                break
            if slot not in busy:
                first = self._pending.popleft()
                batch = [first, *self.workers.mates(slot, first, list(self._pending))]
                for request in batch[1:]:
                    self._pending.remove(request)
                for request in batch:
                    self._running[request.run_id] = (request, slot)
                handed.append((slot, batch))
        if handed:
            self._save()
        for slot, batch in handed:
            self.workers.start(slot, batch)
        return bool(handed)

    def _save(self) -> None:
        """The waiting runs, so a lab that dies can offer them again. Runs in progress are
        not in it: one cut by a crash is `interrupted` and runs again only if asked."""
        if self.queue_file is None:
            return
        data = json.dumps({"schema": 1, "queue": [asdict(r) for r in self._pending]}).encode()
        with contextlib.suppress(OSError):  # a full disk must not stop the training
            atomic_write(self.queue_file, data)


def load_queue(path: Path) -> tuple[list[RunRequest], list[Notice]]:
    """Requests left in a queue file (by a lab that died), and notices about what was not
    readable; a queue file is ours (0700 directory) but may be cut short by a crash."""
    try:
        doc: Any = json.loads(read_bounded(path, MAX_QUEUE_BYTES))
        items = doc["queue"] if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise ValueError("no 'queue' list")
    except FileNotFoundError:
        return [], []
    except (OSError, ValueError, KeyError, FileRefused) as exc:
        return [], [Notice(f"the queue left by the last lab ({path}) is unreadable: {exc}",
                           "warning")]
    out: list[RunRequest] = []
    for item in items:
        try:
            req = RunRequest(**item)
            if not isinstance(req.config, dict) or not isinstance(req.run_id, str):
                raise TypeError("bad types")
        except TypeError:
            continue
        out.append(req)
    return out, []
