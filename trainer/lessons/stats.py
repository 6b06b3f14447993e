"""Statistics over repeated runs: what a lesson's results show, and how sure that is.

A lesson runs every variant `repeats` times with paired seeds (repeat r of every variant uses
the same seed, split and data order), so the natural comparison is a *paired* one: the
difference variant − baseline within each repeat, then a Student-t interval and test over those
differences. Pairing removes the seed-to-seed noise both variants share, which is why a handful
of repeats can already say something.

Stdlib only (no numpy/scipy, no torch): the TUI imports this, and the Student t distribution is
a few lines via the regularized incomplete beta function. Accuracies stay fractions (0–1) in
every number here; only the `format_*` helpers turn them into percent and points for people.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

# -- Student t distribution -------------------------------------------------------------------

_TINY = 1e-300
_EPS = 1e-15


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of I_x(a, b), evaluated with the modified Lentz method."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        # Even step of the continued fraction.
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        # Odd step.
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 ≤ x ≤ 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    # The continued fraction converges fast only below the mean; use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))  # P(T > |t|)
    return 1.0 - tail if t > 0 else tail


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| ≥ |t|), computed directly (not 1 − cdf) so tiny p values keep their precision."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(t):
        return 0.0
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t * t)))


def t_ppf(p: float, df: float) -> float:
    """Quantile of Student's t: the t with P(T ≤ t) = p (bisection; the cdf is monotone)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be strictly between 0 and 1, got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@lru_cache(maxsize=256)
def t_critical(df: float, confidence: float = 0.95) -> float:
    """Two-sided critical value, e.g. t_critical(2) = 4.303 for a 95% interval from n = 3."""
    return t_ppf(1.0 - (1.0 - confidence) / 2.0, df)


# -- metrics of one run -----------------------------------------------------------------------


class Metric(NamedTuple):
    label: str  # human name, used in sentences: "test accuracy"
    unit: str  # "acc" | "loss" | "epochs" | "seconds" | "count" | "ratio"
    higher_is_better: bool | None  # None: neither direction is "better" by itself


METRICS: dict[str, Metric] = {
    "test_acc": Metric("test accuracy", "acc", True),
    "test_loss": Metric("test loss", "loss", False),
    "best_val_acc": Metric("best validation accuracy", "acc", True),
    "best_epoch": Metric("best epoch", "epochs", None),
    "seconds_per_epoch": Metric("time per epoch", "seconds", False),
    "params": Metric("parameters", "count", None),
    # Stability: sample std of the epoch-to-epoch changes of val accuracy (a zig-zag detector
    # that ignores the steady upward trend a plain std of the curve would pick up).
    "val_acc_std": Metric("epoch-to-epoch swing of validation accuracy", "acc", False),
    "final_train_loss": Metric("final training loss", "loss", False),
    "epoch1_val_acc": Metric("validation accuracy after epoch 1", "acc", True),
}
"""Metric name → (label, unit kind, higher_is_better). Claims in presets name these keys."""


def _num(value: Any) -> float | None:
    """A finite float, or None (missing, non-numeric, NaN/inf from a diverged run)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def run_metrics(record: Mapping[str, Any]) -> dict[str, float | None]:
    """Every METRICS value of one stored run record (None where it is not known yet)."""
    summary = record.get("summary") or {}
    history = [h for h in (record.get("history") or []) if isinstance(h, Mapping)]
    seconds = [s for s in (_num(h.get("seconds")) for h in history) if s is not None]
    val_accs = [v for v in (_num(h.get("val_acc")) for h in history) if v is not None]
    changes = [b - a for a, b in itertools.pairwise(val_accs)]
    epoch1 = next((h for h in history if h.get("epoch") == 1), None)
    return {
        "test_acc": _num(summary.get("test_acc")),
        "test_loss": _num(summary.get("test_loss")),
        "best_val_acc": _num(summary.get("best_val_acc")),
        "best_epoch": _num(summary.get("best_epoch")),
        "seconds_per_epoch": statistics.fmean(seconds) if seconds else None,
        "params": _num(record.get("params")),
        # Two changes (three epochs) are the fewest that give a sample std.
        "val_acc_std": statistics.stdev(changes) if len(changes) >= 2 else None,
        "final_train_loss": _num(history[-1].get("train_loss")) if history else None,
        "epoch1_val_acc": _num(epoch1.get("val_acc")) if epoch1 else None,
    }


# -- summaries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Mean ± sample std and a 95% Student-t interval of one metric over repeats.

    n = 0: everything None. n = 1: mean only — one run gives no spread, and a made-up
    interval would mislead. Identical values: std 0 and the interval collapses to the point.
    """

    n: int
    mean: float | None = None
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def half_width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2.0


