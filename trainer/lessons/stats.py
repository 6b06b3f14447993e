"""Statistics over repeated runs: what a lesson's results show, and how sure that is.

A lesson runs every variant `repeats` times with paired seeds (repeat r of every variant uses
the same seed, split and data order), so the natural comparison is a *paired* one: the
difference variant − baseline within each repeat, then a Student-t interval and test over those
differences. Pairing removes the seed-to-seed noise both variants share, which is why a handful
of repeats can already say something.

Stdlib only (no numpy/scipy, no torch): the TUI imports this. Accuracies stay fractions (0–1)
in every number here; `trainer.lessons.report` turns them into percent and points for people.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainer.lessons.metrics import METRICS, _num, run_metrics
from trainer.lessons.student_t import t_critical, t_two_sided_p
from trainer.store.record import RunRecord, RunStatus


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


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std of the finite values in plain float arithmetic.

    For tables of thousands of rows, where `summarize`'s exact mean and t interval cost
    more than the whole redraw; std is None for fewer than two values.
    """
    xs = [x for x in (_num(v) for v in values) if x is not None]
    if not xs:
        return None, None
    mean = math.fsum(xs) / len(xs)
    if len(xs) == 1:
        return mean, None
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


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
    diverged: int = 0  # the loss became NaN/inf: left out of every mean, and said so
    diverged_lrs: tuple[float, ...] = ()  # the learning rates of the diverged runs

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
    train_subset: int = 0  # smallest training subset among the runs (0: the whole set)

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
    def diverged(self) -> int:
        return sum(v.diverged for v in self.variants)

    @property
    def total(self) -> int:
        return (self.finished + self.running + self.queued + self.failed + self.stopped
                + self.diverged)

    @property
    def synthetic(self) -> bool:
        return "synthetic" in self.datasets


def _variant_labels(preset: Any) -> list[str]:
    return [v.label for v in getattr(preset, "variants", [])]


def group_by_variant(preset: Any, records: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """The preset's records per variant label, in the preset's variant order.

    Records of another preset or of an unknown variant label are left out.
    """
    groups: dict[str, list[RunRecord]] = {label: [] for label in _variant_labels(preset)}
    for record in records:
        if record.preset == preset.key and record.variant in groups:
            groups[record.variant].append(record)
    return groups


def _pair_key(record: RunRecord) -> tuple[str, int]:
    # Repeat r of one launch (group) is the unit that shares a seed across variants.
    return (record.group, record.repeat)


def _latest_finished(records: list[RunRecord]) -> dict[tuple[str, int], dict[str, float | None]]:
    """Metrics of finished runs keyed by (group, repeat); a re-run replaces an older one."""
    out: dict[tuple[str, int], dict[str, float | None]] = {}
    done = [r for r in records if r.status is RunStatus.FINISHED]
    for record in sorted(done, key=lambda r: r.updated or r.created):
        out[_pair_key(record)] = run_metrics(record)
    return out


def lesson_stats(preset: Any, records: Iterable[RunRecord]) -> LessonStats:
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
            running=sum(r.status is RunStatus.RUNNING for r in rs),
            failed=sum(r.status is RunStatus.FAILED for r in rs),
            stopped=sum(r.status.cut_short for r in rs),
            metrics={m: summarize(ms[m] for ms in finished.values()) for m in METRICS},
            queued=sum(r.status is RunStatus.QUEUED for r in rs),
            diverged=sum(r.status is RunStatus.DIVERGED for r in rs),
            diverged_lrs=tuple(sorted({float(r.config["lr"]) for r in rs
                                       if r.status is RunStatus.DIVERGED
                                       and isinstance(r.config.get("lr"), float)})),
        ))

    pairs: dict[str, dict[str, Paired]] = {}
    matched: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    base = metrics_by_variant.get(baseline, {})
    for label in labels[1:]:
        other = metrics_by_variant[label]
        shared = sorted(set(base) & set(other))
        pairs[label], matched[label] = {}, {}
        for m in METRICS:
            a: list[float] = []
            b: list[float] = []
            for k in shared:
                x, y = base[k][m], other[k][m]
                if x is not None and y is not None:
                    a.append(x)
                    b.append(y)
            pairs[label][m] = paired(a, b)
            matched[label][m] = (a, b)

    mine = [r for rs in groups.values() for r in rs]
    datasets = sorted({str(r.config["dataset"]) for r in mine if r.config.get("dataset")})
    epochs = [r.epochs for r in mine if r.epochs]
    subsets = [int(r.config.get("train_subset") or 0) for r in mine]
    return LessonStats(preset=preset.key, baseline=baseline, variants=variants, pairs=pairs,
                       matched=matched, datasets=datasets,
                       epochs=min(epochs) if epochs else None,
                       train_subset=min((s for s in subsets if s > 0), default=0))
