"""How trainer events change a run record: the single, pure definition.

The worker folds events with `apply_event` to persist them and every client (TUI, CLI) folds
the same events to keep its live view, so what is shown and what is stored cannot drift
apart. Torch-free.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from datetime import datetime
from typing import Any

from trainer.events import (
    EAGER_NOTICE,
    EpochEnd,
    Event,
    Notice,
    RunDiverged,
    RunFailed,
    RunFinished,
    RunInterrupted,
    RunStarted,
    RunStopped,
)
from trainer.formats import short_float
from trainer.store.liveness import host_name
from trainer.store.record import (
    EpochRow,
    ProbeEpoch,
    RunEnv,
    RunError,
    RunRecord,
    RunStatus,
    RunSummary,
)
from trainer.text import clean

MAX_NOTICES = 20  # a record keeps the first warnings only; the log keeps everything


def now_iso() -> str:
    """Local time with UTC offset, to the second: readable and sortable within one machine."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def started_record(started: RunStarted, base: RunRecord | None = None,
                   worker_pid: int | None = None, host: str | None = None) -> RunRecord:
    """The record of a run that just started (pid/host default to this process: the worker).

    A queued record it replaces keeps its creation time."""
    stamp = now_iso()
    env = RunEnv(device=started.device, device_name=started.device_name,
                 torch=started.torch_version, python=sys.version.split()[0],
                 host=host if host is not None else host_name(),
                 worker_pid=worker_pid if worker_pid is not None else os.getpid(),
                 trained_together=max(1, started.trained_together),
                 cuda_graph=started.cuda_graph)
    return RunRecord(
        run_id=started.run_id, config=dict(started.config), preset=started.preset,
        variant=started.variant, repeat=started.repeat, group=started.group,
        status=RunStatus.RUNNING, created=(base.created if base and base.created else stamp),
        updated=stamp, env=env, params=started.params,
        steps_per_epoch=started.steps_per_epoch, train_size=started.train_size,
        val_size=started.val_size, test_size=started.test_size,
        dataset_note=clean(started.dataset_note, single_line=True),
    )


def _best_row(history: tuple[EpochRow, ...]) -> EpochRow | None:
    flagged = [h for h in history if h.is_best]
    if flagged:
        return flagged[-1]  # the loop marks each new best; the last mark is the current best
    finite = [h for h in history if not math.isnan(h.val_loss)]
    return min(finite, key=lambda h: h.val_loss) if finite else None


def _epoch_summary(history: tuple[EpochRow, ...], summary: RunSummary) -> RunSummary:
    """Running best-so-far numbers, so stopped or interrupted runs still report something."""
    best = _best_row(history)
    changes: dict[str, Any] = {
        "epochs_done": len(history),
        "train_seconds": sum(h.seconds for h in history),
    }
    if best is not None:
        changes.update(best_epoch=best.epoch, best_val_loss=best.val_loss,
                       best_val_acc=best.val_acc)
    return dataclasses.replace(summary, **changes)


def apply_event(record: RunRecord | None, event: Event) -> RunRecord:
    """The record updated by `event` (records are immutable; a new one is returned).

    `record` may be None (the first event of a run, or a client that missed RunStarted); a
    minimal record is then made so every event lands somewhere. Events of another run, and
    Progress (transient, never stored), leave the record as it is.
    """
    if isinstance(event, RunStarted):
        return started_record(event, record)
    run_id = getattr(event, "run_id", "")
    if record is None:
        record = RunRecord(run_id=run_id, config={}, status=RunStatus.RUNNING)
    if (run_id and run_id != record.run_id) or not isinstance(
            event, EpochEnd | RunFinished | RunStopped | RunDiverged | RunFailed
            | RunInterrupted | Notice):
        return record
    stamp = now_iso()
    if isinstance(event, EpochEnd):
        row = EpochRow(epoch=event.epoch, train_loss=event.train_loss,
                       train_acc=event.train_acc, val_loss=event.val_loss,
                       val_acc=event.val_acc, lr=event.lr, seconds=event.seconds,
                       is_best=event.is_best, lr_dropped=event.lr_dropped)
        history = tuple(sorted((*(h for h in record.history if h.epoch != event.epoch), row),
                               key=lambda h: h.epoch))
        return record.with_changes(history=history, updated=stamp,
                                   summary=_epoch_summary(history, record.summary),
                                   probes=_probes(record.probes, event))
    if isinstance(event, RunFinished):
        summary = RunSummary(
            test_loss=event.test_loss, test_acc=event.test_acc, best_epoch=event.best_epoch,
            best_val_acc=event.best_val_acc, best_val_loss=event.best_val_loss,
            epochs_done=event.epochs_done, train_seconds=event.train_seconds,
            images_per_s=event.images_per_s, early_stopped=event.early_stopped)
        return record.with_changes(status=RunStatus.FINISHED, summary=summary, error=None,
                                   updated=stamp, diagnosis=event.diagnosis)
    if isinstance(event, RunStopped):
        return record.with_changes(
            status=RunStatus.STOPPED, updated=stamp,
            summary=dataclasses.replace(record.summary, epochs_done=event.epochs_done))
    if isinstance(event, RunDiverged):
        return record.with_changes(
            status=RunStatus.DIVERGED, updated=stamp,
            summary=dataclasses.replace(record.summary, epochs_done=event.epochs_done),
            error=RunError(kind="diverged", message=diverged_message(event, record)))
    if isinstance(event, RunInterrupted):
        return interrupted(record, clean(event.message))
    if isinstance(event, RunFailed):
        return record.with_changes(
            status=RunStatus.FAILED, updated=stamp,
            error=RunError(kind=event.kind, message=clean(event.message),
                           traceback=clean(event.traceback)))
    # A Notice: warnings and errors stay with the run they concern.
    if event.kind == EAGER_NOTICE:  # the CUDA graph capture failed: the step ran eagerly
        record = record.with_changes(env=dataclasses.replace(record.env, cuda_graph=False))
    if event.kind == "saved":
        return record.with_changes(save_error="")
    if event.kind == "unsaved":
        record = record.with_changes(save_error=clean(event.message, single_line=True))
    message = clean(event.message, single_line=True)
    if (event.level not in ("warning", "error") or message in record.notices
            or len(record.notices) >= MAX_NOTICES):
        return record
    return record.with_changes(notices=(*record.notices, message), updated=stamp)


