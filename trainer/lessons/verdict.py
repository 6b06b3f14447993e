"""Verdicts: what a lesson's runs showed, how sure that is, and whether it matches the course.

Each preset states the course's finding as machine-checkable claims ("BN on has higher
test_acc", "He vs Glorot: similar within 2 points"). This module checks every claim against
the paired statistics of `trainer.lessons.stats` and words the outcome in plain sentences a
learner can act on, with the numbers that back them and an honest "cannot tell yet" when the
runs are too few or too noisy. It works at any moment — before, during and after the runs — so
the TUI can refresh the card live and the CLI can print it at the end.

The rules, kept deliberately simple so a learner can follow them:
- higher/lower, n ≥ 2: the 95% CI of the paired difference entirely on the expected side →
  agree; entirely on the other side → disagree; spanning zero → inconclusive.
- higher/lower, n = 1: no interval exists; the point difference is compared with a noise floor
  (about 1 point of accuracy) and the sentence says that no uncertainty can be given.
- similar: the CI inside ±tolerance → agree; entirely outside → disagree; else inconclusive.
- one seed per variant: the headline says "at face value", as the sentences do; runs far
  shorter than the course's are said to be so next to the course's number.

Torch-free (the TUI imports it).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trainer.formats import short_float
from trainer.lessons.metrics import METRICS
from trainer.lessons.report import (
    format_ci,
    format_diff,
    format_p,
    format_range,
    format_summary,
    unit_of,
)
from trainer.lessons.stats import LessonStats, Paired, Summary, lesson_stats, summarize
from trainer.store.record import RunRecord

COURSE_EPOCHS = 30  # the course trained every lesson for 30 epochs
SHORT_EPOCHS = 10  # fewer than this and most effects have not shown yet
_EPOCHS_FLAG = re.compile(r"--epochs\b")  # a suggestion that names a number of epochs

# Differences smaller than this are run-to-run noise when only one run per variant exists.
NOISE_FLOOR: dict[str, float] = {"val_acc_std": 0.003}
UNIT_NOISE: dict[str, float] = {"acc": 0.01, "loss": 0.02, "epochs": 1.0, "count": 0.0}
RELATIVE_NOISE: dict[str, float] = {"seconds": 0.05, "ratio": 0.05}  # of the baseline's value
# For "similar" claims without a tolerance of their own (presets normally give one).
UNIT_TOLERANCE: dict[str, float] = {"acc": 0.02, "loss": 0.05, "epochs": 2.0, "count": 0.0}
RELATIVE_TOLERANCE: dict[str, float] = {"seconds": 0.10, "ratio": 0.10}

# Half of the last shown digit, so "+5.0 points" is never called "below +5–6 points".
_DISPLAY_EPS: dict[str, float] = {"acc": 0.0005, "loss": 0.0005, "epochs": 0.05,
                                  "seconds": 0.005, "count": 0.5, "ratio": 0.005}

PHRASE = {
    "agree": "Matches the course",
    "disagree": "Disagrees with the course",
    "inconclusive": "Inconclusive",
    "mixed": "Mixed result",
    "pending": "Waiting for a complete pair of runs",
}


@dataclass(frozen=True)
class ClaimResult:
    """One claim checked: its status and the sentence(s) saying what the runs showed."""

    claim: Any  # trainer.lessons.presets.Claim
    status: str  # "agree" | "disagree" | "inconclusive" | "pending"
    sentence: str
    diff: Paired | None = None  # the paired difference variant − baseline it rests on
    effect: str | None = None  # "within" | "below" | "above" the course's range, if it has one


@dataclass(frozen=True)
class Verdict:
    """The card: a status, a one-line headline, plain sentences and what to try next.

    `status` is "running" while runs are still going; `outcome` then holds what the finished
    runs point to so far (the same value as `status` once everything is done).
    """

    status: str  # "pending" | "running" | "agree" | "disagree" | "inconclusive" | "mixed"
    headline: str
    sentences: list[str]
    suggestions: list[str]
    claims: list[ClaimResult]
    n: int  # repeats (seeds) the comparison rests on
    outcome: str = "pending"
    stats: LessonStats | None = field(default=None, repr=False)

    @property
    def final(self) -> bool:
        return self.status not in ("pending", "running")

    @property
    def tentative(self) -> bool:
        """A verdict for or against the course that rests on one seed per variant: the UI
        must not show it as settled (no uncertainty can be given)."""
        return self.n == 1 and self.outcome in ("agree", "disagree", "mixed")


# -- wording helpers ------------------------------------------------------------------------


def _amount(metric: str, x: float) -> str:
    """An unsigned size in the metric's units: "1 point", "0.02", "0.25 s"."""
    text = format_range(metric, abs(x), abs(x)).lstrip("+")
    return "1 point" if text == "1 points" else text


