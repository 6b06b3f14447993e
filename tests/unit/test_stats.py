"""Statistics against hand-computed values: t distribution, summaries, paired tests, curves."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from trainer.lessons.curves import curve_band, curve_marks
from trainer.lessons.metrics import METRICS, run_metrics
from trainer.lessons.planning import build_requests
from trainer.lessons.preset import Claim, Preset, Variant
from trainer.lessons.report import (
    format_ci,
    format_diff,
    format_interval,
    format_p,
    format_range,
    format_summary,
    format_value,
    stats_table,
)
from trainer.lessons.stats import (
    Summary,
    group_by_variant,
    lesson_stats,
    paired,
    summarize,
)
from trainer.lessons.student_t import betainc, t_cdf, t_critical, t_ppf, t_two_sided_p
from trainer.store.parse import parse_record


def make_preset(labels=("BN off", "BN on"), claims=(), key="batch_norm", try_next=()):
    return Preset(key=key, title="T", summary="s", lesson="l", expect="e", base={},
                  variants=[Variant(label, {}) for label in labels], repeats=3,
                  claims=list(claims), try_next=list(try_next), source=Path("x.toml"))


def make_doc(variant, repeat, test_acc=None, *, preset="batch_norm", status="finished",
                group="g1", val_accs=(0.4, 0.5, 0.55), seconds=2.0, params=1000,
                dataset="synthetic", epochs=3, updated="2026-01-01T00:00:00"):
    """A store record in its JSON form (spec format), built by hand."""
    history = [{"epoch": i + 1, "train_loss": 2.0 - 0.1 * i, "train_acc": 0.3 + 0.1 * i,
                "val_loss": 1.5 - 0.1 * i, "val_acc": v, "lr": 0.001, "seconds": seconds,
                "is_best": True, "lr_dropped": False} for i, v in enumerate(val_accs)]
    summary = {}
    if status == "finished":
        summary = {"test_acc": test_acc, "test_loss": 0.9, "best_epoch": len(history),
                   "best_val_acc": max(val_accs) if val_accs else None,
                   "best_val_loss": 1.0, "epochs_done": len(history)}
    return {"schema": 1, "run_id": f"{group}-{variant}-{repeat}", "group": group,
            "preset": preset, "variant": variant, "repeat": repeat,
            "config": {"dataset": dataset, "epochs": epochs, "seed": repeat},
            "status": status, "created": updated, "updated": updated, "env": {},
            "params": params, "history": history, "summary": summary, "error": None}


def make_record(*args, **kwargs):
    """The same record as the store reads it."""
    return parse_record(make_doc(*args, **kwargs))


# -- Student t ----------------------------------------------------------------------------


@pytest.mark.parametrize("df, expected", [(1, 12.706), (2, 4.303), (4, 2.776), (29, 2.045),
                                          (1000, 1.962)])
def test_t_critical_matches_table_values(df, expected):
    assert t_critical(df) == pytest.approx(expected, abs=1e-3)


def test_t_cdf_is_symmetric_and_matches_closed_forms():
    assert t_cdf(0.0, 5) == 0.5
    for df in (1, 2, 7.5, 40):
        for t in (0.3, 1.0, 2.5, 9.0):
            assert t_cdf(t, df) + t_cdf(-t, df) == pytest.approx(1.0, abs=1e-12)
    # df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/π.
    assert t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-12)
    # df = 2: F(t) = 1/2 + t / (2 √(2 + t²)).
    assert t_cdf(1.5, 2) == pytest.approx(0.5 + 1.5 / (2 * math.sqrt(2 + 1.5**2)), abs=1e-12)
    assert t_cdf(math.inf, 3) == 1.0 and t_cdf(-math.inf, 3) == 0.0


def test_t_ppf_inverts_the_cdf_and_two_sided_p_matches():
    for df in (1, 3, 12):
        for p in (0.01, 0.3, 0.9, 0.999):
            assert t_cdf(t_ppf(p, df), df) == pytest.approx(p, abs=1e-9)
    assert t_ppf(0.5, 4) == 0.0
    assert t_two_sided_p(2.0, 6) == pytest.approx(2 * (1 - t_cdf(2.0, 6)), abs=1e-12)
    with pytest.raises(ValueError):
        t_ppf(1.0, 3)


def test_betainc_simple_cases():
    assert betainc(1, 1, 0.3) == pytest.approx(0.3)  # uniform
    assert betainc(3, 1, 0.5) == pytest.approx(0.5**3)  # I_x(a, 1) = x^a
    assert betainc(2, 5, 0.0) == 0.0 and betainc(2, 5, 1.0) == 1.0


# -- summaries ------------------------------------------------------------------------------


def test_summarize_three_values_by_hand():
    s = summarize([0.70, 0.72, 0.74])
    assert s.n == 3
    assert s.mean == pytest.approx(0.72)
    assert s.std == pytest.approx(0.02)
    half = 4.303 * 0.02 / math.sqrt(3)  # t_{0.975, 2} · s / √n
    assert s.ci_low == pytest.approx(0.72 - half, abs=1e-5)
    assert s.ci_high == pytest.approx(0.72 + half, abs=1e-5)
    assert s.half_width == pytest.approx(half, abs=1e-5)


def test_summarize_single_value_gives_no_spread():
    assert summarize([0.81]) == Summary(1, 0.81, None, None, None)


def test_summarize_empty_and_missing_values():
    assert summarize([]) == Summary(0)
    assert summarize([None, float("nan")]) == Summary(0)
    assert summarize([0.5, None, 0.7]).n == 2


def test_summarize_identical_values_collapse_the_interval():
    s = summarize([0.7, 0.7, 0.7])
    assert (s.mean, s.std, s.ci_low, s.ci_high) == (0.7, 0.0, 0.7, 0.7)


# -- paired comparisons -----------------------------------------------------------------------


def test_paired_hand_computed_case():
    # Differences 1, 2, 3: mean 2, sd 1, se 1/√3, t = 2√3 ≈ 3.464 with 2 degrees of freedom.
    p = paired([10.0, 20.0, 30.0], [11.0, 22.0, 33.0])
    assert p.n == 3
    assert p.mean_diff == pytest.approx(2.0)
    assert p.std == pytest.approx(1.0)
    half = 4.302653 / math.sqrt(3)
    assert (p.ci_low, p.ci_high) == (pytest.approx(2 - half), pytest.approx(2 + half))
    t = 2 * math.sqrt(3)
    assert p.p_value == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-9)  # df = 2 closed form
    assert p.p_value == pytest.approx(0.0742, abs=1e-4)


def test_paired_difference_is_b_minus_a():
    assert paired([0.7, 0.8], [0.6, 0.75]).mean_diff < 0
    assert paired([0.6, 0.75], [0.7, 0.8]).mean_diff > 0


def test_paired_single_pair_has_no_interval_or_test():
    p = paired([0.7], [0.75])
    assert p.n == 1 and p.mean_diff == pytest.approx(0.05)
    assert (p.std, p.ci_low, p.ci_high, p.p_value) == (None, None, None, None)
    assert paired([], []).n == 0


def test_paired_identical_differences():
    # 0.75 − 0.70 and 0.80 − 0.75 differ in the last float bit; they still count as equal.
    p = paired([0.70, 0.75, 0.60], [0.75, 0.80, 0.65])
    assert p.std == 0.0 and p.p_value == 0.0 and p.ci_low == p.ci_high == p.mean_diff
    same = paired([0.7, 0.8], [0.7, 0.8])
    assert same.mean_diff == 0.0 and same.p_value == 1.0 and same.ci_low == same.ci_high == 0.0


def test_paired_needs_equal_lengths():
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0])


# -- run metrics ------------------------------------------------------------------------------


def test_run_metrics_from_a_hand_made_record():
    doc = make_doc("BN on", 0, 0.78, val_accs=(0.40, 0.50, 0.55, 0.62), params=123_456)
    doc["history"][1]["seconds"] = 4.0  # seconds 2, 4, 2, 2 → mean 2.5
    m = run_metrics(parse_record(doc))
    assert set(m) == set(METRICS)
    assert m["test_acc"] == 0.78 and m["test_loss"] == 0.9
    assert m["best_val_acc"] == 0.62 and m["best_epoch"] == 4
    assert m["seconds_per_epoch"] == pytest.approx(2.5)
    assert m["params"] == 123_456
    # Changes 0.10, 0.05, 0.07: mean 0.22/3, sample std by hand.
    mean = 0.22 / 3
    sd = math.sqrt(((0.10 - mean) ** 2 + (0.05 - mean) ** 2 + (0.07 - mean) ** 2) / 2)
    assert m["val_acc_std"] == pytest.approx(sd)
    assert m["final_train_loss"] == pytest.approx(2.0 - 0.3)
    assert m["epoch1_val_acc"] == 0.40


def test_run_metrics_of_short_empty_and_diverged_runs():
    assert run_metrics(make_record("x", 0, 0.5, val_accs=(0.3, 0.4)))["val_acc_std"] is None
    empty = run_metrics(parse_record({"run_id": "r", "status": "running", "config": {}}))
    assert all(v is None for v in empty.values())
    diverged = make_doc("x", 0, 0.1)
    diverged["summary"]["test_loss"] = float("nan")
    assert run_metrics(parse_record(diverged))["test_loss"] is None


# -- curves ------------------------------------------------------------------------------------


def test_curve_band_with_unequal_lengths():
    finished = make_record("BN on", 0, 0.7, val_accs=(0.40, 0.50, 0.60))
    running = make_record("BN on", 1, status="running", val_accs=(0.44, 0.56))
    band = curve_band([finished, running], "val_acc")
    assert [p.epoch for p in band] == [1, 2, 3]
    e1, e2, e3 = band
    assert e1.mean == pytest.approx(0.42) and e1.n == 2
    assert e1.std == pytest.approx(math.sqrt(2 * 0.02**2))  # sample std of 0.40, 0.44
    assert (e2.lo, e2.hi) == (0.50, 0.56)
    assert e3 == (3, 0.60, 0.0, 0.60, 0.60, 1)  # only one run got there: no spread yet
    assert curve_band([], "val_acc") == []


def test_curve_marks_lr_drops_and_best_epochs():
    a = make_doc("v", 0, 0.7, val_accs=(0.4, 0.5, 0.6, 0.6))
    a["history"][1]["lr_dropped"] = True
    a["summary"]["best_epoch"] = 3
    b = make_doc("v", 1, status="running", val_accs=(0.4, 0.5))
    b["history"][1]["is_best"] = False  # best so far: epoch 1
    marks = curve_marks([parse_record(a), parse_record(b)])
    assert marks.lr_drops == [2]
    assert marks.best_epochs == [1, 3]


# -- a lesson's statistics --------------------------------------------------------------------


def test_lesson_stats_groups_counts_and_pairs_by_group_and_repeat():
    preset = make_preset()
    records = [
        make_record("BN off", 0, 0.70), make_record("BN on", 0, 0.75),
        make_record("BN off", 1, 0.72), make_record("BN on", 1, 0.78),
        make_record("BN off", 2, status="running"), make_record("BN on", 2, status="failed"),
        # A second launch: its repeat 0 must not pair with the first launch's repeat 0.
        make_record("BN on", 0, 0.90, group="g2"),
        make_record("BN on", 0, 0.10, preset="other"),
        make_record("BN maybe", 0, 0.10),
    ]
    stats = lesson_stats(preset, records)
    assert stats.baseline == "BN off"
    off, on = stats.variants
    assert (off.finished, off.running, off.failed) == (2, 1, 0)
    assert (on.finished, on.running, on.failed) == (3, 0, 1)
    assert stats.finished == 5 and stats.running == 1 and stats.failed == 1
    assert on.metrics["test_acc"].mean == pytest.approx((0.75 + 0.78 + 0.90) / 3)
    d = stats.pair("BN on", "test_acc")
    assert d.n == 2 and d.mean_diff == pytest.approx(0.055)
    assert stats.matched["BN on"]["test_acc"] == ([0.70, 0.72], [0.75, 0.78])
    assert stats.pair("BN off", "test_acc") is None  # no pair of the baseline with itself
    assert stats.synthetic and stats.epochs == 3
    assert list(group_by_variant(preset, records)) == ["BN off", "BN on"]


def test_lesson_stats_rerun_of_a_repeat_replaces_the_older_one():
    preset = make_preset()
    records = [make_record("BN off", 0, 0.70),
               make_record("BN on", 0, 0.60, updated="2026-01-01T00:00:00"),
               make_record("BN on", 0, 0.76, updated="2026-01-02T00:00:00")]
    stats = lesson_stats(preset, records)
    assert stats.variant("BN on").finished == 1
    assert stats.pair("BN on", "test_acc").mean_diff == pytest.approx(0.06)


def test_paired_seeding_from_build_requests_gives_matched_pairs():
    """Repeat r of every variant has the same seed and split; only the lesson's key differs."""
    preset = Preset(key="batch_norm", title="BN", summary="", lesson="", expect="",
                    base={"init": "he_normal"},
                    variants=[Variant("BN off", {"batch_norm": False}),
                              Variant("BN on", {"batch_norm": True})],
                    repeats=3, claims=[Claim("BN on", "test_acc", "higher")], try_next=[],
                    source=Path("batch_norm.toml"))
    requests = build_requests(preset, {"dataset": "synthetic", "seed": 7})
    by_repeat: dict[int, list] = {}
    for r in requests:
        by_repeat.setdefault(r.repeat, []).append(r)
    assert sorted(by_repeat) == [0, 1, 2]
    for repeat, pair in by_repeat.items():
        off, on = (r.config for r in pair)
        assert off["seed"] == on["seed"] == 7 + repeat
        assert off["split_seed"] == on["split_seed"] and off["shuffle"] == on["shuffle"]
        assert {k for k in off if off[k] != on[k]} == {"batch_norm"}
    # Records made from those requests pair up repeat by repeat.
    records = [make_record(r.variant, r.repeat, 0.7 + 0.01 * r.repeat
                           + (0.05 if r.variant == "BN on" else 0.0), group=r.group)
               for r in requests]
    d = lesson_stats(preset, records).pair("BN on", "test_acc")
    assert d.n == 3 and d.mean_diff == pytest.approx(0.05) and d.std == 0.0


