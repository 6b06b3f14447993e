"""A scripted stand-in for `TrainerProcess`: tests and UI work without torch or a worker.

It speaks the same API (submit/pending/current/stop_current/cancel_queued/cancel/resume/held/
poll/busy/shutdown: `trainer.host.session.TrainerHandle`)
and emits plausible event streams — RunStarted, Progress, EpochEnd, RunFinished — on a
simulated clock that advances a few steps per `poll`, so a whole lesson "trains" in a second.
Failures, worker deaths and event floods can be scripted per variant label. Records are saved
to a RunStore through `apply_event`, as the real worker does, so history reloads can be tested.
`interrupt` raises KeyboardInterrupt once from `poll` after that variant's run has started, as
a Ctrl-C between two polls of a CLI would.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trainer.events import (
    EpochEnd,
    Event,
    Notice,
    Progress,
    RunFailed,
    RunFinished,
    RunRequest,
    RunStarted,
    RunStopped,
)
from trainer.store.apply import apply_event
from trainer.store.record import RunRecord, RunStatus
from trainer.store.runstore import RunStore


@dataclass
class Script:
    """How the fake behaves; per-variant behaviour is keyed by variant label."""

    steps: int = 8  # steps per epoch
    steps_per_poll: int = 4
    delay: float = 0.01  # seconds each poll sleeps (keeps the bridge from spinning)
    fail: dict[str, tuple[str, str]] = field(default_factory=dict)  # label → (kind, message)
    fail_at_epoch: int = 1  # failures happen once this epoch has started
    hold: bool = False  # don't advance runs (for queue/stop tests); release with `hold=False`
    progress_per_step: int = 1  # extra Progress events per step (to simulate floods)
    device: str = "cpu"
    interrupt: str | None = None  # variant label: Ctrl-C once after its run started


class FakeTrainer:
    """Same surface as `trainer.host.process.TrainerProcess`, no process behind it."""

    def __init__(self, script: Script | None = None, store: RunStore | None = None) -> None:
        self.script = script or Script()
        self.store = store
        self._lock = threading.RLock()
        self._pending: deque[RunRequest] = deque()
        self._current: RunRequest | None = None
        self._stop = False
        self._out: list[Event] = []
        self._epoch = 0
        self._step = 0
        self._history: list[float] = []
        self._records: dict[str, RunRecord] = {}
        self.closed = False
        self._held = False  # as TrainerProcess: a data failure holds the queue
        self.submitted: list[RunRequest] = []
        self.polls = 0
        self.stop_requests = 0
        self._interrupted = False
        self.settings: Any = None  # what a factory was given (the CLI passes WorkerSettings)

    # -- the TrainerProcess API ------------------------------------------------------------
    def submit(self, requests: RunRequest | Iterable[RunRequest]) -> None:
        batch = [requests] if isinstance(requests, RunRequest) else list(requests)
        with self._lock:
            if self.closed:
                raise RuntimeError("the trainer process has been shut down")
            self._pending.extend(batch)
            self._held = False
            self.submitted.extend(batch)

    def pending(self) -> list[RunRequest]:
        with self._lock:
            return list(self._pending)

    def current(self) -> RunRequest | None:
        with self._lock:
            return self._current

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._current is not None or bool(self._pending)

    @property
    def held(self) -> bool:
        with self._lock:
            return self._held and bool(self._pending)

    def stop_current(self, force: bool = False) -> bool:
        with self._lock:
            self.stop_requests += 1
            if self._current is None:
                return False
            self._stop = True
            return True

    def stop_run(self, run_id: str, force: bool = False) -> bool:
        current = self.current()
        return current is not None and current.run_id == run_id and self.stop_current(force)

    def cancel_queued(self) -> list[RunRequest]:
        with self._lock:
            dropped = list(self._pending)
            self._pending.clear()
            self._held = False
            return dropped

    def cancel(self, run_ids: Iterable[str]) -> list[RunRequest]:
        ids = set(run_ids)
        with self._lock:
            dropped = [r for r in self._pending if r.run_id in ids]
            self._pending = deque(r for r in self._pending if r.run_id not in ids)
            self._held = False
            return dropped

    def resume(self) -> None:
        with self._lock:
            self._held = False

    def hand_over(self) -> RunRequest:
        """With `hold`: give the next waiting run to the (imaginary) worker and emit nothing,
        as the real process does between dispatch and RunStarted; the test sends events."""
        with self._lock:
            self._current = self._pending.popleft()
            return self._current

    def release(self) -> None:
        """With `hold`: the worker is done with the current run (the test sent its end)."""
        with self._lock:
            self._current = None

    def kill_worker(self) -> None:
        """Simulate SIGKILL of the worker: the current run fails as worker_died."""
        with self._lock:
            if self._current is not None:
                self._end(RunFailed(self._current.run_id, "worker_died",
                                    "trainer process died (exit code -9, killed by SIGKILL)"))

    def poll(self, timeout: float = 0.1, max_events: int = 1000) -> list[Event]:
        time.sleep(min(timeout, self.script.delay))
        with self._lock:
            current = self._current
            if (self.script.interrupt and not self._interrupted and current is not None
                    and current.variant == self.script.interrupt and current.run_id in
                    self._records and not self._out):
                self._interrupted = True
                raise KeyboardInterrupt
            self.polls += 1
            if not self.closed:
                self._advance()
            out, self._out = self._out[:max_events], self._out[max_events:]
            return out

    def shutdown(self, timeout: float = 3.0) -> list[Event]:
        with self._lock:
            if self.closed:
                return []
            self._pending.clear()
            if self._current is not None:
                self._end(RunStopped(self._current.run_id, self._epoch - 1))
            self.closed = True
            out, self._out = self._out, []
            return out

    # -- simulation ----------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        self._out.append(event)
        run_id = getattr(event, "run_id", "")
        if run_id in self._records and not isinstance(event, Progress):
            # Like the worker: saved at start, every epoch and at the end, not per step.
            self._records[run_id] = apply_event(self._records[run_id], event)
            if self.store is not None:
                self.store.save(self._records[run_id])

    def _end(self, event: Event) -> None:
        self._emit(event)
        self._current = None
        self._stop = False

    def _advance(self) -> None:
        s = self.script
        if self._current is None:
            if not self._pending or s.hold or self._held:
                return
            req = self._pending.popleft()
            self._current = req
            self._epoch, self._step, self._stop, self._history = 1, 0, False, []
            self._records[req.run_id] = RunRecord.from_request(req, RunStatus.RUNNING)
            self._emit(RunStarted(
                run_id=req.run_id, config=dict(req.config), preset=req.preset,
                variant=req.variant, repeat=req.repeat, group=req.group, device=s.device,
                device_name="fake CPU", torch_version="0.0", params=12345,
                steps_per_epoch=s.steps, train_size=s.steps * 64, val_size=64, test_size=64,
                dataset_note="synthetic data (not CIFAR-10)"
                if req.config.get("dataset") == "synthetic" else ""))
            return
        if s.hold:
            return
        req = self._current
        if self._stop:
            self._end(RunStopped(req.run_id, self._epoch - 1))
            return
        if req.variant in s.fail and self._epoch >= s.fail_at_epoch:
            kind, message = s.fail[req.variant]
            self._end(RunFailed(req.run_id, kind, message, traceback="Traceback: fake"))
            self._held = kind == "data"
            return
        epochs = int(req.config.get("epochs", 2))
        rng = random.Random(hash((req.variant, req.repeat, self._epoch)))
        quality = 1.0 + 0.3 * (req.config.get("batch_norm") is True)
        for _ in range(s.steps_per_poll):
            self._step += 1
            loss = 2.3 * math.exp(-quality * (self._epoch - 1 + self._step / s.steps) / 3) + 0.3
            for _ in range(s.progress_per_step):
                self._emit(Progress(req.run_id, self._epoch, self._step, s.steps, loss,
                                    min(0.95, 1 - loss / 2.6), 1000.0 + rng.random()))
            if self._step >= s.steps:
                val_loss = loss + 0.1 + 0.05 * rng.random()
                best = not self._history or val_loss < min(self._history)
                self._history.append(val_loss)
                self._emit(EpochEnd(req.run_id, self._epoch, loss, 1 - loss / 2.6, val_loss,
                                    1 - val_loss / 2.6, 0.001, 0.5, best, False))
                if self._epoch >= epochs:
                    self._history = []
                    summary = self._records[req.run_id].summary
                    self._end(RunFinished(
                        req.run_id, test_loss=val_loss, test_acc=1 - val_loss / 2.6 - 0.01,
                        best_epoch=summary.best_epoch or epochs,
                        best_val_acc=summary.best_val_acc or 0.5,
                        best_val_loss=summary.best_val_loss or val_loss,
                        epochs_done=epochs, train_seconds=0.5 * epochs, images_per_s=1000.0))
                    return
                self._epoch += 1
                self._step = 0

    def notice(self, message: str, level: str = "warning") -> None:
        with self._lock:
            self._out.append(Notice(message, level))
