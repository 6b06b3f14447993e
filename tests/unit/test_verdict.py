"""Verdict wording for every outcome, and the summary CSV."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import pytest

from trainer.lessons.metrics import METRICS
from trainer.lessons.preset import Claim, Preset, Variant
from trainer.lessons.presets import load_presets
from trainer.lessons.summary_csv import (
    SUMMARY_COLUMNS,
    VERDICT_COLUMNS,
    lesson_tables,
    lessons_tables,
    write_tables,
)
from trainer.lessons.verdict import format_verdict_text, make_verdict
from trainer.store.csvfile import ExportError
from trainer.store.parse import parse_record

BN_CLAIM = Claim("BN on", "test_acc", "higher", effect=(0.05, 0.06))


def make_preset(claims=(BN_CLAIM,), labels=("BN off", "BN on"), try_next=("Try lr 0.01.",),
                expect="BN on ends higher."):
    return Preset(key="batch_norm", title="Batch normalization", summary="s", lesson="l",
                  expect=expect, base={}, variants=[Variant(x, {}) for x in labels], repeats=3,
                  claims=list(claims), try_next=list(try_next), source=Path("batch_norm.toml"))


def make_doc(variant, repeat, test_acc=None, *, status="finished", group="g1",
                dataset="cifar10", epochs=30, val_accs=(0.4, 0.5, 0.55), params=1000,
                train_subset=0):
    """A store record in its JSON form (spec format), built by hand."""
    history = [{"epoch": i + 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0,
                "val_acc": v, "lr": 0.001, "seconds": 2.0, "is_best": True,
                "lr_dropped": False} for i, v in enumerate(val_accs)]
    summary = {}
    if status == "finished":
        summary = {"test_acc": test_acc, "test_loss": 0.8, "best_epoch": 3,
                   "best_val_acc": test_acc, "best_val_loss": 1.0}
    return {"schema": 1, "run_id": f"{variant}-{repeat}-{group}", "group": group,
            "preset": "batch_norm", "variant": variant, "repeat": repeat,
            "config": {"dataset": dataset, "epochs": epochs, "train_subset": train_subset},
            "status": status,
            "created": "2026-01-01T00:00:00", "updated": "2026-01-01T00:00:00",
            "params": params, "history": history, "summary": summary, "error": None}


def make_record(*args, **kwargs):
    """The same record as the store reads it."""
    return parse_record(make_doc(*args, **kwargs))


def runs(off, on, **kw):
    """Finished runs: repeat r of each variant gets off[r] / on[r] test accuracy."""
    return ([make_record("BN off", r, a, **kw) for r, a in enumerate(off)]
            + [make_record("BN on", r, a, **kw) for r, a in enumerate(on)])


# The issue's example: BN on 78.1 ± 0.6 % vs off 72.4 ± 0.9 % over 3 seeds.
OFF = [0.715, 0.724, 0.733]
ON = [0.775, 0.781, 0.787]


def test_agree_sentence_reads_like_the_issue_example():
    v = make_verdict(make_preset(), runs(OFF, ON))
    assert v.status == v.outcome == "agree" and v.n == 3 and v.final
    # Differences 6.0, 5.7, 5.4 points: sd 0.3, CI 5.7 ± 4.303·0.3/√3 = +5.0…+6.4.
    assert v.claims[0].sentence == (
        "BN on: 78.1 ± 0.6 % vs BN off: 72.4 ± 0.9 % test accuracy over 3 seeds — +5.7 points "
        "(95% CI +5.0…+6.4, p < 0.001). This matches the course (+5–6 points).")
    assert v.claims[0].effect == "within"
    assert v.headline == ("Matches the course — BN on vs BN off: +5.7 points test accuracy "
                          "over 3 seeds")
    assert v.suggestions == ["Try lr 0.01."]  # only the lesson's own ideas when all is well


def test_agree_without_effect_range_and_effect_outside_the_range():
    plain = make_preset([Claim("BN on", "test_acc", "higher")])
    v = make_verdict(plain, runs(OFF, ON))
    assert v.claims[0].sentence.endswith(
        "This matches the course: BN on gives higher test accuracy than BN off.")
    small = make_verdict(make_preset(), runs(OFF, [a + 0.02 for a in OFF]))
    assert small.status == "agree" and small.claims[0].effect == "below"
    assert small.claims[0].sentence.endswith(
        "This matches the course in direction, but the effect is smaller than the course's "
        "+5–6 points.")
    large = make_verdict(make_preset(), runs(OFF, [a + 0.10 for a in OFF]))
    assert large.claims[0].effect == "above" and "larger than" in large.claims[0].sentence


def test_disagree_wording_and_suggestions():
    v = make_verdict(make_preset(), runs(ON, OFF, dataset="synthetic", epochs=5))
    assert v.status == "disagree"
    s = v.claims[0].sentence
    assert "−5.7 points (95% CI −6.4…−5.0" in s
    # 5 epochs is far from the course's 30: said beside the course's number.
    assert s.endswith("This disagrees with the course, which found that BN on gives higher "
                      "test accuracy (+5–6 points after 30 epochs on the full training set; "
                      "these runs had 5 epochs).")
    assert v.headline.startswith("Disagrees with the course — ")
    assert any("synthetic data; the course used CIFAR-10" in x for x in v.sentences)
    text = " ".join(v.suggestions)
    assert "--dataset cifar10" in text and "Train longer: 5 epochs" in text
    assert v.suggestions[-1] == "Try lr 0.01."  # the lesson's ideas come after


def test_inconclusive_wording_when_the_ci_spans_zero():
    v = make_verdict(make_preset(), runs([0.72, 0.75, 0.70], [0.74, 0.73, 0.72]))
    assert v.status == "inconclusive"
    assert "(95% CI −5.1…+6.4, p = 0.67)" in v.claims[0].sentence
    assert v.claims[0].sentence.endswith(
        "The 95% CI includes zero, so 3 seeds cannot tell whether BN on gives higher test "
        "accuracy, as the course found (+5–6 points).")
    assert v.headline.startswith("Inconclusive — BN on vs BN off: +0.7 points")
    assert v.suggestions[0] == "Run more repeats (e.g. --repeats 5) to narrow the 95% CI."


def test_single_repeat_gives_no_interval():
    v = make_verdict(make_preset(), runs([0.72], [0.78]))
    s = v.claims[0].sentence
    assert s == ("BN on: 78.0 % vs BN off: 72.0 % test accuracy from one seed — +6.0 points; "
                 "one run per variant: no uncertainty can be given. At face value this matches "
                 "the course (+5–6 points).")
    assert "CI" not in s and v.status == "agree" and v.n == 1
    assert v.suggestions[0].startswith("Run 3 or more repeats per variant")
    # Within the ~1 point noise floor a single run cannot tell.
    close = make_verdict(make_preset(), runs([0.72], [0.725]))
    assert close.status == "inconclusive"
    assert "within run-to-run noise (about 1 point)" in close.claims[0].sentence
    worse = make_verdict(make_preset(), runs([0.72], [0.70]))
    assert worse.status == "disagree"
    assert "At face value this disagrees with the course" in worse.claims[0].sentence


def test_one_seed_headline_carries_the_same_hedge_as_the_body():
    v = make_verdict(make_preset(), runs([0.72], [0.78]))
    assert v.tentative and v.status == "agree"
    assert v.headline == ("Matches the course at face value — BN on vs BN off: +6.0 points "
                          "test accuracy (one seed: no uncertainty)")
    worse = make_verdict(make_preset(), runs([0.72], [0.70]))
    assert worse.tentative and worse.headline.startswith("Disagrees with the course at face "
                                                         "value — ")
    assert not make_verdict(make_preset(), runs(OFF, ON)).tentative  # 3 seeds: a real CI
    # Provisional one-seed results say both.
    going = make_verdict(make_preset(), [*runs([0.72], [0.78]),
                                         make_record("BN off", 1, status="running")])
    assert going.headline.startswith("So far: matches the course at face value — ")


def test_short_runs_on_a_subset_are_named_beside_the_course_number():
    v = make_verdict(make_preset(), runs(OFF, ON, epochs=3, train_subset=1000))
    assert v.claims[0].sentence.endswith(
        "This matches the course (+5–6 points after 30 epochs on the full training set; these "
        "runs had 3 epochs and 1,000 training images).")
    similar = make_preset([Claim("BN on", "test_acc", "similar", tolerance=0.1)])
    s = make_verdict(similar, runs(OFF, ON, train_subset=1000)).claims[0].sentence
    assert s.endswith("as the course found (the course: after 30 epochs on the full training "
                      "set; these runs had 1,000 training images).")
    # Runs as long as the course's on all the data: no note.
    assert "these runs had" not in make_verdict(make_preset(), runs(OFF, ON)).claims[0].sentence


def test_short_runs_get_one_suggestion_for_the_number_of_epochs():
    preset = make_preset(try_next=("Train 10–20 more epochs (--epochs 50) before judging.",
                                   "Try lr 0.01."))
    v = make_verdict(preset, runs(OFF, ON, epochs=3))
    epochs = [s for s in v.suggestions if "--epochs" in s]
    assert epochs == ["Train longer: 3 epochs is short (the course trained 30), so try "
                      "--epochs 30."]
    assert v.suggestions[-1] == "Try lr 0.01."
    # Runs as long as the course's: the lesson's own idea is the only one.
    full = make_verdict(preset, runs(OFF, ON))
    assert [s for s in full.suggestions if "--epochs" in s] == [preset.try_next[0]]
    # A disagreement after 20 epochs: still a single number.
    late = make_verdict(preset, runs(ON, OFF, epochs=20))
    assert [s for s in late.suggestions if "--epochs" in s] == [
        "Train for 30 epochs like the course (--epochs 30; these runs had 20): some effects "
        "only show late in training."]


def test_pending_before_any_run_finished():
    v = make_verdict(make_preset(), [])
    assert v.status == "pending" and v.headline == "Waiting for the first runs"
    assert v.n == 0 and not v.final
    assert [(c.status, c.sentence) for c in v.claims] == [
        ("pending", "Waiting for BN on and BN off to finish the same repeat.")]
    running = make_verdict(make_preset(), [make_record("BN off", 0, status="running")])
    assert running.status == "pending" and "1 running" in running.sentences[0]


def test_running_lesson_is_provisional():
    records = [*runs(OFF[:2], ON[:2]), make_record("BN off", 2, status="running")]
    v = make_verdict(make_preset(), records)
    assert v.status == "running" and v.outcome == "agree" and not v.final
    assert v.headline.startswith("So far: matches the course — ")
    assert v.headline.endswith("(4 finished, 1 running)")
    assert "over 2 seeds so far" in v.claims[0].sentence
    assert not any("repeats" in s for s in v.suggestions)  # more are on their way
    assert any(s.startswith("Provisional: 1 run still to go") for s in v.sentences)
    # Between two runs nothing is "running", but the caller knows more are queued.
    between = make_verdict(make_preset(), runs(OFF[:2], ON[:2]), pending_runs=2)
    assert between.status == "running" and "2 queued" in between.headline


def test_claim_waits_for_a_complete_pair():
    v = make_verdict(make_preset(), [make_record("BN off", 0, 0.7),
                                     make_record("BN on", 0, status="running")])
    assert v.status == "running" and v.outcome == "pending"
    assert v.claims[0].status == "pending"
    assert v.claims[0].sentence == "Waiting for BN on and BN off to finish the same repeat."


@pytest.mark.parametrize("on, status, ending", [
    ([0.722, 0.727, 0.733], "agree",
     "The whole 95% CI lies within ±2 points: no large difference, as the course found."),
    ([0.765, 0.774, 0.783], "disagree",
     "The whole 95% CI lies beyond ±2 points: a real difference, whereas the course found no "
     "large one."),
    ([0.70, 0.76, 0.73], "inconclusive",
     "The 95% CI reaches beyond ±2 points, so 3 seeds cannot confirm the course's finding of "
     "no large difference."),
], ids=["agree", "disagree", "inconclusive"])
def test_similar_claims(on, status, ending):
    preset = make_preset([Claim("BN on", "test_acc", "similar", tolerance=0.02)])
    v = make_verdict(preset, runs(OFF, on))
    assert v.status == status
    assert v.claims[0].sentence.endswith(ending)


def test_similar_claim_with_one_run():
    preset = make_preset([Claim("BN on", "test_acc", "similar", tolerance=0.02)])
    v = make_verdict(preset, runs([0.72], [0.73]))
    assert v.status == "agree"
    assert "one run per variant: no uncertainty can be given. At face value that is within " \
           "±2 points" in v.claims[0].sentence
    assert make_verdict(preset, runs([0.72], [0.80])).status == "disagree"


def test_lower_claim_with_a_negative_effect_range():
    claim = Claim("BN on", "test_loss", "lower", effect=(-0.06, -0.04))
    records = [r.with_changes(summary=replace(r.summary, test_loss=loss)) for r, loss in
               zip(runs(OFF, ON), [0.90, 0.92, 0.94, 0.85, 0.875, 0.89], strict=True)]
    v = make_verdict(make_preset([claim]), records)
    assert v.status == "agree" and v.claims[0].effect == "within"
    assert "BN on: 0.872 ± 0.020 vs BN off: 0.920 ± 0.020 test loss over 3 seeds — −0.048" \
        in v.claims[0].sentence
    assert v.claims[0].sentence.endswith("This matches the course (−0.04 to −0.06).")
    weak = make_verdict(make_preset([claim]), runs([0.7] * 3, [0.7] * 3))  # same losses
    assert weak.status == "inconclusive"


def test_mixed_claims_and_missing_stability_metric():
    claims = [BN_CLAIM, Claim("BN on", "val_acc_std", "lower")]
    short = runs(OFF, ON, val_accs=(0.4, 0.5))  # two epochs: no epoch-to-epoch swing
    v = make_verdict(make_preset(claims), short)
    assert v.status == "mixed"
    assert v.headline.startswith("Mixed result (2 checks: 1 matches the course, "
                                 "1 inconclusive) — BN on vs BN off: +5.7 points")
    assert v.claims[1].sentence == ("The epoch-to-epoch swing of validation accuracy of BN on "
                                    "vs BN off could not be measured (it needs at least 3 "
                                    "epochs per run).")
    assert any("Train at least 10 epochs" in s for s in v.suggestions)
    assert not any("repeats" in s for s in v.suggestions)  # more seeds would not help here
    both = make_verdict(make_preset([BN_CLAIM, Claim("BN on", "best_val_acc", "higher")]),
                        runs(OFF, ON))
    assert both.headline.startswith("Matches the course on both checks — ")


def test_failed_runs_are_left_out_and_all_failed_is_inconclusive():
    records = [*runs(OFF, ON), make_record("BN on", 3, status="failed")]
    v = make_verdict(make_preset(), records)
    assert v.status == "agree"
    assert "1 run failed and is left out." in v.sentences
    dead = make_verdict(make_preset(), [make_record("BN off", 0, status="failed"),
                                        make_record("BN on", 0, status="stopped")])
    assert dead.status == "inconclusive"
    assert dead.sentences[0] == "No run finished, so there is nothing to compare."
    assert dead.claims[0].status == "inconclusive"


def test_lesson_without_claims_reports_numbers_and_the_course_text():
    v = make_verdict(make_preset(claims=[], expect="BN on ends\n higher."), runs(OFF, ON))
    assert v.status == "inconclusive" and v.claims == []
    assert v.headline.startswith("No checkable claim in this lesson — ")
    assert v.sentences[0].startswith("BN on: 78.1 ± 0.6 % vs BN off: 72.4 ± 0.9 %")
    assert "The course found: BN on ends higher." in v.sentences


def test_format_verdict_text():
    v = make_verdict(make_preset(), runs(OFF, ON))
    text = format_verdict_text(v)
    lines = text.splitlines()
    assert lines[0] == f"Verdict: {v.headline}"
    assert lines[1] == "  " + v.claims[0].sentence
    assert lines[-2:] == ["Try next:", "  - Try lr 0.01."]
    assert all(len(line) <= 60 for line in format_verdict_text(v, width=60).splitlines())


def test_summary_tables_are_tidy():
    stats_rows, verdict_rows = lesson_tables(make_preset(), runs(OFF, ON), launch="g-1")
    # One row per variant × metric, every column filled where it means something.
    assert {(r["variant"], r["metric"]) for r in stats_rows} == {
        (v, m) for v in ("BN off", "BN on") for m in METRICS}
    assert all(set(r) <= set(SUMMARY_COLUMNS) for r in stats_rows)
    by = {(r["variant"], r["metric"]): r for r in stats_rows}
    off, on = by["BN off", "test_acc"], by["BN on", "test_acc"]
    assert off["baseline"] is True and "diff_mean" not in off and off["launch"] == "g-1"
    assert off["runs_finished"] == off["n"] == 3 and off["unit"] == "acc"
    assert off["mean"] == pytest.approx(0.724) and off["std"] == pytest.approx(0.009)
    assert on["diff_n"] == 3 and on["diff_mean"] == pytest.approx(0.057)
    half = 4.302653 * 0.003 / math.sqrt(3)
    assert on["diff_ci_low"] == pytest.approx(0.057 - half)
    assert on["diff_p_value"] < 0.001
    # One row per claim, the launch's verdict on each.
    (claim,) = verdict_rows
    assert claim["claim_variant"] == "BN on" and claim["expect"] == "higher"
    assert (claim["effect_low"], claim["effect_high"]) == (0.05, 0.06)
    assert claim["claim_status"] == "agree" and "matches the course" in claim["claim_text"]
    assert claim["verdict"] == "agree" and claim["headline"].startswith("Matches")
    assert claim["try_next"] == "Try lr 0.01."


def test_write_summary_tables(tmp_path):
    summary, verdict = write_tables(lesson_tables(make_preset(), runs(OFF, ON)),
                                    tmp_path / "summary.csv")
    assert (summary, verdict) == (tmp_path / "summary.csv", tmp_path / "summary-verdict.csv")
    with summary.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    first = rows[0]
    assert first["variant"] == "BN off" and first["baseline"] == "true"
    assert first["diff_mean"] == ""  # missing → blank, not "None"
    on = next(r for r in rows if r["variant"] == "BN on" and r["metric"] == "test_acc")
    assert float(on["mean"]) == pytest.approx(0.781)
    with verdict.open(encoding="utf-8", newline="") as fh:
        claims = list(csv.DictReader(fh))
    assert tuple(claims[0]) == VERDICT_COLUMNS and "+5–6 points" in claims[0]["verdict_text"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary-verdict.csv", "summary.csv"]


def test_launches_get_a_summary_and_a_verdict_each(tmp_path):
    presets = {"batch_norm": make_preset()}
    first = runs(OFF, ON)
    second = [r.with_changes(group="g-2", run_id=r.run_id + "-2", created="2026-12-02")
              for r in runs(OFF, ON)]
    tables = lessons_tables(presets, first + second)
    assert [(r["preset"], r["launch"]) for r in tables.verdict] == [
        ("batch_norm", first[0].group), ("batch_norm", "g-2")]
    assert {r["launch"] for r in tables.summary} == {first[0].group, "g-2"}
    assert all(r["n"] == 3 for r in tables.summary if r["metric"] == "test_acc")
    # No runs yet: statistics rows with n = 0, and one verdict row that says so.
    empty = lesson_tables(make_preset(), [])
    assert len(empty.verdict) == 1 and empty.verdict[0]["verdict"] == "pending"


def test_write_summary_errors_name_the_path(tmp_path):
    missing = tmp_path / "nope" / "summary.csv"
    with pytest.raises(ExportError, match="nope"):
        write_tables(lesson_tables(make_preset(), []), missing)
    with pytest.raises(ExportError, match="is a folder"):
        write_tables(lesson_tables(make_preset(), []), tmp_path)


def test_every_builtin_preset_gets_a_verdict():
    presets, problems = load_presets()
    assert presets and not problems
    for preset in presets.values():
        records = []
        for r in range(2):
            for i, variant in enumerate(preset.variants):
                rec = make_record(variant.label, r, 0.6 + 0.03 * i + 0.01 * r,
                                  val_accs=(0.3, 0.4 + 0.01 * i, 0.5, 0.45 + 0.02 * r))
                records.append(rec.with_changes(preset=preset.key))
        v = make_verdict(preset, records)
        assert v.status in ("agree", "disagree", "inconclusive", "mixed"), preset.key
        assert len(v.claims) == len(preset.claims) and v.headline and v.sentences
        tables = lesson_tables(preset, records)
        assert len(tables.summary) == len(preset.variants) * len(METRICS)
        assert len(tables.verdict) == max(1, len(v.claims))
