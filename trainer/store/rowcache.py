"""Export rows remembered between exports, so `cnn-tui export` of a big store is quick.

Parsing and checking every record is most of an export's time (a store of 2,000 runs is
~18 MB of JSON). The CSV row of a run that has ended never changes while its file does not,
so rows are kept per file, keyed by name, size and modification time: a changed file is
read again. The cache lives in the user's own cache folder, never in the runs folder (which
is shared and copied around), so nobody else's file can feed it; running records are not
cached (the next read may find them interrupted). A worker notes each run it ends, so the
first export after training reads only files no worker wrote. Deleting the cache only
costs time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from trainer import paths
from trainer.files import read_bounded
from trainer.store.atomic import atomic_write
from trainer.store.export import CSV_COLUMNS, record_row
from trainer.store.record import RunRecord
from trainer.store.runstore import RunStore

VERSION = 3  # 2: a row is its cells in CSV_COLUMNS order (a third of the JSON to decode);
# 3: records under another file's name and accuracies outside 0–1 are refused
MAX_CACHE_BYTES = 512 * 1024 * 1024
COMPACT_NOTES = 500  # notes merged into the cache file once this many have piled up


@functools.cache
def _signature() -> str:
    """Changes whenever the rows would: this module's version and the CSV's columns."""
    return hashlib.sha256(f"{VERSION}:{','.join(CSV_COLUMNS)}".encode()).hexdigest()[:16]


def cache_path(store: RunStore) -> Path:
    where = hashlib.sha256(str(store.dir.expanduser().resolve()).encode()).hexdigest()[:16]
    return paths.cache_dir() / f"export-rows-{where}.json"


def _load(path: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads(read_bounded(path, MAX_CACHE_BYTES))
        if isinstance(doc, dict) and doc.get("signature") == _signature() \
                and isinstance(doc.get("files"), dict):
            return doc["files"]
    return {}


def _save(store: RunStore, files: dict[str, Any]) -> None:
    with contextlib.suppress(OSError, TypeError, ValueError):  # only a cache
        target = cache_path(store)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, json.dumps({"signature": _signature(), "files": files},
                                        ensure_ascii=False).encode("utf-8"))
        os.chmod(target, 0o600)


def _key(info: os.stat_result | None) -> list[int] | None:
    if info is None or not stat.S_ISREG(info.st_mode):
        return None
    return [info.st_size, info.st_mtime_ns]


def _notes(store: RunStore) -> Path:
    return cache_path(store).with_suffix(".notes")


def remember(store: RunStore, run_id: str) -> None:
    """Note a run that has just ended (the worker calls this after its last save), so the
    first export after training parses nothing it has not seen. The row comes from reading
    the file back, exactly as an export would. Notes are appended as one line each (one
    write, O_APPEND: workers of a lab never clobber each other) and merged by the next
    export; a lost note only costs that export one parse."""
    path = store.path(run_id)
    with contextlib.suppress(OSError, TypeError, ValueError):  # only a cache
        key = _key(path.lstat())
        rec, warning = store.read_entry(path)
        if key is None or rec is None or not rec.terminal:
            return
        entry = {"signature": _signature(), "name": path.name, **_entry(key, rec, warning)}
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        notes = _notes(store)
        notes.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(notes, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _read_notes(path: Path) -> dict[str, Any]:
    """The entries noted in `path`, by file name (later notes win)."""
    try:
        data = read_bounded(path, MAX_CACHE_BYTES)
    except OSError:
        return {}
    lines = data.splitlines()
    try:  # one decode for the whole file; a torn or foreign line: then line by line
        entries = json.loads(b"[" + b",".join(lines) + b"]") if lines else []
    except ValueError:
        entries = []
        for line in lines:
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
    signature = _signature()
    noted: dict[str, Any] = {}
    for entry in entries:
        if isinstance(entry, dict) and entry.get("signature") == signature \
                and isinstance(entry.get("name"), str):
            name = entry.pop("name")
            entry.pop("signature")
            noted[name] = entry
    return noted


def _take_notes(store: RunStore) -> tuple[Path | None, dict[str, Any]]:
    """Move the notes aside (notes written meanwhile go to a new file) and read them; the
    taken file is deleted once its entries are in the cache file."""
    taken = _notes(store).with_suffix(".taken")
    try:
        os.replace(_notes(store), taken)
    except OSError:
        return None, {}
    return taken, _read_notes(taken)


def export_rows(store: RunStore) -> tuple[list[dict[str, str]], list[str]]:
    """Every readable run's CSV row (oldest first, as `RunStore.load` orders them) and the
    warnings about the files that were not readable.

    Notes are read where they lie and merged into the cache file only when this export
    rewrites it anyway (it parsed a file, or files went away) or once COMPACT_NOTES have
    piled up: rewriting the whole cache after every lesson would cost an export at 2,000
    runs about as much as the rows themselves."""
    cached = _load(cache_path(store))
    noted = _read_notes(_notes(store))
    cached.update(noted)
    fresh: dict[str, Any] = {}
    found: list[tuple[str, str, dict[str, str]]] = []  # (created, run id, row)
    warnings: list[str] = []
    changed = False
    try:  # names and lstat in one pass (a Path and a glob match per file cost more)
        with os.scandir(store.dir) as scan:
            entries = sorted((e for e in scan if e.name.endswith(".json")),
                             key=lambda e: e.name)
    except OSError:
        return [], []
    for item in entries:
        try:
            key = _key(item.stat(follow_symlinks=False))
        except OSError:
            key = None
        hit = cached.get(item.name)
        if key is not None and isinstance(hit, dict) and hit.get("key") == key:
            fresh[item.name] = hit
            if hit.get("warning"):
                warnings.append(str(hit["warning"]))
            row = hit.get("cells")
            if isinstance(row, list) and len(row) == len(CSV_COLUMNS):
                found.append((str(hit.get("created", "")), str(hit.get("run_id", "")),
                              dict(zip(CSV_COLUMNS, row, strict=True))))
            continue
        rec, warning = store.read_entry(store.dir / item.name)
        if warning:
            warnings.append(warning)
        if rec is not None:
            found.append((rec.created, rec.run_id, record_row(rec)))
        if key is not None and (rec is None or rec.terminal):
            fresh[item.name] = _entry(key, rec, warning)
            changed = True
    if changed or len(fresh) != len(cached) or len(noted) >= COMPACT_NOTES:
        # With the notes of runs that ended meanwhile; what this export checked wins over a
        # note of the same file (the note may predate a change it just read).
        taken, late = _take_notes(store)
        _save(store, {**late, **fresh})
        if taken is not None:  # only once its rows are in the cache file
            with contextlib.suppress(OSError):
                taken.unlink()
    found.sort(key=lambda item: (item[0], item[1]))
    return [row for _, _, row in found], warnings


def _entry(key: list[int], rec: RunRecord | None, warning: str) -> dict[str, Any]:
    if rec is None:
        return {"key": key, "warning": warning}
    row = record_row(rec)
    return {"key": key, "created": rec.created, "run_id": rec.run_id,
            "cells": [row.get(column, "") for column in CSV_COLUMNS],
            "warning": warning}