def summarize(values: Iterable[float | None], confidence: float = 0.95) -> Summary:
    """Summary of the finite values among `values` (None and NaN are skipped)."""
    xs = [x for x in (_num(v) for v in values) if x is not None]
    n = len(xs)
    if n == 0:
        return Summary(0)
    # statistics.mean is exact (fractions), so identical values give exactly that value.
    mean = float(statistics.mean(xs))
    if n == 1:
        return Summary(1, mean)
    std = 0.0 if all(x == xs[0] for x in xs) else statistics.stdev(xs)
    half = t_critical(n - 1, confidence) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class Paired:
    """Paired comparison over repeats: differences b − a (variant − baseline).

    `p_value` is the two-sided paired t test of "mean difference = 0" with n − 1 degrees of
    freedom. n = 1 gives the difference only (no spread, so no interval or test). When all
    differences are equal the spread is zero: the interval is the point and p is 0 (a
    consistent non-zero difference) or 1 (no difference at all).
    """

    n: int
    mean_diff: float | None = None
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None


def paired(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Paired:
    """Paired t analysis of b − a; `a` and `b` are matched by position (same repeat)."""
    if len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    diffs = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    if n == 0:
        return Paired(0)
    mean = float(statistics.mean(diffs))
    if n == 1:
        return Paired(1, mean)
    std = statistics.stdev(diffs)
    # Differences that agree to float rounding (0.75 − 0.70 vs 0.80 − 0.75) count as equal.
    if std <= 1e-12 * max(1.0, abs(mean)):
        return Paired(n, mean, 0.0, mean, mean, 1.0 if mean == 0 else 0.0)
    se = std / math.sqrt(n)
    half = t_critical(n - 1, confidence) * se
    p = t_two_sided_p(mean / se, n - 1)
    return Paired(n, mean, std, mean - half, mean + half, p)


# -- curves for the charts ------------------------------------------------------------------


class BandPoint(NamedTuple):
    """One epoch of a variant's mean curve: mean ± std band and min–max envelope over n runs.

    std is 0.0 when only one run has reached this epoch (n says how many did).
    """

    epoch: int
    mean: float
    std: float
    lo: float
    hi: float
    n: int


def curve_band(records: Iterable[Mapping[str, Any]], key: str) -> list[BandPoint]:
    """Mean curve of history `key` (e.g. "val_acc") across runs, per epoch.

    Uses whatever epochs each run has, so running repeats take part live; later epochs may
    rest on fewer runs than early ones (see `n`). Non-finite values are skipped.
    """
    by_epoch: dict[int, list[float]] = {}
    for record in records:
        for h in record.get("history") or []:
            epoch, value = h.get("epoch"), _num(h.get(key))
            if isinstance(epoch, int) and value is not None:
                by_epoch.setdefault(epoch, []).append(value)
    band = []
    for epoch in sorted(by_epoch):
        xs = by_epoch[epoch]
        mean = float(statistics.mean(xs))
        std = statistics.stdev(xs) if len(xs) > 1 else 0.0
        band.append(BandPoint(epoch, mean, std, min(xs), max(xs), len(xs)))
    return band


@dataclass(frozen=True)
class CurveMarks:
    """Epochs worth marking on a variant's curves (union over its runs, sorted)."""

    lr_drops: list[int]  # the schedule lowered the lr after these epochs
    best_epochs: list[int]  # best-val epoch (the kept checkpoint) of each run


def curve_marks(records: Iterable[Mapping[str, Any]]) -> CurveMarks:
    """Where to mark lr drops and best-val epochs for a set of runs (one variant)."""
    drops: set[int] = set()
    best: set[int] = set()
    for record in records:
        history = record.get("history") or []
        drops.update(h["epoch"] for h in history
                     if h.get("lr_dropped") and isinstance(h.get("epoch"), int))
        best_epoch = (record.get("summary") or {}).get("best_epoch")
        if not isinstance(best_epoch, int):
            # Still running: the latest epoch flagged best so far.
            flagged = [h["epoch"] for h in history
                       if h.get("is_best") and isinstance(h.get("epoch"), int)]
            best_epoch = flagged[-1] if flagged else None
        if isinstance(best_epoch, int):
            best.add(best_epoch)
    return CurveMarks(sorted(drops), sorted(best))


# -- a lesson's statistics ------------------------------------------------------------------

STOPPED = ("stopped", "interrupted")  # ended early by the user or a dead worker: no test result


@dataclass(frozen=True)
class VariantStats:
    """One variant: run counts by status and a Summary per metric over its finished runs."""

    label: str
    finished: int
    running: int
    failed: int
    stopped: int
    metrics: dict[str, Summary]
    queued: int = 0  # known to a UI but not started yet

    @property
    def n(self) -> int:
        return self.finished


@dataclass(frozen=True)
class LessonStats:
    """Everything the verdict, the table and the summary CSV need about one lesson's runs."""

    preset: str
    baseline: str
    variants: list[VariantStats]
    # variant label → metric → paired comparison with the baseline (non-baseline variants).
    pairs: dict[str, dict[str, Paired]]
    # variant label → metric → (baseline values, variant values) of the matched repeats,
    # so a sentence can quote levels over exactly the runs the paired difference used.
    matched: dict[str, dict[str, tuple[list[float], list[float]]]] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)  # config["dataset"] values seen
    epochs: int | None = None  # fewest configured epochs among the runs

    def variant(self, label: str) -> VariantStats | None:
        return next((v for v in self.variants if v.label == label), None)

    def pair(self, label: str, metric: str) -> Paired | None:
        return self.pairs.get(label, {}).get(metric)

    def summary(self, label: str, metric: str) -> Summary:
        v = self.variant(label)
        return v.metrics.get(metric, Summary(0)) if v else Summary(0)

    @property
    def finished(self) -> int:
        return sum(v.finished for v in self.variants)

    @property
    def running(self) -> int:
        return sum(v.running for v in self.variants)

    @property
    def queued(self) -> int:
        return sum(v.queued for v in self.variants)

    @property
    def failed(self) -> int:
        return sum(v.failed for v in self.variants)

    @property
    def stopped(self) -> int:
        return sum(v.stopped for v in self.variants)

    @property
    def total(self) -> int:
        return self.finished + self.running + self.queued + self.failed + self.stopped

    @property
    def synthetic(self) -> bool:
        return "synthetic" in self.datasets


