"""Live loss and accuracy curves (textual-plotext), one colour per variant.

The widgets only draw what the state hands them (`ChartView`); the screen calls `draw` from
its throttled refresh timer, so a flood of epochs costs a few redraws a second at most.
Validation curves are solid blocks, training curves thin braille lines, and the epoch in
progress extends the training curve with its running mean (the live point). The mean view
draws one curve per variant (mean over its repeats) with faint dotted ±1 std band edges; the x
axis starts at epoch 1 with whole-epoch ticks; ◆ marks the
best-validation epoch and grey vertical lines the epochs after which the lr was lowered.

Three view settings (the screen's keys) change what is drawn: smoothing (`z`) draws each curve
as its TensorBoard-style moving average with the raw curve faint behind it, so a noisy run
still shows what it really did; a log loss axis (`L`); and a pinned baseline run (`p`), drawn
in its own colour against every launch shown later. The chart titles and the legend say
which are on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

from textual_plotext import PlotextPlot

from tui.state.curves import Series, VariantCurves, smooth
from tui.widgets.legend import (
    BAND,
    BASELINE,
    BEST,
    GREY,
    ChartLegend,
    ChartView,
    chart_title,
    colour,
    muted,
)

# ChartLegend and ChartView live in legend.py (no plotext) and are re-exported here.
__all__ = ["ChartLegend", "ChartView", "CurveChart", "chart_title", "epoch_ticks"]


def _finite(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys, strict=False) if y is not None and math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def epoch_ticks(top: int, width: int) -> list[int]:
    """Whole-epoch ticks from epoch 1 that fit the chart width (plotext would label 2.5 …)."""
    room = max(2, (width - 8) // 6)  # at least ~6 columns per label
    step = 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if top / step <= room:
            break
    return sorted({1, *range(step, top + 1, step)})


KEYS = {"loss": ("train_loss", "val_loss", 1.0), "acc": ("train_acc", "val_acc", 100.0)}


class CurveChart(PlotextPlot):
    """One metric (loss or accuracy) of every run — or every variant's mean — of a launch."""

    def __init__(self, metric: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.metric = metric  # "loss" | "acc"
        self.shown: list[Series] = []  # runs drawn individually last time (tests read it)
        self.shown_curves: list[VariantCurves] = []  # variant means drawn last time
        self.shown_baseline: Series | None = None  # the pinned run drawn last time
        self.border_title = "Loss" if metric == "loss" else "Accuracy %"
        self._empty_hint = "no runs yet — press r"
        self._view = ChartView()

    def on_mount(self) -> None:
        super().on_mount()
        self.draw(self._view)

    def on_resize(self) -> None:
        # Frame, labels and ticks depend on the size: redraw the last view at the new size.
        self.draw(self._view)

    def draw(self, view: ChartView) -> None:
        """Replace the plot (x axis grows with the runs, up to the planned epochs)."""
        self._view = view
        self.border_title = chart_title(self.metric, view)
        plt = self.plt
        plt.clear_figure()
        if self.size.height >= 12:
            plt.xlabel("epoch")
        else:  # small terminal: every row goes to the curves (the axis is clearly epochs)
            plt.frame(False)
        selected = [s for s in view.series if s.selected]
        mean = view.mode == "mean" and bool(view.curves)
        self.shown = selected if mean else list(view.series)
        self.shown_curves = list(view.curves) if mean else []
        drops = sorted({e for c in view.curves for e in c.lr_drops})
        for x in drops:  # behind everything: where the schedule lowered the lr
            plt.vline(x, color=GREY)
        drawn = 0
        if mean:
            for c in view.curves:
                drawn += self._draw_mean(c, faded=bool(selected))
            for s in selected:
                drawn += self._draw_run(s, faded=False)
        else:
            # Highlighted run last, so it is drawn on top of the others.
            for s in sorted(view.series, key=lambda s: s.selected):
                drawn += self._draw_run(s, faded=bool(selected) and not s.selected)
        base = self.shown_baseline = view.baseline
        if base is not None:  # on top: it is what everything else is compared with
            drawn += self._draw_run(base, faded=False, rgb=BASELINE)
        if drawn:
            # Grow the axis with the runs (a 300-epoch plan would squash epoch 5 to the left
            # edge), never beyond the plan, in steps of 5 so it does not jitter.
            every = [*view.series, *([base] if base is not None else [])]
            reached = max([s.epochs[-1] for s in every if s.epochs]
                          + [s.live[0] for s in every if s.live] + [1])
            plan = max([view.max_epochs, 1] + ([base.epochs[-1]] if base and base.epochs else []))
            top = min(plan, max(10, 5 * math.ceil(reached * 1.25 / 5)))
            if self.metric == "loss" and view.log_loss:
                plt.yscale("log")
            plt.xlim(1, max(top, 2))  # epochs count from 1: no empty strip before the first
            # Whole epochs: plotext labels ints as "3" (its hint says float, "3.0" would show).
            plt.xticks(cast(list[float], epoch_ticks(top, self.size.width)))
        else:
            # An empty plotext canvas still draws axes; a title says why it is empty.
            plt.xlim(1, max(view.max_epochs, 2))
            plt.ylim(0, 1 if self.metric == "loss" else 100)
            plt.title(view.hint or self._empty_hint)
        self.refresh()

    def _visible(self, xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
        """On a log axis only positive values can be drawn (a −1 std edge may reach 0)."""
        if self.metric == "loss" and self._view.log_loss:
            pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0]
            return [p[0] for p in pairs], [p[1] for p in pairs]
        return xs, ys

    def _curve(self, xs: Sequence[float], ys: Sequence[float], rgb: tuple[int, int, int],
               marker: str, dot: str, raw: bool = True) -> int:
        """One curve (a dot while it has one point). Smoothing on: the moving average, with
        the raw values faintly behind it (`raw`) — smoothing must not hide a spike."""
        xs, ys = _finite(xs, ys)
        weight = self._view.smoothing
        smoothed = smooth(ys, weight) if weight and len(ys) >= 2 else ys
        if smoothed is not ys and raw:
            rx, ry = self._visible(xs, ys)
            if rx:
                self.plt.plot(rx, ry, color=muted(rgb, 0.7), marker=marker)
        xs, ys = self._visible(xs, smoothed)
        if len(xs) == 1:
            self.plt.scatter(xs, ys, color=rgb, marker=dot)
        elif xs:
            self.plt.plot(xs, ys, color=rgb, marker=marker)
        return len(xs)

    def _draw_run(self, s: Series, faded: bool, rgb: tuple[int, int, int] | None = None) -> int:
        plt = self.plt
        train_key, val_key, scale = KEYS[self.metric]
        if rgb is None:
            rgb = muted(colour(s.color)) if faded else colour(s.color)
        tx, ty = _finite(s.epochs, [v * scale for v in getattr(s, train_key)])
        if s.live is not None:  # part of the series: smoothed with it
            live_y = s.live[1] if self.metric == "loss" else s.live[2]
            if math.isfinite(live_y):
                tx, ty = [*tx, s.live[0]], [*ty, live_y * scale]
        drawn = self._curve(tx, ty, rgb, "braille", "•")
        drawn += self._curve(s.epochs, [v * scale for v in getattr(s, val_key)], rgb, "hd", "hd")
        if s.best_epoch in s.epochs and not faded:
            y = getattr(s, val_key)[s.epochs.index(s.best_epoch)] * scale
            bx, by = self._visible([s.best_epoch], [y]) if math.isfinite(y) else ([], [])
            if bx:
                plt.scatter(bx, by, color=rgb, marker=BEST)
        return drawn

    def _draw_mean(self, c: VariantCurves, faded: bool) -> int:
        plt = self.plt
        train_key, val_key, scale = KEYS[self.metric]
        rgb = muted(colour(c.color)) if faded else colour(c.color)
        band = c.bands[val_key]
        spread = [b for b in band if b.n >= 2]
        if len(spread) >= 2:  # the ± 1 std band edges: dotted and fainter (train is braille)
            edge = muted(rgb, 0.45)
            xs = [b.epoch for b in spread]
            for sign in (1, -1):
                self._curve(xs, [(b.mean + sign * b.std) * scale for b in spread], edge, BAND,
                            BAND, raw=False)
        train = c.bands[train_key]
        tx, ty = [b.epoch for b in train], [b.mean * scale for b in train]
        drawn = self._curve(tx, ty, rgb, "braille", "braille") if len(tx) >= 2 else 0
        weight = self._view.smoothing
        lx, ly = [], []
        for x, loss, acc in c.live:
            y = (loss if self.metric == "loss" else acc) * scale
            if not math.isfinite(y):
                continue
            if weight:  # the next point of the smoothed train curve, as in the runs view
                before = [v for e, v in zip(tx, ty, strict=True) if e <= x]
                y = smooth([*before, y], weight)[-1]
            lx.append(x)
            ly.append(y)
        lx, ly = self._visible(lx, ly)
        if lx:
            plt.scatter(lx, ly, color=rgb, marker="•")
        drawn += len(lx)
        drawn += self._curve([b.epoch for b in band], [b.mean * scale for b in band], rgb,
                             "hd", "hd")
        if not faded:
            at = {b.epoch: b.mean * scale for b in band}
            best = [e for e in c.best_epochs if e in at]
            bx, by = self._visible([float(e) for e in best], [at[e] for e in best])
            if bx:
                plt.scatter(bx, by, color=rgb, marker=BEST)
        return drawn