def _noise(metric: str, baseline: Summary) -> float:
    unit = unit_of(metric)
    if metric in NOISE_FLOOR:
        return NOISE_FLOOR[metric]
    if unit in RELATIVE_NOISE:
        return RELATIVE_NOISE[unit] * abs(baseline.mean or 0.0)
    return UNIT_NOISE.get(unit, 0.0)


def _tolerance(claim: Any, metric: str, baseline: Summary) -> float:
    if getattr(claim, "tolerance", None) is not None:
        return float(claim.tolerance)
    unit = unit_of(metric)
    if unit in RELATIVE_TOLERANCE:
        return RELATIVE_TOLERANCE[unit] * abs(baseline.mean or 0.0)
    return UNIT_TOLERANCE.get(unit, 0.0)


def _effect_position(claim: Any, diff: float) -> str | None:
    """Where the measured difference lies relative to the course's (signed) effect range."""
    effect = getattr(claim, "effect", None)
    if not effect or claim.expect == "similar":
        return None
    low, high = sorted((float(effect[0]), float(effect[1])))
    eps = _DISPLAY_EPS.get(unit_of(claim.metric), 0.0)
    sign = -1.0 if claim.expect == "lower" else 1.0
    # Compare sizes in the expected direction, so "smaller" means a weaker effect for both.
    size, lo, hi = sign * diff, *sorted((sign * low, sign * high))
    if size < lo - eps:
        return "below"
    if size > hi + eps:
        return "above"
    return "within"


def _scale(stats: LessonStats) -> str:
    """ "after 30 epochs on the full training set; these runs had 3 epochs and 1,000 training
    images" when the runs are far smaller than the course's, else "": a learner comparing
    with the course's number must see at once that the two are not alike."""
    had = []
    if stats.epochs is not None and stats.epochs < SHORT_EPOCHS:
        had.append(_plural(stats.epochs, "epoch"))
    if stats.train_subset:
        had.append(f"{stats.train_subset:,} training images")
    if not had:
        return ""
    return (f"after {COURSE_EPOCHS} epochs on the full training set; these runs had "
            f"{' and '.join(had)}")


def _course_range(claim: Any, scale: str = "") -> str:
    """ " (+5–6 points)", with the scale note beside the number when the runs are short."""
    effect = getattr(claim, "effect", None)
    parts = [format_range(claim.metric, effect[0], effect[1])] if effect else []
    if scale:
        parts.append(scale)
    return f" ({' '.join(parts)})" if parts else ""


def _seeds(n: int, provisional: bool) -> str:
    text = "from one seed" if n == 1 else f"over {n} seeds"
    return text + (" so far" if provisional else "")


def _levels(claim: Any, stats: LessonStats, a: list[float], b: list[float]) -> str:
    """ "BN on: 78.1 ± 0.6 % vs BN off: 72.4 ± 0.9 % test accuracy" over the matched runs."""
    m = claim.metric
    label = METRICS[m].label
    return (f"{claim.variant}: {format_summary(m, summarize(b))} vs "
            f"{stats.baseline}: {format_summary(m, summarize(a))} {label}")