# -- formatting ---------------------------------------------------------------------------------


def test_formatting_for_people():
    assert format_summary("test_acc", Summary(3, 0.781, 0.006, 0.77, 0.79)) == "78.1 ± 0.6 %"
    assert format_summary("test_acc", Summary(1, 0.781)) == "78.1 %"
    assert format_summary("test_acc", Summary(0)) == "–"
    assert format_summary("params", Summary(3, 292010.0, 0.0, 292010.0, 292010.0)) == "292,010"
    assert format_value("seconds_per_epoch", 4.213) == "4.21 s"
    assert format_value("test_loss", 0.65213) == "0.652"
    assert format_diff("test_acc", 0.057) == "+5.7 points"
    assert format_diff("test_acc", -0.0004) == "0.0 points"  # no sign on a rounded zero
    assert format_diff("test_loss", -0.049) == "−0.049"
    assert format_ci("test_acc", 0.041, 0.073) == "+4.1…+7.3"
    assert format_interval("test_acc", 0.771, 0.79) == "77.1…79.0 %"
    assert format_p(0.0742) == "p = 0.074" and format_p(0.0004) == "p < 0.001"
    assert format_p(0.4) == "p = 0.40"
    assert format_range("test_acc", 0.05, 0.06) == "+5–6 points"
    assert format_range("test_acc", -0.04, -0.02) == "−2 to −4 points"
    assert format_range("test_loss", -0.06, -0.04) == "−0.04 to −0.06"
    assert format_range("test_acc", -0.01, 0.02) == "−1 to +2 points"


def test_stats_table_rows():
    preset = make_preset()
    records = [make_record("BN off", r, a) for r, a in enumerate([0.70, 0.72, 0.74])]
    records += [make_record("BN on", r, a) for r, a in enumerate([0.75, 0.78, 0.78])]
    headers, rows = stats_table(lesson_stats(preset, records))
    assert headers[0] == "variant" and len(rows) == 2
    assert rows[0][:3] == ["BN off (baseline)", "3", "72.0 ± 2.0 %"]
    assert rows[0][4] == ""  # no difference of the baseline with itself
    assert rows[1][4] == "+5.0 points"
