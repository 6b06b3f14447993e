"""The look-inside data in the run record: folded from events, stored, parsed, bounded."""

from __future__ import annotations

import copy
import itertools
import json

import pytest
from helpers.inside import IMAGES_KEY, diagnosis, filters, layers

from trainer.events import EpochEnd, RunFinished, RunStarted
from trainer.store.apply import apply_event, terminal_event
from trainer.store.parse import RecordError, parse_record
from trainer.store.record import RunRecord


def started() -> RunStarted:
    return RunStarted(run_id="r1", config={"epochs": 30}, preset="batch_norm", variant="BN on",
                      repeat=0, group="g", device="cpu", device_name="cpu", torch_version="2",
                      params=900_000, steps_per_epoch=665, train_size=42_500, val_size=7_500,
                      test_size=10_000)


def epoch(n: int, with_layers: bool = True) -> EpochEnd:
    return EpochEnd(run_id="r1", epoch=n, train_loss=1.0, train_acc=0.5, val_loss=1.1,
                    val_acc=0.5, lr=0.001, seconds=20.0, is_best=True, lr_dropped=False,
                    layers=layers(n) if with_layers else ())


def finished(with_diagnosis: bool = True, gallery: bool = True) -> RunFinished:
    return RunFinished(run_id="r1", test_loss=1.0, test_acc=0.7, best_epoch=30,
                       best_val_acc=0.7, best_val_loss=1.0, epochs_done=30, train_seconds=600,
                       images_per_s=2000,
                       diagnosis=diagnosis(gallery=gallery) if with_diagnosis else None)


def course_run(epochs: int = 30, gallery: bool = True) -> RunRecord:
    record = apply_event(None, started())
    for n in range(1, epochs + 1):
        record = apply_event(record, epoch(n))
    return apply_event(record, finished(gallery=gallery))


def test_events_fold_into_the_record_and_survive_json():
    record = course_run()
    assert [p.epoch for p in record.probes] == list(range(1, 31))
    assert record.probes[4].layers == layers(5)
    assert record.diagnosis == diagnosis(gallery=True)
    again = parse_record(json.loads(json.dumps(record.to_json())))
    assert again.probes == record.probes and again.diagnosis == record.diagnosis
    assert again.diagnosis is not None and again.diagnosis.filters == filters()
    assert again.diagnosis.test_images == IMAGES_KEY
    assert again.diagnosis is not None and again.diagnosis.class_acc[0] == pytest.approx(0.7)
    lost = terminal_event(record)  # a lost RunFinished rebuilt from the record keeps it
    assert isinstance(lost, RunFinished) and lost.diagnosis == record.diagnosis


def test_a_repeated_epoch_replaces_its_statistics():
    record = apply_event(apply_event(course_run(3), epoch(2)), epoch(2))
    assert [p.epoch for p in record.probes] == [1, 2, 3]


def test_records_without_the_data_parse_as_not_recorded():
    record = apply_event(apply_event(apply_event(None, started()), epoch(1, False)),
                         finished(False))
    doc = record.to_json()
    assert "probes" not in doc and "test_diagnosis" not in doc
    parsed = parse_record(json.loads(json.dumps(doc)))
    assert parsed.probes == () and parsed.diagnosis is None


def test_a_diagnosis_from_before_the_gallery_is_stored_and_read_as_before():
    doc = course_run(2, gallery=False).to_json()["test_diagnosis"]
    assert "filters" not in doc and "test_images" not in doc  # older readers see what they knew
    parsed = parse_record(course_run(2, gallery=False).to_json()).diagnosis
    assert parsed is not None and parsed.filters is None and parsed.test_images == ""


def test_a_30_epoch_course_run_stays_small():
    """With the 32 first-layer filters of the course CNN (864 numbers) and no pixels."""
    text = json.dumps(course_run().to_json(), indent=1, ensure_ascii=False)  # as the store writes
    assert len(text.encode()) < 60_000