def _what_happened(claim: Any, stats: LessonStats, d: Paired, provisional: bool) -> str:
    """The numbers: levels of both variants, the paired difference, its CI and p (or n = 1)."""
    m = claim.metric
    a, b = stats.matched.get(claim.variant, {}).get(m, ([], []))
    text = (f"{_levels(claim, stats, a, b)} {_seeds(d.n, provisional)} — "
            f"{format_diff(m, d.mean_diff)}")
    if d.n >= 2 and d.std == 0:
        # e.g. parameter counts: an interval "−607,990…−607,990" would only look odd.
        return text + " (the same in every repeat)."
    if d.n >= 2:
        return text + f" (95% CI {format_ci(m, d.ci_low, d.ci_high)}, {format_p(d.p_value)})."
    return text + "; one run per variant: no uncertainty can be given."


def _judge(claim: Any, stats: LessonStats, provisional: bool) -> ClaimResult:
    """Check one claim against the paired statistics and word the outcome."""
    m, v, base = claim.metric, claim.variant, stats.baseline
    if m not in METRICS:
        return ClaimResult(claim, "inconclusive", f"Cannot check '{m}': not a known metric.")
    if stats.variant(v) is None or v == base:
        return ClaimResult(claim, "inconclusive",
                           f"Cannot check a claim about '{v}': not a compared variant here.")
    label = METRICS[m].label
    d = stats.pair(v, m) or Paired(0)
    if d.n == 0 or d.mean_diff is None:
        any_pair = max((p.n for p in stats.pairs.get(v, {}).values()), default=0)
        if any_pair:
            why = " (it needs at least 3 epochs per run)" if m == "val_acc_std" else ""
            return ClaimResult(claim, "inconclusive",
                               f"The {label} of {v} vs {base} could not be measured{why}.", d)
        if provisional:
            return ClaimResult(claim, "pending",
                               f"Waiting for {v} and {base} to finish the same repeat.", d)
        return ClaimResult(claim, "inconclusive",
                           f"No repeat finished for both {v} and {base}, so they cannot be "
                           "compared.", d)

    base_summary = summarize(stats.matched.get(v, {}).get(m, ([], []))[0])
    head = _what_happened(claim, stats, d, provisional)
    lead = "At face value this" if d.n == 1 else "This"

    scale = _scale(stats)
    if claim.expect == "similar":
        status, judgement = _judge_similar(claim, d, base_summary)
        if scale:
            judgement = f"{judgement[:-1]} (the course: {scale})."
        return ClaimResult(claim, status, f"{head} {judgement}", d)

    sign = -1.0 if claim.expect == "lower" else 1.0
    direction = claim.expect
    course = _course_range(claim, scale)
    if unit_of(m) == "count":
        finding = f"{v} has {'more' if direction == 'higher' else 'fewer'} {label}"
    else:
        finding = f"{v} gives {direction} {label}"
    if d.n >= 2:
        # In the expected direction: both ends > 0 → the whole CI is on the expected side.
        lo, hi = sorted((sign * (d.ci_low or 0.0), sign * (d.ci_high or 0.0)))
        status = "agree" if lo > 0 else "disagree" if hi < 0 else "inconclusive"
    else:
        noise = _noise(m, base_summary)
        size = sign * d.mean_diff
        status = ("inconclusive" if abs(d.mean_diff) <= noise
                  else "agree" if size > 0 else "disagree")

    effect = _effect_position(claim, d.mean_diff) if status == "agree" else None
    if status == "agree":
        if effect is None:
            judgement = f"{lead} matches the course: {finding} than {base}."
        elif effect == "within":
            judgement = f"{lead} matches the course{course}."
        else:
            size_word = "smaller" if effect == "below" else "larger"
            judgement = (f"{lead} matches the course in direction, but the effect is "
                         f"{size_word} than the course's {format_range(m, *claim.effect)}"
                         f"{f' ({scale})' if scale else ''}.")
    elif status == "disagree":
        judgement = f"{lead} disagrees with the course, which found that {finding}{course}."
    elif d.n >= 2:
        judgement = (f"The 95% CI includes zero, so {d.n} seeds cannot tell whether {finding}, "
                     f"as the course found{course}.")
    else:
        judgement = (f"That is within run-to-run noise (about "
                     f"{_amount(m, _noise(m, base_summary))}), so one run cannot tell whether "
                     f"{finding}, as the course found{course}.")
    return ClaimResult(claim, status, f"{head} {judgement}", d, effect)


