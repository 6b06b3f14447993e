"""Mean ± std curves over repeats, and the epochs worth marking on them (for the charts)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from trainer.lessons.metrics import _num
from trainer.store.record import RunRecord


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


def curve_band(records: Iterable[RunRecord], key: str) -> list[BandPoint]:
    """Mean curve of history `key` (e.g. "val_acc") across runs, per epoch.

    Uses whatever epochs each run has, so running repeats take part live; later epochs may
    rest on fewer runs than early ones (see `n`). Non-finite values are skipped.
    """
    by_epoch: dict[int, list[float]] = {}
    for record in records:
        for h in record.history:
            value = _num(getattr(h, key))
            if value is not None:
                by_epoch.setdefault(h.epoch, []).append(value)
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


def curve_marks(records: Iterable[RunRecord]) -> CurveMarks:
    """Where to mark lr drops and best-val epochs for a set of runs (one variant)."""
    drops: set[int] = set()
    best: set[int] = set()
    for record in records:
        drops.update(h.epoch for h in record.history if h.lr_dropped)
        if record.best_epoch is not None:  # while running: the latest epoch flagged best
            best.add(record.best_epoch)
    return CurveMarks(sorted(drops), sorted(best))
