"""What the Inside view shows: one run per variant of a launch, and scales shared by all.

Plain Python (no Textual), so the choice of runs and the colour scales are tested without a
terminal. The scales are shared by every column, so "BN on" and "BN off" side by side use the
same colour for the same number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from trainer.store.record import RunRecord


def inside_runs(group: Sequence[RunRecord], order: Sequence[str],
                selected: str | None) -> list[RunRecord]:
    """One run per variant in lesson order: the highlighted run for its own variant, and the
    same repeat (paired seed) of the others where it exists, else their first repeat."""
    chosen = next((r for r in group if r.run_id == selected), None)
    repeat = chosen.repeat if chosen is not None else 0
    out = []
    for variant in [*order, *sorted({r.variant for r in group} - set(order))]:
        runs = sorted((r for r in group if r.variant == variant), key=lambda r: r.repeat)
        if not runs:
            continue
        if chosen is not None and chosen.variant == variant:
            out.append(chosen)
        else:
            out.append(next((r for r in runs if r.repeat == repeat), runs[0]))
    return out


@dataclass(frozen=True)
class Scale:
    """Maps a value to a level 0…levels-1, linearly or on a log10 axis."""

    lo: float
    hi: float
    log: bool = False

    def level(self, value: float | None, levels: int) -> int | None:
        if value is None or not math.isfinite(value):
            return None
        if self.log:
            if value <= 0:
                return 0
            value = math.log10(value)
        span = self.hi - self.lo
        x = (value - self.lo) / span if span > 0 else 1.0
        return min(levels - 1, max(0, int(x * levels)))

    def describe(self) -> str:
        if self.log:
            return f"log scale {10 ** self.lo:.1e} … {10 ** self.hi:.1e}"
        return f"{self.lo:.3g} … {self.hi:.3g}"


def _finite(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def scales(runs: Sequence[RunRecord]) -> dict[str, Scale]:
    """Shared scales of the heat strips: std from 0 to the largest, the off fraction 0–1,
    gradient norms on a log axis between the smallest and largest positive value."""
    stats = [layer for r in runs for p in r.probes for layer in p.layers]
    stds = _finite([s.act_std for s in stats])
    grads = [math.log10(g) for g in _finite([s.grad_norm for s in stats]) if g > 0]
    return {
        "act_std": Scale(0.0, max(stds, default=1.0)),
        "off": Scale(0.0, 1.0),
        "grad_norm": Scale(min(grads, default=-4.0), max(grads, default=0.0), log=True),
    }