def _judge_similar(claim: Any, d: Paired, base_summary: Summary) -> tuple[str, str]:
    m = claim.metric
    tol = _tolerance(claim, m, base_summary)
    band = f"±{_amount(m, tol)}"
    if d.n >= 2:
        lo, hi = d.ci_low or 0.0, d.ci_high or 0.0  # never None for n ≥ 2
        if -tol <= lo and hi <= tol:
            return "agree", (f"The whole 95% CI lies within {band}: no large difference, as "
                             "the course found.")
        if lo > tol or hi < -tol:
            return "disagree", (f"The whole 95% CI lies beyond {band}: a real difference, "
                                "whereas the course found no large one.")
        return "inconclusive", (f"The 95% CI reaches beyond {band}, so {d.n} seeds cannot "
                                "confirm the course's finding of no large difference.")
    size = abs(d.mean_diff or 0.0)
    if size <= tol:
        return "agree", (f"At face value that is within {band}: no large difference, as the "
                         "course found.")
    if size > tol + _noise(m, base_summary):
        return "disagree", (f"At face value that is more than {band}, whereas the course found "
                            "no large difference.")
    return "inconclusive", (f"That is just beyond {band} but within run-to-run noise, so one "
                            "run cannot tell.")


def _plural(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def _counts(stats: LessonStats, pending_runs: int) -> str:
    parts = [f"{stats.finished} finished"]
    if stats.running:
        parts.append(f"{stats.running} running")
    if stats.queued + pending_runs:
        parts.append(f"{stats.queued + pending_runs} queued")
    return ", ".join(parts)


def _key_figure(results: list[ClaimResult], stats: LessonStats) -> str:
    """ "BN on vs BN off: +5.7 points test accuracy over 3 seeds" from the first usable claim."""
    for r in results:
        d = r.diff
        if d is not None and d.n and d.mean_diff is not None and r.claim.metric in METRICS:
            m = r.claim.metric
            n_text = f"over {d.n} seeds" if d.n > 1 else "(one seed: no uncertainty)"
            return (f"{r.claim.variant} vs {stats.baseline}: {format_diff(m, d.mean_diff)} "
                    f"{METRICS[m].label} {n_text}")
    return ""


def _mixed_detail(results: list[ClaimResult]) -> str:
    """ "2 checks: 1 matches the course, 1 inconclusive"."""
    words = {"agree": ("matches the course", "match the course"),
             "disagree": ("disagrees", "disagree"), "inconclusive": ("inconclusive",) * 2,
             "pending": ("waiting",) * 2}
    parts = []
    for status, (one, many) in words.items():
        k = sum(r.status == status for r in results)
        if k:
            parts.append(f"{k} {one if k == 1 else many}")
    return f"{_plural(len(results), 'check')}: " + ", ".join(parts)


def _suggestions(preset: Any, stats: LessonStats, results: list[ClaimResult], n: int,
                 running: bool = False) -> list[str]:
    """Situational advice first (most specific), then the lesson's own `try_next` ideas."""
    out: list[str] = []
    statuses = {r.status for r in results}
    epochs = stats.epochs
    if stats.finished and n == 1:
        out.append("Run 3 or more repeats per variant (--repeats 3) so the result gets a "
                   "confidence interval.")
    elif not running and any(r.status == "inconclusive" and r.diff is not None
                             and r.diff.n >= 2 for r in results):
        # (While repeats are still coming, asking for more would be premature.)
        out.append(f"Run more repeats (e.g. --repeats {max(5, n + 2)}) to narrow the 95% CI.")
    if epochs is not None and epochs < SHORT_EPOCHS:
        out.append(f"Train longer: {_plural(epochs, 'epoch')} is short (the course trained "
                   f"{COURSE_EPOCHS}), so try --epochs {COURSE_EPOCHS}.")
    if any(r.claim.metric == "val_acc_std" and (r.diff is None or r.diff.n == 0)
           and r.status == "inconclusive" for r in results):
        out.append("Train at least 10 epochs so the epoch-to-epoch swing of validation "
                   "accuracy can be measured.")
    if "disagree" in statuses:
        if stats.synthetic:
            out.append("Run the lesson on CIFAR-10 (--dataset cifar10): the course's finding "
                       "is about CIFAR-10, and the synthetic data can behave differently.")
        if epochs is not None and SHORT_EPOCHS <= epochs < COURSE_EPOCHS:
            out.append(f"Train for {COURSE_EPOCHS} epochs like the course (--epochs "
                       f"{COURSE_EPOCHS}; these runs had {epochs}): some effects only show "
                       "late in training.")
        if not stats.synthetic and (epochs is None or epochs >= COURSE_EPOCHS):
            out.append("Compare your settings with the lesson's and add repeats: a "
                       "disagreement over few seeds can still be chance.")
    if stats.failed:
        out.append("Read the failed runs' error messages in the run table (out of memory → "
                   "try a smaller batch_size).")
    lesson_ideas = list(getattr(preset, "try_next", []) or [])
    if any(_EPOCHS_FLAG.search(s) for s in out):
        # One number to train for: the lesson's "--epochs 50" (meant after the course's 30)
        # next to our "--epochs 30" would leave a learner guessing which one to try.
        lesson_ideas = [s for s in lesson_ideas if not _EPOCHS_FLAG.search(s)]
    out.extend(lesson_ideas)
    return list(dict.fromkeys(s for s in out if s))


def _notes(stats: LessonStats, running: bool, pending_runs: int) -> list[str]:
    notes = []
    if running:
        left = stats.running + stats.queued + pending_runs
        notes.append(f"Provisional: {_plural(left, 'run')} still to go, so these numbers can "
                     "still change.")
    if stats.failed:
        notes.append(f"{_plural(stats.failed, 'run')} failed and "
                     f"{'is' if stats.failed == 1 else 'are'} left out.")
    if stats.stopped:
        notes.append(f"{_plural(stats.stopped, 'run')} ended early (stopped or interrupted) "
                     f"and {'is' if stats.stopped == 1 else 'are'} left out.")
    for v in stats.variants:
        if v.diverged:
            ended = v.finished + v.failed + v.stopped + v.diverged
            lrs = " or ".join(short_float(lr) for lr in v.diverged_lrs)
            at = f" at lr {lrs}" if lrs else ""
            notes.append(f"{v.diverged} of {ended} {v.label} runs diverged{at} (the loss became "
                         "NaN or infinite); they are left out of the means — that is a result "
                         "in itself.")
    if stats.synthetic:
        notes.append("These runs used synthetic data; the course used CIFAR-10, so the size "
                     "of an effect can differ.")
    return notes


# -- the verdict ----------------------------------------------------------------------------


def make_verdict(preset: Any, records: Iterable[RunRecord],
                 pending_runs: int = 0) -> Verdict:
    """The verdict card for `preset` from its run records, at any stage of the lesson.

    `pending_runs`: runs the caller has queued that have no record yet (between two runs no
    record is "running", and the verdict should not look final then).
    """
    stats = lesson_stats(preset, records)
    running = stats.running + stats.queued + pending_runs > 0

    claims = list(getattr(preset, "claims", []) or [])
    # With nothing finished every claim comes out "pending" (or "inconclusive" once all ended),
    # so the card and the summary CSV always list the lesson's claims.
    results = [_judge(c, stats, running or stats.total == 0) for c in claims]
    if stats.finished == 0:
        if running or stats.total == 0:
            what = (f"Runs: {_counts(stats, pending_runs)}." if running
                    else "No runs of this lesson yet.")
            return Verdict("pending", "Waiting for the first runs",
                           [what, "The verdict appears once every variant has finished a run."],
                           [], results, 0, "pending", stats)
        notes = _notes(stats, False, 0)
        return Verdict("inconclusive", "Inconclusive — no run of this lesson finished",
                       ["No run finished, so there is nothing to compare.", *notes],
                       _suggestions(preset, stats, [], 0), results, 0, "inconclusive", stats)

    if not results:
        results = [_describe_only(label, stats, running) for label in
                   [v.label for v in stats.variants[1:]]]
    decided = [r.status for r in results if r.status != "pending"]
    if not claims:
        outcome = "inconclusive"
    elif not decided:
        outcome = "pending"
    elif len(set(decided)) == 1:
        outcome = decided[0]  # claims still "pending" (running) just lack a pair yet
    else:
        outcome = "mixed"
    if not running and outcome == "pending":
        outcome = "inconclusive"
    status = "running" if running else outcome

    ns = [r.diff.n for r in results if r.diff is not None and r.diff.n]
    n = min(ns) if ns else min((v.finished for v in stats.variants), default=0)

    phrase = PHRASE[outcome] if claims else "No checkable claim in this lesson"
    if claims and n == 1 and outcome in ("agree", "disagree", "mixed"):
        phrase += " at face value"  # as every sentence says: one seed gives no uncertainty
    if outcome == "mixed":
        phrase += f" ({_mixed_detail(results)})"
    elif len(results) > 1 and outcome in ("agree", "disagree") and len(decided) == len(results):
        phrase += " on both checks" if len(results) == 2 else f" on all {len(results)} checks"
    key = _key_figure(results, stats)
    headline = phrase + (f" — {key}" if key else "")
    if running:
        headline = f"So far: {headline[0].lower()}{headline[1:]} ({_counts(stats, pending_runs)})"

    # Two claims about the same pair can word a missing pair identically: say it once.
    sentences = list(dict.fromkeys(r.sentence for r in results))
    if not claims:
        expect = " ".join(str(getattr(preset, "expect", "") or "").split())
        if expect:
            sentences.append(f"The course found: {expect}")
    sentences += _notes(stats, running, pending_runs)
    return Verdict(status, headline, sentences,
                   _suggestions(preset, stats, results, n, running),
                   results if claims else [], n, outcome, stats)


@dataclass(frozen=True)
class _PlainComparison:
    """Stands in for a claim when a lesson has none: just report test accuracy."""

    variant: str
    metric: str = "test_acc"
    expect: str = "higher"
    effect: None = None
    tolerance: None = None


def _describe_only(label: str, stats: LessonStats, provisional: bool) -> ClaimResult:
    """Test accuracy of one variant vs the baseline, for a lesson without claims."""
    claim = _PlainComparison(label)
    d = stats.pair(label, "test_acc") or Paired(0)
    if not d.n:
        return ClaimResult(claim, "pending", f"Waiting for {label} and {stats.baseline} to "
                           "finish the same repeat.", d)
    return ClaimResult(claim, "inconclusive", _what_happened(claim, stats, d, provisional), d)


def format_verdict_text(verdict: Verdict, width: int | None = None) -> str:
    """Plain text of the card for the CLI (wrapped to `width` when given)."""

    def wrap(text: str, indent: str) -> list[str]:
        if not width:
            return [indent + text]
        return textwrap.wrap(text, width, initial_indent=indent,
                             subsequent_indent=indent + "  ") or [indent]

    lines = wrap(f"Verdict: {verdict.headline}", "")
    for s in verdict.sentences:
        lines += wrap(s, "  ")
    if verdict.suggestions:
        lines.append("Try next:")
        for s in verdict.suggestions:
            lines += wrap(f"- {s}", "  ")
    return "\n".join(lines)
