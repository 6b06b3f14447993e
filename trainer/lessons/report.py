"""Lesson statistics in words and numbers for people: values, differences, intervals, p.

Every statistic the CLI, the TUI and the verdict show is formatted here, by the unit of its
metric (accuracies as percent and differences as points, losses to three decimals).
"""

from __future__ import annotations

from trainer.lessons.metrics import METRICS
from trainer.lessons.stats import LessonStats, Summary

MINUS = "−"


def _trim(x: float, decimals: int) -> str:
    """Fixed decimals without trailing zeros: 5.0 → "5", 5.50 → "5.5"."""
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _signed(text: str, negative: bool) -> str:
    if text.strip("0.,") == "":  # rounds to zero: no sign
        return text
    return (MINUS if negative else "+") + text


def _magnitude(unit: str, x: float, signed: bool) -> str:
    """The number part of a value or difference in `unit` (percent/points for accuracies)."""
    a = abs(x) if signed else x
    if unit == "acc":
        text = f"{a * 100:.1f}"
    elif unit == "loss":
        text = f"{a:.3f}"
    elif unit == "epochs":
        text = f"{a:.1f}"
    elif unit == "seconds":
        text = f"{a:.2f}" if a < 100 else f"{a:.0f}"
    elif unit == "count":
        text = f"{a:,.0f}"
    else:
        text = f"{a:.2f}"
    if not signed:
        return text.replace("-", MINUS)
    return _signed(text, x < 0)


def unit_of(metric: str) -> str:
    return METRICS[metric].unit if metric in METRICS else "ratio"


def format_value(metric: str, value: float | None) -> str:
    """One value for people: "78.1 %", "0.652", "12.0", "4.21 s", "292,010"."""
    if value is None:
        return "–"
    unit = unit_of(metric)
    text = _magnitude(unit, value, signed=False)
    return text + {"acc": " %", "seconds": " s"}.get(unit, "")


def format_summary(metric: str, s: Summary) -> str:
    """Mean ± std: "78.1 ± 0.6 %"; n = 1 gives the value alone, n = 0 a dash."""
    if s.mean is None:
        return "–"
    if s.std is None or (s.std == 0 and unit_of(metric) == "count"):
        return format_value(metric, s.mean)
    unit = unit_of(metric)
    mean = _magnitude(unit, s.mean, signed=False)
    std = _magnitude(unit, s.std, signed=False)
    return f"{mean} ± {std}" + {"acc": " %", "seconds": " s"}.get(unit, "")


def format_diff(metric: str, diff: float | None, with_unit: bool = True) -> str:
    """A signed difference: "+5.7 points" for accuracies, "−0.049" for losses."""
    if diff is None:
        return "–"
    unit = unit_of(metric)
    text = _magnitude(unit, diff, signed=True)
    if not with_unit:
        return text
    return text + {"acc": " points", "seconds": " s", "epochs": " epochs"}.get(unit, "")


def format_ci(metric: str, low: float | None, high: float | None) -> str:
    """The interval as "+4.1…+7.3" (difference units, no unit name)."""
    if low is None or high is None:
        return "–"
    return f"{format_diff(metric, low, False)}…{format_diff(metric, high, False)}"


def format_interval(metric: str, low: float | None, high: float | None) -> str:
    """A level interval (not a difference): "76.2…79.9 %"."""
    if low is None or high is None:
        return "–"
    unit = unit_of(metric)
    text = f"{_magnitude(unit, low, signed=False)}…{_magnitude(unit, high, signed=False)}"
    return text + {"acc": " %", "seconds": " s"}.get(unit, "")


def format_p(p: float | None) -> str:
    if p is None:
        return "–"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def format_range(metric: str, low: float, high: float) -> str:
    """The course's effect range: "+5–6 points", "−2 to −4 points", "−1 to +2 points"."""
    unit = unit_of(metric)
    scale = 100.0 if unit == "acc" else 1.0
    decimals = {"acc": 1, "loss": 3, "epochs": 1, "seconds": 2, "count": 0}.get(unit, 2)
    name = {"acc": " points", "seconds": " s", "epochs": " epochs"}.get(unit, "")
    lo, hi = _trim(abs(low) * scale, decimals), _trim(abs(high) * scale, decimals)
    if low >= 0 and high >= 0:
        body = f"+{lo}" if lo == hi else f"+{lo}–{hi}"
    elif low <= 0 and high <= 0:
        # Negative range, smaller drop first; spelled out because "−2–4" would be ambiguous.
        body = f"{MINUS}{hi}" if lo == hi else f"{MINUS}{hi} to {MINUS}{lo}"
    else:
        body = f"{MINUS}{lo} to +{hi}"
    return body + name


STATS_HEADERS = ["variant", "runs", "test acc", "95% CI", "Δ vs baseline", "95% CI (Δ)", "p",
                 "best val acc", "best epoch", "s/epoch", "params"]


def stats_table(stats: LessonStats) -> tuple[list[str], list[list[str]]]:
    """Per-variant rows of formatted text (mean ± std) for a CLI or TUI table."""
    rows = []
    for v in stats.variants:
        acc = v.metrics["test_acc"]
        runs = f"{v.finished}"
        extra = [f"{k} {what}" for k, what in ((v.running, "running"), (v.failed, "failed"))
                 if k]
        if extra:
            runs += f" (+{', '.join(extra)})"
        d = stats.pair(v.label, "test_acc")
        is_base = v.label == stats.baseline
        rows.append([
            v.label + (" (baseline)" if is_base else ""),
            runs,
            format_summary("test_acc", acc),
            format_interval("test_acc", acc.ci_low, acc.ci_high),
            "" if is_base or d is None else format_diff("test_acc", d.mean_diff),
            "" if is_base or d is None else format_ci("test_acc", d.ci_low, d.ci_high),
            "" if is_base or d is None else format_p(d.p_value).removeprefix("p = "),
            format_summary("best_val_acc", v.metrics["best_val_acc"]),
            format_summary("best_epoch", v.metrics["best_epoch"]),
            format_summary("seconds_per_epoch", v.metrics["seconds_per_epoch"]),
            format_summary("params", v.metrics["params"]),
        ])
    return list(STATS_HEADERS), rows
