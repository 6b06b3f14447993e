"""The run store: one JSON document per run, replaced atomically as the run goes.

Why one file per run: a crash, a killed app or a dropped SSH session can damage at most
the file being written, and the atomic replace (temp file + fsync + rename) means even that
file is either the old or the new version. The worker saves at RunStarted, after every
epoch and at the end, so at most the epoch in progress is lost.

`apply_event` is the single, pure definition of how events change a record; the worker
uses it to persist and the TUI uses it to keep its live view, so both always agree.
Torch-free: the TUI imports this module.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from trainer import paths
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

SCHEMA_VERSION = 1
STATUSES = ("queued", "running", "finished", "failed", "stopped", "interrupted")
DONE_STATUSES = ("finished", "failed", "stopped", "interrupted")
SUMMARY_KEYS = ("test_loss", "test_acc", "best_epoch", "best_val_acc", "best_val_loss",
                "epochs_done", "train_seconds", "images_per_s", "early_stopped")
MAX_NOTICES = 20  # a record keeps the first warnings only; the log keeps everything
STALE_OTHER_HOST = timedelta(hours=24)  # "running" on another host, silent this long → dead
STALE_TMP_SECONDS = 3600  # leftover temp files of a killed writer are removed after this


class StoreError(OSError):
    """Saving a run failed (disk full, permissions); `message` names the file and the cause."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def now_iso() -> str:
    """Local time with UTC offset, to the second: readable and sortable within one machine."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def host_name() -> str:
    return socket.gethostname()


# -- building and updating records (pure) -----------------------------------------------

def _base_record(run_id: str, config: dict[str, Any], preset: str, variant: str, repeat: int,
                 group: str, status: str) -> dict[str, Any]:
    stamp = now_iso()
    return {
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "group": group,
        "preset": preset,
        "variant": variant,
        "repeat": repeat,
        "config": dict(config) if isinstance(config, dict) else {},
        "status": status,
        "created": stamp,
        "updated": stamp,
        "env": {},
        "params": None,
        "steps_per_epoch": None,
        "train_size": None,
        "val_size": None,
        "test_size": None,
        "dataset_note": "",
        "history": [],
        "summary": {},
        "error": None,
    }


def new_record(started: RunStarted, worker_pid: int | None = None,
               host: str | None = None) -> dict[str, Any]:
    """The record of a run that just started (in the worker: pid/host default to this process)."""
    rec = _base_record(started.run_id, started.config, started.preset, started.variant,
                       started.repeat, started.group, "running")
    rec["env"] = {
        "device": started.device,
        "device_name": started.device_name,
        "torch": started.torch_version,
        "python": sys.version.split()[0],
        "host": host if host is not None else host_name(),
        "worker_pid": worker_pid if worker_pid is not None else os.getpid(),
    }
    rec.update(params=started.params, steps_per_epoch=started.steps_per_epoch,
               train_size=started.train_size, val_size=started.val_size,
               test_size=started.test_size, dataset_note=started.dataset_note)
    return rec


def request_record(request: RunRequest, status: str = "queued") -> dict[str, Any]:
    """A record for a run known only by its request: queued in a UI, or failed before starting
    (bad config, missing data, worker died while loading)."""
    return _base_record(request.run_id, request.config, request.preset, request.variant,
                        request.repeat, request.group, status)


def _stub(run_id: str) -> dict[str, Any]:
    return _base_record(run_id, {}, "", "", 0, "", "running")


def _finite_min(values: Iterable[float]) -> float | None:
    good = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
    return min(good) if good else None


def _epoch_summary(history: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
    """Running best-so-far numbers, so stopped or interrupted runs still report something."""
    out = dict(summary)
    out["epochs_done"] = len(history)
    out["train_seconds"] = sum(float(h.get("seconds") or 0.0) for h in history)
    best = [h for h in history if h.get("is_best")]
    if best:
        row = best[-1]  # the loop marks each new best; the last mark is the current best
    else:
        low = _finite_min(h.get("val_loss") for h in history)
        row = next((h for h in history if h.get("val_loss") == low), None)
    if row is not None:
        out["best_epoch"] = row["epoch"]
        out["best_val_loss"] = row["val_loss"]
        out["best_val_acc"] = row["val_acc"]
    return out


def apply_event(record: dict[str, Any] | None, event: Event) -> dict[str, Any]:
    """Return the record updated by `event`; the input is never mutated.

    `record` may be None (first event of a run, or a UI that missed RunStarted); a minimal
    record is then created so every event lands somewhere. Events of another run are ignored.
    """
    if isinstance(event, RunStarted):
        rec = new_record(event) if record is None else {**record, **_started_fields(event)}
        return rec
    if record is None:
        record = _stub(getattr(event, "run_id", ""))
    if getattr(event, "run_id", "") and event.run_id != record.get("run_id"):
        return record
    rec = dict(record)
    rec["updated"] = now_iso()
    if isinstance(event, Progress):
        rec["progress"] = {"epoch": event.epoch, "step": event.step, "steps": event.steps,
                           "loss": event.loss, "acc": event.acc,
                           "images_per_s": event.images_per_s}
    elif isinstance(event, EpochEnd):
        row = {"epoch": event.epoch, "train_loss": event.train_loss,
               "train_acc": event.train_acc, "val_loss": event.val_loss,
               "val_acc": event.val_acc, "lr": event.lr, "seconds": event.seconds,
               "is_best": event.is_best, "lr_dropped": event.lr_dropped}
        history = [h for h in rec.get("history", []) if h.get("epoch") != event.epoch]
        history.append(row)
        history.sort(key=lambda h: h["epoch"])
        rec["history"] = history
        rec["summary"] = _epoch_summary(history, rec.get("summary") or {})
        rec.pop("progress", None)
    elif isinstance(event, RunFinished):
        summary = dict(rec.get("summary") or {})
        summary.update({k: getattr(event, k) for k in SUMMARY_KEYS})
        rec.update(status="finished", summary=summary, error=None)
        rec.pop("progress", None)
    elif isinstance(event, RunStopped):
        summary = dict(rec.get("summary") or {})
        summary["epochs_done"] = event.epochs_done
        rec.update(status="stopped", summary=summary)
        rec.pop("progress", None)
    elif isinstance(event, RunFailed):
        rec.update(status="failed", error={"kind": event.kind, "message": event.message,
                                           "traceback": event.traceback})
        rec.pop("progress", None)
    elif isinstance(event, Notice) and event.level in ("warning", "error"):
        notices = list(rec.get("notices") or [])
        if len(notices) < MAX_NOTICES and event.message not in notices:
            notices.append(event.message)
        rec["notices"] = notices
    return rec


def _started_fields(started: RunStarted) -> dict[str, Any]:
    """Fields RunStarted sets on an existing (e.g. queued) record; created is kept."""
    fresh = new_record(started)
    fresh.pop("created")
    return fresh


def terminal_event(record: dict[str, Any]) -> Event | None:
    """The terminal event a finished/stopped/failed record implies (used when the event itself
    was lost, e.g. the worker died right after saving it)."""
    run_id = record.get("run_id", "")
    status = record.get("status")
    summary = record.get("summary") or {}
    if status == "finished" and all(k in summary for k in SUMMARY_KEYS):
        return RunFinished(run_id=run_id, **{k: summary[k] for k in SUMMARY_KEYS})
    if status == "stopped":
        return RunStopped(run_id=run_id, epochs_done=int(summary.get("epochs_done", 0)))
    if status == "failed":
        err = record.get("error") or {}
        return RunFailed(run_id=run_id, kind=err.get("kind", "error"),
                         message=err.get("message", "failed"),
                         traceback=err.get("traceback", ""))
    return None


def first_line(text: str) -> str:
    """The one-line reason of a (possibly multi-line) message."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


