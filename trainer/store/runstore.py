"""The run store: one JSON document per run, replaced atomically as the run goes.

Why one file per run: a crash, a killed app or a dropped SSH session can damage at most the
file being written, and the atomic replace (temp file + fsync + rename) means even that file
is either the old or the new version. The worker saves at RunStarted, after every epoch and
at the end, so at most the epoch in progress is lost.

Run folders are copied between machines and shared, so reading is defensive: only regular
files, a size bound, no blocking open (a FIFO named `x.json`), and every document goes
through `parse_record`, so one bad file is skipped with a warning naming it and its field.
Torch-free: the TUI imports this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from trainer import paths
from trainer.files import read_bounded
from trainer.store.apply import interrupted, now_iso
from trainer.store.atomic import atomic_write
from trainer.store.liveness import writer_gone
from trainer.store.parse import RecordError, parse_record
from trainer.store.record import RunError, RunRecord, RunStatus, safe_run_id
from trainer.text import clean

MAX_RECORD_BYTES = 16 * 1024 * 1024  # a 30-epoch record is ~10 KB; anything this big is not one
STALE_TMP_SECONDS = 3600  # leftover temp files of a killed writer are removed after this


class StoreError(OSError):
    """Saving a run failed (disk full, permissions); `message` names the file and the cause."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class RunStore:
    """The folder of run records (default: the per-user runs dir)."""

    def __init__(self, runs_dir: str | Path | None = None) -> None:
        self.dir = Path(runs_dir).expanduser() if runs_dir is not None else paths.runs_dir()

    def path(self, run_id: str) -> Path:
        return self.dir / f"{run_id}.json"

    def save(self, record: RunRecord) -> Path:
        """Replace the run's file atomically; on failure the old file stays and StoreError says
        why (the temp file is removed, so a full disk does not fill up further)."""
        run_id = record.run_id
        if not safe_run_id(run_id):
            raise StoreError(f"cannot save a run with id {clean(repr(run_id))}")
        target = self.path(run_id)
        try:
            data = json.dumps(record.to_json(), indent=1, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:  # not JSON-serialisable: a programming error
            raise StoreError(f"could not save run {run_id}: {exc}", target) from exc
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data)
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise StoreError(f"could not save run {run_id} to {target}: {why}", target) from exc
        return target

    # -- managing runs that have ended (the app's label/note, archive and delete) -------
    ARCHIVE = "archive"  # a subfolder: archived runs leave the table but stay on disk

    def annotate(self, run_id: str, label: str, note: str) -> RunRecord:
        """Give an ended run the user's label and note; StoreError says why not."""
        rec = self._ended(run_id)
        changed = rec.with_changes(label=clean(label, single_line=True).strip()[:80],
                                   note=clean(note).strip()[:2000])
        self.save(changed)
        return changed

    def archive(self, run_id: str) -> Path:
        """Move an ended run into `archive/` (out of the table and the exports, kept on disk;
        move it back to restore it). Returns where it went."""
        self._ended(run_id)
        folder = self.dir / self.ARCHIVE
        target = folder / f"{run_id}.json"
        try:
            folder.mkdir(exist_ok=True)
            os.replace(self.path(run_id), target)
        except OSError as exc:
            raise StoreError(f"could not archive run {run_id}: {exc.strerror or exc}",
                             self.path(run_id)) from exc
        return target

    def discard(self, run_id: str) -> None:
        """Remove an ended run's file for good (the app's delete, after asking)."""
        self._ended(run_id)
        try:
            self.path(run_id).unlink()
        except OSError as exc:
            raise StoreError(f"could not delete run {run_id}: {exc.strerror or exc}",
                             self.path(run_id)) from exc

    def _ended(self, run_id: str) -> RunRecord:
        """The stored record of a run that has ended (the others are still being written)."""
        if not safe_run_id(run_id):
            raise StoreError(f"no run with id {clean(repr(run_id))}")
        try:
            rec = read_record(self.path(run_id))
        except (OSError, ValueError) as exc:
            raise StoreError(f"run {run_id} is not in {self.dir} (or not readable): {exc}",
                             self.path(run_id)) from exc
        if not rec.terminal:
            raise StoreError(f"run {run_id} is {rec.status.value}: only runs that have ended "
                             "can be changed")
        return rec

    def get(self, run_id: str) -> RunRecord | None:
        """One record, or None if missing or unreadable."""
        try:
            return read_record(self.path(run_id))
        except (OSError, ValueError):
            return None

    def count(self) -> int:
        """How many record files there are (without reading them)."""
        if not self.dir.is_dir():
            return 0
        return sum(1 for _ in self.dir.glob("*.json"))

    def load(self) -> tuple[list[RunRecord], list[str]]:
        """Every readable record (oldest first) and warnings about the files that were not.

        Records left "running" by a worker that is gone (app killed, SSH dropped, power cut)
        become "interrupted" (saved) with their completed epochs kept.
        """
        records: list[RunRecord] = []
        warnings: list[str] = []
        if not self.dir.is_dir():
            return records, warnings
        self._remove_stale_tmp()
        for path in sorted(self.dir.glob("*.json")):
            rec, warning = self.read_entry(path)
            if warning:
                warnings.append(warning)
            if rec is not None:
                records.append(rec)
        records.sort(key=lambda r: (r.created, r.run_id))
        return records, warnings

    def read_entry(self, path: Path) -> tuple[RunRecord | None, str]:
        """One file of the store: its record (None when unreadable) and a warning, if any.

        A record left "running" by a worker that is gone (app killed, SSH dropped, power cut)
        becomes "interrupted" (saved) with its completed epochs kept.
        """
        shown = clean(str(path), single_line=True)
        try:
            rec = read_record(path)
        except OSError as exc:
            why = clean(exc.strerror or str(exc), single_line=True)
            return None, f"skipped {shown}: cannot read it ({why})"
        except ValueError as exc:
            why = clean(str(exc), single_line=True)
            return None, f"skipped {shown}: not a valid run record ({why})"
        if rec.status is RunStatus.RUNNING and writer_gone(rec):
            rec = interrupted(rec)
            try:
                self.save(rec)
            except StoreError as exc:
                return rec, f"{exc.message} (shown as interrupted anyway)"
        return rec, ""

    def _remove_stale_tmp(self) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        for tmp in self.dir.glob(".*.json.tmp-*"):
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()

    def mark(self, run_id: str, status: RunStatus,
             error: RunError | None = None) -> RunRecord | None:
        """Set a stored run's status (and error); returns the new record, None if not stored."""
        rec = self.get(run_id)
        if rec is None:
            return None
        rec = rec.with_changes(status=status, updated=now_iso(),
                               error=error if error is not None else rec.error)
        self.save(rec)
        return rec

    def delete(self, run_id: str) -> bool:
        """Remove a run's file; False when it was not there."""
        try:
            self.path(run_id).unlink()
        except FileNotFoundError:
            return False
        return True


def read_record(path: Path) -> RunRecord:
    """Read, decode and check one record file; ValueError (or OSError) says what is wrong."""
    data = read_bounded(path, MAX_RECORD_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise ValueError("the file is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"broken JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    rec = parse_record(doc)  # RecordError (a ValueError) names the bad field
    if rec.run_id != path.stem:
        # A record is saved, labelled and deleted through `<run_id>.json`: one under another
        # name (renamed, or a copy) would have those land on a different file, or none.
        raise RecordError("run_id", f"is '{rec.run_id}' but the file is named "
                          f"{clean(path.name, single_line=True)} (renamed or copied?): name "
                          f"it {rec.run_id}.json to load it")
    return rec