KEPT_PROBE_EPOCHS = 120
"""Layer statistics kept per run. A longer run keeps every s-th epoch (1, 1+s, 1+2s, …; s
doubles as the run grows) and always its latest, so the strips stay evenly spread over the
whole run and a 1,000-epoch record stays well under a few hundred KB."""


def _probes(probes: tuple[ProbeEpoch, ...], event: EpochEnd) -> tuple[ProbeEpoch, ...]:
    """The probes with this epoch's layer statistics (replacing a repeated epoch's)."""
    if not event.layers:
        return probes
    kept = (p for p in probes if p.epoch != event.epoch)
    out = tuple(sorted((*kept, ProbeEpoch(event.epoch, event.layers)), key=lambda p: p.epoch))
    stride = 1
    while -(-out[-1].epoch // stride) > KEPT_PROBE_EPOCHS - 1:
        stride *= 2
    if stride > 1:
        out = (*(p for p in out[:-1] if (p.epoch - 1) % stride == 0), out[-1])
    return out


def diverged_message(event: RunDiverged, record: RunRecord) -> str:
    """'diverged in epoch 3: the loss became nan (lr 0.01)'."""
    lr = record.config.get("lr")
    at = f" (lr {short_float(lr)})" if isinstance(lr, float) else ""
    return f"diverged in epoch {event.epoch}: the loss became {event.loss}{at}"


def terminal_event(record: RunRecord) -> Event | None:
    """The terminal event a finished/stopped/failed record implies (used when the event itself
    was lost, e.g. the worker died right after saving it)."""
    s = record.summary
    if record.status is RunStatus.FINISHED:
        values = (s.test_loss, s.test_acc, s.best_epoch, s.best_val_acc, s.best_val_loss,
                  s.epochs_done, s.train_seconds, s.images_per_s)
        if None not in values:
            test_loss, test_acc, best_epoch, best_val_acc, best_val_loss, epochs_done, \
                train_seconds, images_per_s = values
            return RunFinished(
                run_id=record.run_id, test_loss=float(test_loss or 0.0),
                test_acc=float(test_acc or 0.0), best_epoch=int(best_epoch or 0),
                best_val_acc=float(best_val_acc or 0.0),
                best_val_loss=float(best_val_loss or 0.0), epochs_done=int(epochs_done or 0),
                train_seconds=float(train_seconds or 0.0),
                images_per_s=float(images_per_s or 0.0), early_stopped=s.early_stopped,
                diagnosis=record.diagnosis)
    if record.status is RunStatus.STOPPED:
        return RunStopped(run_id=record.run_id, epochs_done=record.epochs_done)
    if record.status is RunStatus.DIVERGED:
        return RunDiverged(run_id=record.run_id, epoch=record.epochs_done + 1,
                           epochs_done=record.epochs_done, loss=math.nan)
    if record.status is RunStatus.FAILED:
        err = record.error or RunError("error", "failed")
        return RunFailed(run_id=record.run_id, kind=err.kind, message=err.message,
                         traceback=err.traceback)
    return None


def interrupted(record: RunRecord, message: str = "") -> RunRecord:
    """A "running" record whose worker is gone, as it will be shown from now on."""
    done = len(record.history)
    reason = message or f"the trainer stopped before this run ended ({done} epochs kept)"
    return record.with_changes(
        status=RunStatus.INTERRUPTED, updated=now_iso(),
        summary=dataclasses.replace(record.summary, epochs_done=done),
        error=RunError(kind="interrupted", message=reason))
