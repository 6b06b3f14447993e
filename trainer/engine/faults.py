"""Fault injection for the fault-matrix tests: CNN_TUI_FAULT=KIND@EPOCH.

It proves, through the real spawned process, what happens when a run crashes, runs out of
GPU memory or meets a full disk. Unset (always, for users) it has no effect.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from trainer.engine.reporter import RunReporter, Saver, log
from trainer.events import EpochEnd, Event
from trainer.store.record import RunRecord
from trainer.store.runstore import StoreError

FAULT_ENV = "CNN_TUI_FAULT"


@dataclass
class Fault:
    """A fault to inject into the first run of this worker, from CNN_TUI_FAULT=KIND@EPOCH.

    The fault-matrix tests use it to prove, through the real spawned process, what happens
    when a run crashes (`error`), runs out of GPU memory (`oom`, raised as PyTorch's own
    OutOfMemoryError so it travels the real classification path) or meets a full disk while
    saving its record (`disk_full`). It fires when epoch EPOCH ends, once per worker, so the
    next run shows that the worker is still usable. Unset (always, for users): no effect.
    """

    kind: str
    epoch: int
    fired: bool = False

    KINDS: ClassVar[tuple[str, ...]] = ("error", "oom", "disk_full")

    @classmethod
    def from_env(cls) -> Fault | None:
        spec = os.environ.get(FAULT_ENV, "").strip()
        if not spec:
            return None
        kind, _, epoch = spec.partition("@")
        if kind not in cls.KINDS or not epoch.isdigit():
            log(f"ignoring {FAULT_ENV}={spec!r}: expected KIND@EPOCH, KIND one of "
                 f"{', '.join(cls.KINDS)}", always=True)
            return None
        return cls(kind, int(epoch))

    def wrap(self, report: RunReporter, torch: Any, runs_dir: Path) -> Callable[[Event], None]:
        """report.emit, with the fault going off at the end of epoch `self.epoch`."""
        if self.kind == "disk_full":
            if not self.fired:
                # The disk fills up in the saver's order, not the training thread's: records are
                # saved on a thread of their own, so swapping the store when the epoch ends
                # could also fail the save of an earlier epoch still waiting in the queue.
                self.fired = True
                report.store = _FullDisk(report.store, runs_dir, self.epoch)
            return report.emit

        def emit(event: Event) -> None:
            if (not self.fired and isinstance(event, EpochEnd) and event.epoch >= self.epoch):
                self.fired = True
                if self.kind == "error":
                    raise RuntimeError(f"injected fault ({FAULT_ENV}={self.kind}@{self.epoch})")
                if self.kind == "oom":
                    raise torch.OutOfMemoryError(
                        "CUDA out of memory. Tried to allocate 2.00 GiB "
                        f"(injected by {FAULT_ENV})")
            report.emit(event)
        return emit


class _FullDisk:
    """The run store as a full disk leaves it: from the record that holds epoch `epoch` on,
    every save fails and the file saved before stays intact."""

    def __init__(self, store: Saver, runs_dir: Path, epoch: int) -> None:
        self.store, self.dir, self.epoch = store, runs_dir, epoch

    def save(self, record: RunRecord) -> Any:
        # A run's records come in order and each holds every epoch before it: once one reaches
        # `epoch`, every later one does too.
        if not any(h.epoch >= self.epoch for h in record.history):
            return self.store.save(record)
        target = self.dir / f"{record.run_id}.json"
        raise StoreError(f"could not save run {record.run_id} to {target}: "
                         "No space left on device", target)