# -- liveness of the process that wrote a record ------------------------------------------

def pid_alive(pid: int) -> bool:
    """True when `pid` runs on this host (zombies count as dead: they will never write again)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rfind(b")") + 2:][:1] != b"Z"
    except OSError:
        return True  # no /proc (macOS): kill(0) said it exists


def _parse_time(text: Any) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.astimezone()


def writer_gone(record: dict[str, Any]) -> bool:
    """Whether a "running" record's worker can no longer finish it."""
    env = record.get("env") or {}
    host = env.get("host")
    pid = env.get("worker_pid")
    if not host or pid is None:
        return True  # never got as far as RunStarted in a worker that could update it
    if host == host_name():
        return not pid_alive(pid)
    updated = _parse_time(record.get("updated"))
    return updated is None or datetime.now().astimezone() - updated > STALE_OTHER_HOST


# -- the store -----------------------------------------------------------------------------

def atomic_write(target: Path, data: bytes) -> None:
    """Replace `target` with `data` so that readers see the old file or the new one, never a
    part: write a temp file in the same folder, fsync, rename over. On failure (full disk,
    permissions) the temp file is removed, the old file stays, and the OSError propagates."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable (power loss); best effort, not every filesystem allows it.
    with contextlib.suppress(OSError):
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class RunStore:
    """The folder of run records (default: the per-user runs dir)."""

    def __init__(self, runs_dir: str | Path | None = None) -> None:
        self.dir = Path(runs_dir).expanduser() if runs_dir is not None else paths.runs_dir()

    def path(self, run_id: str) -> Path:
        return self.dir / f"{run_id}.json"

    def save(self, record: dict[str, Any]) -> Path:
        """Replace the run's file atomically; on failure the old file stays and StoreError says
        why (the temp file is removed, so a full disk does not fill up further)."""
        run_id = record.get("run_id")
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise StoreError(f"cannot save a run with id {run_id!r}")
        target = self.path(run_id)
        try:
            data = json.dumps(record, indent=1, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:  # not JSON-serialisable: a programming error
            raise StoreError(f"could not save run {run_id}: {exc}", target) from exc
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data)
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise StoreError(f"could not save run {run_id} to {target}: {why}", target) from exc
        return target

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One record, or None if missing or unreadable."""
        try:
            return _read(self.path(run_id))
        except (OSError, ValueError):
            return None

    def load(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Every readable record (oldest first) and warnings about the files that were not.

        Records left "running" by a worker that is gone (app killed, SSH dropped, power cut)
        become "interrupted" (saved) with their completed epochs kept.
        """
        records: list[dict[str, Any]] = []
        warnings: list[str] = []
        if not self.dir.is_dir():
            return records, warnings
        self._remove_stale_tmp()
        for path in sorted(self.dir.glob("*.json")):
            try:
                rec = _read(path)
            except OSError as exc:
                warnings.append(f"skipped {path}: cannot read it ({exc.strerror or exc})")
                continue
            except ValueError as exc:
                warnings.append(f"skipped {path}: not a valid run record ({exc})")
                continue
            if rec.get("status") == "running" and writer_gone(rec):
                rec = interrupted(rec)
                try:
                    self.save(rec)
                except StoreError as exc:
                    warnings.append(f"{exc.message} (shown as interrupted anyway)")
            records.append(rec)
        records.sort(key=lambda r: (str(r.get("created", "")), str(r.get("run_id", ""))))
        return records, warnings

    def _remove_stale_tmp(self) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        for tmp in self.dir.glob(".*.json.tmp-*"):
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()

    def mark(self, run_id: str, status: str,
             error: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Set a stored run's status (and error); returns the new record, None if not stored."""
        rec = self.get(run_id)
        if rec is None:
            return None
        rec = {**rec, "status": status, "updated": now_iso()}
        if error is not None:
            rec["error"] = error
        rec.pop("progress", None)
        self.save(rec)
        return rec

    def delete(self, run_id: str) -> bool:
        """Remove a run's file; False when it was not there."""
        try:
            self.path(run_id).unlink()
        except FileNotFoundError:
            return False
        return True


def interrupted(record: dict[str, Any]) -> dict[str, Any]:
    """A "running" record whose worker is gone, as it will be shown from now on."""
    done = len(record.get("history") or [])
    rec = {**record, "status": "interrupted", "updated": now_iso()}
    rec["summary"] = {**(record.get("summary") or {}), "epochs_done": done}
    rec["error"] = {"kind": "interrupted",
                    "message": f"the trainer stopped before this run ended ({done} epochs kept)",
                    "traceback": ""}
    rec.pop("progress", None)
    return rec


def _read(path: Path) -> dict[str, Any]:
    """Parse and sanity-check one record; ValueError says what is wrong."""
    text = path.read_text(encoding="utf-8")
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as exc:
        if not text.strip():
            raise ValueError("the file is empty") from None
        raise ValueError(f"broken JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(rec, dict):
        raise ValueError("expected a JSON object")
    for key in ("run_id", "status", "config"):
        if key not in rec:
            raise ValueError(f"missing '{key}'")
    if not isinstance(rec["config"], dict) or not isinstance(rec.get("history", []), list):
        raise ValueError("'config' or 'history' has the wrong type")
    schema = rec.get("schema", SCHEMA_VERSION)
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise ValueError(f"unknown schema {schema!r} (written by a newer cnn-tui?)")
    rec.setdefault("history", [])
    rec.setdefault("summary", {})
    rec.setdefault("error", None)
    rec.setdefault("env", {})
    return rec
