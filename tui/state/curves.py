"""View models of the charts: one run's curves, or one variant's mean ± std band."""

from __future__ import annotations

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
