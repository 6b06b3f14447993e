"""RunSession: the one model of "the runs I am looking at", shared by the TUI and the CLI.

It holds every run record a client knows (the store's history, then what this session
queued), the newest `Progress` per running run, and the policy after a data failure — and it
owns no queue: the trainer handle (`TrainerProcess`, a test's fake, later a lab client) is the
only source of queue truth, and queued rows are placeholders derived from it.

Events are folded with `trainer.store.apply.apply_event`, the function the worker uses to
persist them, so what a client shows and what the store holds cannot drift apart. The model
does not care how events arrive (a bridge thread, a CLI loop, a socket): callers hand it
batches through `apply`. Textual-free and torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from trainer.events import (
    TERMINAL,
    EpochEnd,
    Event,
    Notice,
    Preparing,
    Progress,
    RunFailed,
    RunRequest,
    RunStarted,
)
from trainer.store.apply import apply_event, now_iso
from trainer.store.record import RunRecord, RunStatus

STOPPING = "stopping"  # shown while a stop is on its way to the worker (not a stored status)


class TrainerHandle(Protocol):
    """What a session needs from the trainer: `trainer.host.process.TrainerProcess`."""

    def submit(self, requests: Iterable[RunRequest]) -> None: ...
    def pending(self) -> list[RunRequest]: ...
    def current(self) -> RunRequest | None: ...
    def stop_current(self, force: bool = False) -> bool: ...
    def stop_run(self, run_id: str, force: bool = False) -> bool: ...
    def cancel_queued(self) -> list[RunRequest]: ...
    def cancel(self, run_ids: Iterable[str]) -> list[RunRequest]: ...
    def resume(self) -> None: ...
    def poll(self, timeout: float = 0.1, max_events: int = 1000) -> list[Event]: ...
    def shutdown(self, timeout: float = 3.0) -> list[Event]: ...
    @property
    def busy(self) -> bool: ...


@dataclass
class Update:
    """What one batch of events changed, so a client redraws or prints only that."""

    runs: set[str] = field(default_factory=set)
    notices: list[Notice] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    ended: list[tuple[str, RunStatus]] = field(default_factory=list)
    failures: list[RunFailed] = field(default_factory=list)
    epochs: list[EpochEnd] = field(default_factory=list)
    live: set[str] = field(default_factory=set)  # runs whose only news is Progress
    data_failure: RunFailed | None = None  # the dataset is missing: see `RunSession.apply`
    dropped: list[RunRequest] = field(default_factory=list)  # queued runs that policy dropped
    queue_changed: bool = False


class RunSession:
    """Every run a client shows, updated from trainer events and the run store."""

    def __init__(self, trainer: TrainerHandle, keep_cancelled: bool = False) -> None:
        self.trainer = trainer
        self.keep_cancelled = keep_cancelled  # a CLI's final table lists cancelled runs
        self.records: dict[str, RunRecord] = {}
        self.progress: dict[str, Progress] = {}
        self.preparing: dict[str, Preparing] = {}  # what a run waits for, until it trains
        self.stopping: set[str] = set()
        self.device = ""  # of the latest run that started
        self.device_name = ""
        self.order = 0  # bumped whenever a row is added, dropped or the rows are re-sorted
        self._groups: dict[str, list[str]] = {}  # launch → its run ids, rebuilt per `order`
        self._groups_of = -1
        self._running: dict[str, None] = {}  # run ids whose record says running, in order
        self._queue_key: tuple[tuple[str, ...], str | None] = ((), None)

    # -- the queue, as the trainer has it -----------------------------------------------------
    @property
    def pending(self) -> list[RunRequest]:
        return self.trainer.pending()

    @property
    def current(self) -> RunRequest | None:
        return self.trainer.current()

    def sync_queue(self) -> bool:
        """Give every run in the trainer's queue a row (a `queued` placeholder until it starts);
        True when the queue changed since the last call."""
        pending, current = self.trainer.pending(), self.trainer.current()
        for request in ([current] if current else []) + pending:
            if request.run_id not in self.records:
                self.put(RunRecord.from_request(request))
                self.order += 1
        key = (tuple(r.run_id for r in pending), current.run_id if current else None)
        changed, self._queue_key = key != self._queue_key, key
        return changed

    # -- commands -----------------------------------------------------------------------------
    def load(self, records: Iterable[RunRecord]) -> None:
        """Runs from the store (history): shown as they were, curves included."""
        for rec in records:
            self.put(rec)
        self.records = dict(sorted(self.records.items(), key=lambda kv: _created(kv[1])))
        self.order += 1

    def submit(self, requests: Iterable[RunRequest]) -> list[RunRequest]:
        """Queue runs on the trainer; their rows appear at once. Raises what the trainer
        raises (shut down, cannot start), leaving no placeholder behind."""
        batch = list(requests)
        self.trainer.submit(batch)
        stamp = now_iso()
        for request in batch:
            if request.run_id not in self.records:
                self.put(RunRecord.from_request(request, created=stamp))
                self.order += 1
        self.sync_queue()
        return batch

    def stop(self, only: set[str] | None = None) -> RunRequest | None:
        """Ask the run(s) in progress to stop at the next batch (with `only`: just those
        runs); returns the current one (None: nothing of it runs)."""
        current = self.trainer.current()
        if only is not None:
            # Every run of `only` that is not waiting and has not ended: one handed to a
            # worker may not have reported RunStarted yet, and must stop too.
            waiting = {r.run_id for r in self.trainer.pending()}
            live = [r for r in only if r not in waiting and r in self.records
                    and not self.records[r].terminal]
            stopped = [r for r in live if self.trainer.stop_run(r)]
            self.stopping.update(stopped)
            return current if current is not None and current.run_id in stopped else None
        if current is None or not self.trainer.stop_current():
            return None
        self.stopping.update(self.running() or [current.run_id])
        return current

    def cancel_queue(self, only: set[str] | None = None) -> list[RunRequest]:
        """Drop the queued runs (with `only`: just those); the ones in progress go on."""
        if only is None:
            dropped = self.trainer.cancel_queued()
        else:
            dropped = self.trainer.cancel([r.run_id for r in self.trainer.pending()
                                           if r.run_id in only])
        self._drop(dropped)
        self.sync_queue()
        return dropped

    def _drop(self, requests: Iterable[RunRequest]) -> None:
        for req in requests:
            rec = self.records.get(req.run_id)
            if rec is None or rec.status is not RunStatus.QUEUED:
                continue
            if self.keep_cancelled:
                self.put(rec.with_changes(status=RunStatus.CANCELLED))
            else:
                del self.records[req.run_id]
                self.order += 1

    def put(self, rec: RunRecord) -> None:
        """Set a run's record (the one way records change, so the running index holds)."""
        self.records[rec.run_id] = rec
        if rec.status is RunStatus.RUNNING:
            self._running[rec.run_id] = None
        else:
            self._running.pop(rec.run_id, None)

    def forget(self, run_ids: Iterable[str]) -> list[str]:
        """Drop ended runs from the view (archived or deleted from the store); runs still
        queued or training are kept. Returns the ids dropped."""
        dropped = [r for r in run_ids if r in self.records and self.records[r].terminal]
        for run_id in dropped:
            del self.records[run_id]
            self.progress.pop(run_id, None)
        if dropped:
            self.order += 1
        return dropped

    # -- events -------------------------------------------------------------------------------
    def apply(self, events: Iterable[Event]) -> Update:
        """Fold a batch of trainer events into the records; report what changed.

        After a run fails for want of its dataset (kind "data"), every queued run on the same
        dataset would fail alike: they are dropped (`Update.dropped`) and the trainer goes on
        with the rest. The client decides what to offer (the TUI: synthetic data; the CLI:
        the fix-it text).
        """
        up = Update()
        for ev in events:
            if isinstance(ev, Notice):
                up.notices.append(ev)
                if ev.run_id in self.records:
                    self.put(apply_event(self.records[ev.run_id], ev))
                continue
            run_id = ev.run_id
            if isinstance(ev, Preparing):
                if run_id in self.records and not self.records[run_id].terminal:
                    self.preparing[run_id] = ev
                    up.runs.add(run_id)
                    up.live.add(run_id)
                continue
            if isinstance(ev, Progress):
                self.preparing.pop(run_id, None)
                # Transient: only the newest per run matters.
                rec = self.records.get(run_id)
                if rec is not None and rec.status is RunStatus.RUNNING:
                    self.progress[run_id] = ev
                    up.runs.add(run_id)
                    up.live.add(run_id)
                continue
            if isinstance(ev, RunStarted):
                self.order += run_id not in self.records
                self.put(apply_event(self.records.get(run_id), ev))
                self.device, self.device_name = ev.device, ev.device_name
                up.started.append(run_id)
            elif run_id in self.records:
                # (A queued run can fail before it starts, e.g. the worker died loading data.)
                self.put(apply_event(self.records[run_id], ev))
            else:
                continue  # an event for a run this client never saw start: nothing to show
            if isinstance(ev, EpochEnd):
                up.epochs.append(ev)
            if isinstance(ev, TERMINAL):
                self.progress.pop(run_id, None)
                self.preparing.pop(run_id, None)
                self.stopping.discard(run_id)
                up.ended.append((run_id, self.records[run_id].status))
                if isinstance(ev, RunFailed):
                    up.failures.append(ev)
                    if ev.kind == "data" and up.data_failure is None:
                        up.data_failure = ev
                        up.dropped = self._drop_same_dataset(run_id)
            up.runs.add(run_id)
            up.live.discard(run_id)
        up.queue_changed = self.sync_queue()
        return up

    def _drop_same_dataset(self, run_id: str) -> list[RunRequest]:
        dataset = self.records[run_id].config.get("dataset")
        doomed = [r.run_id for r in self.trainer.pending() if r.config.get("dataset") == dataset]
        dropped = self.trainer.cancel(doomed) if doomed else []
        self.trainer.resume()  # the trainer held the queue for this decision
        self._drop(dropped)
        return dropped

    # -- queries ------------------------------------------------------------------------------
    def waiting_for(self, run_id: str) -> str:
        """What a run handed to the trainer waits for before it trains ('decoding CIFAR-10
        40%…'), in the words the app's run bar and `cnn-tui run` both show: the worker's latest
        stage, else its start (importing PyTorch, the longest wait of a cold start)."""
        prep = self.preparing.get(run_id)
        if prep is None:
            return "starting the trainer (importing PyTorch)…"
        pct = f" {prep.fraction:.0%}" if 0 <= prep.fraction <= 1 else ""
        return f"{prep.stage}{pct}…"

    def status_label(self, run_id: str) -> str:
        """The status to show: the record's, or "stopping" while a stop is on its way."""
        rec = self.records[run_id]
        if run_id in self.stopping and rec.status is RunStatus.RUNNING:
            return STOPPING
        return rec.status.value

    def running(self) -> list[str]:
        """Runs whose record says running (kept as a set: this is asked every tick)."""
        return [r for r in self._running if r in self.records]

    def active(self) -> bool:
        """Anything queued or running (quitting would lose work)."""
        return bool(self.trainer.busy or self.running())

    def settled(self, run_ids: Iterable[str]) -> bool:
        """Every one of these runs has ended (finished, failed, stopped, cancelled …)."""
        return all(r in self.records and self.records[r].terminal for r in run_ids)

    def exportable(self) -> list[RunRecord]:
        """Records a CSV should hold: everything that has started."""
        return [rec for rec in self.records.values() if rec.status is not RunStatus.QUEUED]

    def group_runs(self, group: str | None) -> list[RunRecord]:
        """The runs of one launch, in creation order (indexed: a store holds thousands)."""
        if not group:
            return []
        if self._groups_of != self.order:
            self._groups = {}
            for rec in self.records.values():
                self._groups.setdefault(rec.group, []).append(rec.run_id)
            self._groups_of = self.order
        return [self.records[r] for r in self._groups.get(group, ()) if r in self.records]

    def latest_group(self, preset: str) -> str | None:
        """The most recent launch of a lesson (its runs are what its verdict is about)."""
        for rec in reversed(list(self.records.values())):
            if rec.preset == preset and rec.group:
                return rec.group
        return None

    def variant_order(self, group: str | None, presets: Mapping[str, Any]) -> list[str]:
        """Variant labels of a launch in lesson order (colours and tables follow it)."""
        runs = self.group_runs(group)
        labels: list[str] = []
        if runs:
            preset = presets.get(runs[0].preset)
            if preset is not None:
                labels = [v for v in preset.labels if any(r.variant == v for r in runs)]
        for rec in runs:
            if rec.variant not in labels:
                labels.append(rec.variant)
        return labels


def _created(rec: RunRecord) -> str:
    # Queued placeholders made without a timestamp sort after everything stored.
    return rec.created or "~"
