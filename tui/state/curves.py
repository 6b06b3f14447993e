"""View models of the charts: one run's curves, or one variant's mean ± std band, and the
smoothing the charts can apply to them (plain math, testable without a terminal)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from trainer.events import Progress
from trainer.lessons.curves import BandPoint

CURVE_KEYS = ("train_loss", "val_loss", "train_acc", "val_acc")
LivePoint = tuple[float, float, float]  # (x in epochs, running loss, running accuracy)


def live_point(prog: Progress | None) -> LivePoint | None:
    """Where the epoch in progress stands, for the charts' moving point."""
    if prog is None or not prog.steps:
        return None
    return (prog.epoch - 1 + prog.step / prog.steps, prog.loss, prog.acc)


@dataclass
class Series:
    """One run's curves for the charts (epochs on x; accuracy as a fraction)."""

    run_id: str
    variant: str
    repeat: int
    color: int  # index into the chart palette: one colour per variant
    epochs: list[int]
    train_loss: list[float]
    val_loss: list[float]
    train_acc: list[float]
    val_acc: list[float]
    lr_drops: list[int]
    best_epoch: int | None
    live: LivePoint | None
    selected: bool = False


@dataclass
class VariantCurves:
    """One variant of a launch for the charts' mean view: mean ± std over its repeats."""

    variant: str
    color: int
    runs: int  # runs that have at least one epoch
    bands: dict[str, list[BandPoint]]  # history key (val_loss, train_acc …) → band
    lr_drops: list[int]
    best_epochs: list[int]
    live: list[LivePoint]  # running repeats


SMOOTHING_STEPS = (0.0, 0.6, 0.9)  # `z` cycles these: off, some, a lot (TensorBoard's scale)


def next_smoothing(weight: float) -> float:
    """The setting after `weight` in SMOOTHING_STEPS (an unknown value starts over at off)."""
    steps = SMOOTHING_STEPS
    return steps[(steps.index(weight) + 1) % len(steps)] if weight in steps else steps[0]


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: a debiased exponential moving average.

    Debiased (divided by 1 − weight^n) so the curve starts at the first value instead of
    creeping up from zero, which matters here: a lesson has tens of epochs, not thousands of
    steps. A non-finite value (a diverged epoch) is passed through and does not poison the
    average; weight 0 returns the values unchanged.
    """
    if not 0.0 < weight < 1.0:
        return list(values)
    out: list[float] = []
    last, n = 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1.0 - weight) * v
        n += 1
        out.append(last / (1.0 - weight ** n))
    return out
