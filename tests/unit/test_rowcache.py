"""Export rows remembered between exports: unchanged ended runs are not parsed again, a
changed file is, running records never come from the cache, bad files keep their warning."""

from __future__ import annotations

import json
import os

from trainer.events import RunRequest
from trainer.store import rowcache
from trainer.store.apply import now_iso
from trainer.store.record import RunRecord, RunStatus
from trainer.store.runstore import RunStore


def stored(store: RunStore, n: int, status: RunStatus = RunStatus.FINISHED) -> list[RunRecord]:
    out = []
    for i in range(n):
        req = RunRequest(config={"lr": 0.001, "epochs": 1}, preset="p", variant=f"v{i}")
        rec = RunRecord.from_request(req, status, created=f"{now_iso()}-{i}")
        store.save(rec)
        out.append(rec)
    return out


def test_unchanged_ended_runs_are_not_parsed_again(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs")
    recs = stored(store, 3)
    (store.dir / "bad.json").write_text("{")
    first, warnings = rowcache.export_rows(store)
    assert [r["variant"] for r in first] == ["v0", "v1", "v2"] and "bad.json" in warnings[0]
    cache = rowcache.cache_path(store)
    assert cache.parent == rowcache.paths.cache_dir() and not cache.is_relative_to(store.dir)
    assert cache.stat().st_mode & 0o777 == 0o600
    read = []
    real = store.read_entry
    monkeypatch.setattr(store, "read_entry", lambda p: read.append(p.name) or real(p))
    again, warnings_again = rowcache.export_rows(store)
    assert again == first and warnings_again == warnings and read == []
    # A changed file is read again; a running record is never served from the cache.
    store.save(recs[1].with_changes(status=RunStatus.STOPPED, updated=now_iso()))
    stored(store, 1, RunStatus.QUEUED)
    rows, _ = rowcache.export_rows(store)
    assert {r["variant"]: r["status"] for r in rows}["v1"] == "stopped"
    assert sorted(read) == sorted([store.path(recs[1].run_id).name,
                                   next(p.name for p in store.dir.glob("*.json")
                                        if p.name not in {store.path(r.run_id).name
                                                          for r in recs} | {"bad.json"})])
    doc = json.loads(cache.read_text())
    status = rowcache.CSV_COLUMNS.index("status")
    cached = [e["cells"] for e in doc["files"].values() if "cells" in e]
    assert len(cached) == 3 and all(cells[status] != "queued" for cells in cached)


def test_a_forged_or_stale_cache_is_ignored(tmp_path):
    store = RunStore(tmp_path / "runs")
    stored(store, 1)
    cache = rowcache.cache_path(store)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"signature": "old", "files": {"x.json": {"row": {}}}}))
    rows, _ = rowcache.export_rows(store)
    assert len(rows) == 1 and rows[0]["variant"] == "v0"
    os.utime(store.path(rows[0]["run_id"]), ns=(1, 1))  # same size, other mtime: read again
    assert rowcache.export_rows(store)[0] == rows


def test_runs_a_worker_ended_are_exported_without_parsing(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs")
    recs = stored(store, 3)
    for rec in recs[:2]:  # the worker notes each run it ends
        rowcache.remember(store, rec.run_id)
    rowcache.remember(store, "20260101-000000-nosuch")  # gone already: nothing, no error
    read = []
    real = store.read_entry
    monkeypatch.setattr(store, "read_entry", lambda p: read.append(p.name) or real(p))
    rows, _ = rowcache.export_rows(store)
    assert [r["variant"] for r in rows] == ["v0", "v1", "v2"]
    assert read == [store.path(recs[2].run_id).name]  # only the run nobody noted
    assert not rowcache.cache_path(store).with_suffix(".notes").exists()  # merged
    # A noted run whose file changed afterwards is read again, not served stale.
    rowcache.remember(store, recs[0].run_id)
    store.save(recs[0].with_changes(variant="renamed", updated=now_iso()))
    read.clear()
    rows, _ = rowcache.export_rows(store)
    assert rows[0]["variant"] == "renamed" and read == [store.path(recs[0].run_id).name]
    read.clear()  # the cache it rewrote kept the row it read, not the older note
    assert rowcache.export_rows(store)[0] == rows and read == []


def test_a_torn_note_costs_only_its_own_run_a_parse(tmp_path, monkeypatch):
    """Notes are merged with one decode; a line torn by a crash mid-write falls back to
    reading the notes line by line, and only the torn run's file is parsed."""
    store = RunStore(tmp_path / "runs")
    recs = stored(store, 3)
    for rec in recs:
        rowcache.remember(store, rec.run_id)
    notes = rowcache.cache_path(store).with_suffix(".notes")
    lines = notes.read_bytes().splitlines(keepends=True)
    notes.write_bytes(lines[0] + lines[1][: len(lines[1]) // 2] + b"\n" + lines[2])
    read = []
    real = store.read_entry
    monkeypatch.setattr(store, "read_entry", lambda p: read.append(p.name) or real(p))
    rows, warnings = rowcache.export_rows(store)
    assert [r["variant"] for r in rows] == ["v0", "v1", "v2"] and warnings == []
    assert read == [store.path(recs[1].run_id).name]


def test_an_export_after_a_lesson_reads_its_notes_without_rewriting_the_cache(tmp_path,
                                                                              monkeypatch):
    """The common case: the cache holds every older run and the worker noted the few that
    just ended. The export reads no record and leaves the cache file alone (rewriting it per
    export costs as much as the rows at 2,000 runs); the notes are merged once enough pile
    up, and nothing is lost on the way."""
    store = RunStore(tmp_path / "runs")
    old = stored(store, 3)
    rowcache.export_rows(store)
    cache, notes = rowcache.cache_path(store), rowcache.cache_path(store).with_suffix(".notes")
    written = cache.read_bytes()
    new = stored(store, 2)
    for rec in new:
        rowcache.remember(store, rec.run_id)
    read = []
    real = store.read_entry
    monkeypatch.setattr(store, "read_entry", lambda p: read.append(p.name) or real(p))
    rows, _ = rowcache.export_rows(store)
    assert {r["run_id"] for r in rows} == {r.run_id for r in old + new} and read == []
    assert cache.read_bytes() == written and notes.exists()
    monkeypatch.setattr(rowcache, "COMPACT_NOTES", 2)
    assert rowcache.export_rows(store)[0] == rows and read == []
    assert not notes.exists() and cache.read_bytes() != written
    assert rowcache.export_rows(store)[0] == rows and read == []  # all in the cache file now