def test_a_long_run_keeps_its_statistics_thinned_and_bounded():
    """1,000 epochs: at most KEPT_PROBE_EPOCHS of them, spread over the whole run (the first
    and the latest always), each epoch's numbers unchanged, and the record stays small."""
    from trainer.store.apply import KEPT_PROBE_EPOCHS

    record = apply_event(None, started())
    for n in range(1, 1001):
        record = apply_event(record, epoch(n))
        assert record.probes[-1].epoch == n and len(record.probes) <= KEPT_PROBE_EPOCHS
    epochs = [p.epoch for p in record.probes]
    assert epochs[0] == 1 and epochs == sorted(set(epochs)) and len(epochs) > KEPT_PROBE_EPOCHS / 2
    gaps = [b - a for a, b in itertools.pairwise(epochs)]
    assert max(gaps) <= 16  # no stretch of the run left without statistics
    assert all(p.layers == layers(p.epoch) for p in record.probes)
    text = json.dumps(record.to_json(), indent=1, ensure_ascii=False)
    assert len(text.encode()) < 300_000


def broken(change) -> str:
    doc = course_run(2).to_json()
    doc = copy.deepcopy(doc)
    change(doc)
    with pytest.raises(RecordError) as err:
        parse_record(doc)
    return err.value.field


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.update(probes=[1]), "probes"),
    (lambda d: d["probes"].update(epochs=[1, "x"]), "probes.epochs[1]"),
    (lambda d: d["probes"].update(epochs=list(range(1, 2000))), "probes.epochs"),
    (lambda d: d["probes"]["layers"][3].update(act_std=[1.0]), "probes.layers[3].act_std"),
    (lambda d: d["probes"]["layers"][0]["grad_norm"].__setitem__(1, "big"),
     "probes.layers[0].grad_norm[1]"),
    (lambda d: d["probes"]["layers"].__setitem__(2, None), "probes.layers[2]"),
    (lambda d: d["test_diagnosis"].update(confusion=[[1]]), "test_diagnosis.confusion"),
    (lambda d: d["test_diagnosis"]["confusion"][4].__setitem__(2, -3),
     "test_diagnosis.confusion[4][2]"),
    (lambda d: d["test_diagnosis"].update(classes=[{}] * 10), "test_diagnosis.classes"),
    (lambda d: d["test_diagnosis"]["mistakes"][0].update(predicted=10),
     "test_diagnosis.mistakes[0].predicted"),
    (lambda d: d["test_diagnosis"].update(mistakes=[{}] * 500), "test_diagnosis.mistakes"),
    (lambda d: d["test_diagnosis"].update(confident_wrong=[0]),
     "test_diagnosis.confident_wrong"),
    (lambda d: d["test_diagnosis"].update(test_images="../../home/x"),
     "test_diagnosis.test_images"),
    (lambda d: d["test_diagnosis"].update(test_images=5), "test_diagnosis.test_images"),
    (lambda d: d["test_diagnosis"].update(filters=[1, 2]), "test_diagnosis.filters"),
    (lambda d: d["test_diagnosis"]["filters"].update(shape=[32, 3, 3]),
     "test_diagnosis.filters.shape"),
    (lambda d: d["test_diagnosis"]["filters"].update(shape=[65, 3, 3, 3]),
     "test_diagnosis.filters.shape"),
    (lambda d: d["test_diagnosis"]["filters"].update(shape=[32, 2, 3, 3]),
     "test_diagnosis.filters.shape"),
    (lambda d: d["test_diagnosis"]["filters"].update(shape=[32, 3, 99, 3]),
     "test_diagnosis.filters.shape"),
    (lambda d: d["test_diagnosis"]["filters"].update(shape=[32, 3, 3, -3]),
     "test_diagnosis.filters.shape[3]"),
    (lambda d: d["test_diagnosis"]["filters"]["values"].pop(), "test_diagnosis.filters.values"),
    (lambda d: d["test_diagnosis"]["filters"]["values"].__setitem__(7, float("nan")),
     "test_diagnosis.filters.values[7]"),
    (lambda d: d["test_diagnosis"]["filters"]["values"].__setitem__(3, "x"),
     "test_diagnosis.filters.values[3]"),
])
def test_bad_fields_are_named(change, field):
    assert broken(change) == field


def test_text_from_the_file_is_made_safe():
    doc = course_run(1).to_json()
    doc["test_diagnosis"]["classes"][0] = "[bold]cat\x1b[2J"
    doc["probes"]["layers"][0]["name"] = "conv\x07"
    parsed = parse_record(doc)
    assert parsed.diagnosis is not None and parsed.diagnosis.classes[0] == "[bold]cat␛[2J"
    assert parsed.probes[0].layers[0].name == "conv␇"
