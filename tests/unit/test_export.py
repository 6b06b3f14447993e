"""CSV export: documented columns, fractions, blanks, and atomic writes with clear errors."""

from __future__ import annotations

import csv
import errno
import os
import re
from pathlib import Path

import pytest

from trainer.config import KEYS, RunConfig
from trainer.events import EpochEnd, RunFailed, RunFinished, RunStarted
from trainer.store import atomic as store_mod  # the atomic write lives there
from trainer.store.apply import apply_event
from trainer.store.csvfile import ExportError, default_export_path
from trainer.store.export import (
    CSV_COLUMNS,
    HISTORY_COLUMNS,
    record_row,
    write_csv,
    write_history_csv,
)


def record(run_id="r1", finish=True, **config_changes):
    cfg = RunConfig(**config_changes).to_dict()
    rec = apply_event(None, RunStarted(
        run_id=run_id, config=cfg, preset="batch_norm", variant="BN on", repeat=0, group="g",
        device="cpu", device_name="cpu", torch_version="2", params=9000, steps_per_epoch=5,
        train_size=300, val_size=50, test_size=100))
    for n, secs in ((1, 2.0), (2, 4.0)):
        rec = apply_event(rec, EpochEnd(run_id, n, 2.0, 0.25, 1.9, 0.3 * n, 0.001, secs,
                                        True, False))
    if finish:
        rec = apply_event(rec, RunFinished(run_id, 1.5, 0.5734, 2, 0.6, 1.8, 2, 6.0, 123.4))
    return rec


def test_columns_lead_with_the_spec_order_and_cover_every_config_key():
    lead = ["run_id", "preset", "launch", "variant", "repeat", "seed", "dataset", "batch_norm",
            "init", "shuffle", "batch_size", "head", "l2", "lr", "optimizer", "epochs", "status",
            "epochs_done", "best_epoch", "best_val_acc", "best_val_loss", "test_acc",
            "test_loss", "params", "train_seconds", "images_per_s", "device",
            "seconds_per_epoch"]
    assert list(CSV_COLUMNS[: len(lead)]) == lead
    assert list(CSV_COLUMNS[-2:]) == ["created", "error"]
    assert set(KEYS) <= set(CSV_COLUMNS)
    assert len(CSV_COLUMNS) == len(set(CSV_COLUMNS))


def test_record_row_values():
    row = record_row(record(batch_norm=True, widths=(16, 32)))
    assert row["test_acc"] == "0.5734" and row["best_val_acc"] == "0.6"  # fractions, not %
    assert row["batch_norm"] == "true" and row["widths"] == "16,32" and row["lr"] == "0.001"
    assert row["seconds_per_epoch"] == "3" and row["epochs_done"] == "2"
    assert row["status"] == "finished" and row["error"] == "" and row["device"] == "cpu"
    assert row["params"] == "9000"


def test_unfinished_and_failed_rows_have_blanks_and_one_line_errors():
    rec = apply_event(record(finish=False), RunFailed(
        "r1", "data", "CIFAR-10 not found\n  looked in /a\n  fix: put it in /b"))
    row = record_row(rec)
    assert row["test_acc"] == "" and row["status"] == "failed"
    assert row["error"] == "CIFAR-10 not found" and row["best_epoch"] == "2"


def test_write_csv_roundtrip(tmp_path):
    out = write_csv([record("a"), record("b", finish=False)], tmp_path / "res.csv")
    assert out == tmp_path / "res.csv"
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["run_id"] for r in rows] == ["a", "b"]
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [p.name for p in tmp_path.iterdir()] == ["res.csv"]


def test_missing_folder_is_a_clear_error(tmp_path):
    target = tmp_path / "nope" / "res.csv"
    with pytest.raises(ExportError) as info:
        write_csv([record()], target)
    assert str(target) in info.value.message and "does not exist" in info.value.message


def test_folder_as_target_is_a_clear_error(tmp_path):
    with pytest.raises(ExportError, match="is a folder"):
        write_csv([record()], tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_folder_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ExportError) as info:
            write_csv([record()], ro / "res.csv")
        assert str(ro / "res.csv") in info.value.message
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_permission_denied_is_a_clear_error(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(store_mod.os, "open", denied)
    with pytest.raises(ExportError) as info:
        write_csv([record()], tmp_path / "res.csv")
    assert "Permission denied" in info.value.message and "res.csv" in info.value.message


def test_disk_full_leaves_old_file_and_no_partial(tmp_path, monkeypatch):
    target = tmp_path / "res.csv"
    target.write_text("old\n")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod.os, "write", full)
    with pytest.raises(ExportError, match="No space left"):
        write_csv([record()], target)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["res.csv"]


def test_default_export_path(tmp_path):
    path = default_export_path(tmp_path)
    assert path.parent == tmp_path and path.name.startswith("cnn-tui-results-")
    assert path.suffix == ".csv"


def test_readme_lists_every_csv_column_in_order():
    """The README is where people look the columns up: it must say exactly what is written."""
    from trainer.lessons.summary_csv import SUMMARY_COLUMNS, VERDICT_COLUMNS
    from trainer.store.export import HISTORY_COLUMNS
    from trainer.store.inside import CLASS_ACC_COLUMNS, CONFUSION_COLUMNS, LAYER_COLUMNS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### CSV files"):]
    listed = [" ".join(m.split()).split(", ")
              for m in re.findall(r"`(run_id, [^`]*|preset, launch, [^`]*)`", section)]
    assert listed == [list(CSV_COLUMNS), list(HISTORY_COLUMNS), list(SUMMARY_COLUMNS),
                      list(VERDICT_COLUMNS), list(LAYER_COLUMNS), list(CONFUSION_COLUMNS),
                      list(CLASS_ACC_COLUMNS)]


def test_history_csv_has_a_row_per_run_and_epoch(tmp_path):
    recs = [record("r0"), record("r1", finish=False)]
    extra = EpochEnd("r1", 3, 1.8, 0.3, 1.7, 0.4, 0.001, 2.0, False, False)
    recs[1] = apply_event(recs[1], extra).with_changes(variant="=HYPERLINK(1)", repeat=1)
    path = write_history_csv(recs, tmp_path / "h.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == HISTORY_COLUMNS
    assert [(r["run_id"], r["epoch"]) for r in rows] == [
        ("r0", "1"), ("r0", "2"), ("r1", "1"), ("r1", "2"), ("r1", "3")]
    assert rows[2]["repeat"] == "2" and rows[2]["variant"] == "'=HYPERLINK(1)"
    assert float(rows[0]["val_acc"]) == recs[0].history[0].val_acc
    assert rows[0]["is_best"] in ("true", "false")