def _variant_labels(preset: Any) -> list[str]:
    return [v.label for v in getattr(preset, "variants", [])]


def group_by_variant(preset: Any, records: Iterable[Mapping[str, Any]]) -> dict[str, list[dict]]:
    """The preset's records per variant label, in the preset's variant order.

    Records of another preset or of an unknown variant label are left out.
    """
    groups: dict[str, list[dict]] = {label: [] for label in _variant_labels(preset)}
    for record in records:
        if record.get("preset") != preset.key:
            continue
        label = record.get("variant")
        if label in groups:
            groups[label].append(dict(record))
    return groups


def _pair_key(record: Mapping[str, Any]) -> tuple[str, int]:
    # Repeat r of one launch (group) is the unit that shares a seed across variants.
    return (str(record.get("group", "")), int(record.get("repeat", 0) or 0))


def _latest_finished(records: list[dict]) -> dict[tuple[str, int], dict[str, float | None]]:
    """Metrics of finished runs keyed by (group, repeat); a re-run replaces an older one."""
    out: dict[tuple[str, int], dict[str, float | None]] = {}
    done = [r for r in records if r.get("status") == "finished"]
    for record in sorted(done, key=lambda r: str(r.get("updated") or r.get("created") or "")):
        out[_pair_key(record)] = run_metrics(record)
    return out


def lesson_stats(preset: Any, records: Iterable[Mapping[str, Any]]) -> LessonStats:
    """Per-variant summaries and paired comparisons with the baseline (the first variant).

    Final statistics use finished runs only; running/failed/stopped ones are counted so the
    UI can say how complete the picture is. Pairs are matched by (group, repeat), so runs of
    two launches never get paired with each other.
    """
    records = list(records)
    groups = group_by_variant(preset, records)
    labels = list(groups)
    baseline = labels[0] if labels else ""
    metrics_by_variant = {label: _latest_finished(rs) for label, rs in groups.items()}

    variants = []
    for label, rs in groups.items():
        finished = metrics_by_variant[label]
        variants.append(VariantStats(
            label=label,
            finished=len(finished),
            running=sum(r.get("status") == "running" for r in rs),
            failed=sum(r.get("status") == "failed" for r in rs),
            stopped=sum(r.get("status") in STOPPED for r in rs),
            metrics={m: summarize(ms[m] for ms in finished.values()) for m in METRICS},
            queued=sum(r.get("status") == "queued" for r in rs),
        ))

    pairs: dict[str, dict[str, Paired]] = {}
    matched: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    base = metrics_by_variant.get(baseline, {})
    for label in labels[1:]:
        other = metrics_by_variant[label]
        shared = sorted(set(base) & set(other))
        pairs[label], matched[label] = {}, {}
        for m in METRICS:
            both = [(base[k][m], other[k][m]) for k in shared
                    if base[k][m] is not None and other[k][m] is not None]
            a = [x for x, _ in both]
            b = [y for _, y in both]
            pairs[label][m] = paired(a, b)
            matched[label][m] = (a, b)

    mine = [r for rs in groups.values() for r in rs]
    configs = [r.get("config") or {} for r in mine]
    datasets = sorted({str(c["dataset"]) for c in configs if c.get("dataset")})
    epochs = [c["epochs"] for c in configs if isinstance(c.get("epochs"), int)]
    return LessonStats(preset=preset.key, baseline=baseline, variants=variants, pairs=pairs,
                       matched=matched, datasets=datasets,
                       epochs=min(epochs) if epochs else None)


# -- formatting for people ------------------------------------------------------------------

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


__all__ = [
    "METRICS",
    "BandPoint",
    "CurveMarks",
    "LessonStats",
    "Metric",
    "Paired",
    "Summary",
    "VariantStats",
    "betainc",
    "curve_band",
    "curve_marks",
    "format_ci",
    "format_diff",
    "format_interval",
    "format_p",
    "format_range",
    "format_summary",
    "format_value",
    "group_by_variant",
    "lesson_stats",
    "paired",
    "run_metrics",
    "stats_table",
    "summarize",
    "t_cdf",
    "t_critical",
    "t_ppf",
    "t_two_sided_p",
]
