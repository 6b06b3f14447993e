"""The chart legend and the colours the charts share: no plotext here.

Kept apart from the plotext charts (charts.py) so the main screen draws its first frame
without importing plotext; the charts mount, and plotext loads, right after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from tui.state.curves import Series, VariantCurves

BEST = "◆"
BAND = "·"  # the ±1 std edges: a marker of their own, so the legend can tell them apart

# Matplotlib's tab10: distinct on dark and light backgrounds and in 256-colour terminals.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
GREY = (128, 128, 128)
BASELINE = (230, 180, 0)  # the pinned run: gold, unlike any variant colour, on dark and light


def colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def muted(rgb: tuple[int, int, int], amount: float = 0.65) -> tuple[int, int, int]:
    """Blend towards grey: other runs fade while one run is highlighted."""
    r, g, b = (round(c + (grey - c) * amount) for c, grey in zip(rgb, GREY, strict=True))
    return r, g, b


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass
class ChartView:
    """Everything one redraw needs (built by the screen from the RunsView)."""

    series: list[Series] = field(default_factory=list)  # one per run
    curves: list[VariantCurves] = field(default_factory=list)  # one per variant
    mode: str = "mean"  # "mean": mean ± std per variant; "runs": every run
    max_epochs: int = 1
    hint: str | None = None
    smoothing: float = 0.0  # EMA weight; 0: the raw curves
    log_loss: bool = False  # the loss chart's y axis is logarithmic
    baseline: Series | None = None  # the pinned run, drawn against whatever is shown


def chart_title(metric: str, view: ChartView) -> str:
    """'Loss · log · smoothed 0.6': the settings in force, where the eye is."""
    parts = ["Loss" if metric == "loss" else "Accuracy %"]
    if metric == "loss" and view.log_loss:
        parts.append("log")
    if view.smoothing:
        parts.append(f"smoothed {view.smoothing:g}")
    return " · ".join(parts)


class ChartLegend(Static):
    """Variant colours and what the line styles mean (plotext's own legend hides curves)."""

    def show(self, labels: list[str], highlighted: str | None = None, title: str = "",
             mode: str = "runs", repeats: int = 1, drops: bool = False, pinned: str = "",
             smoothing: float = 0.0, log_loss: bool = False) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        if title:
            text.append(title + ": ", "bold")
        for i, label in enumerate(labels):
            if i:
                text.append("  ")
            text.append("██ ", Style(color=hex_colour(colour(i))))
            text.append(label, "bold" if label == highlighted else "")
        if pinned:  # before the line styles: at 80 columns the tail is cut off
            text.append("  ██ ", Style(color=hex_colour(BASELINE)))
            text.append(f"pinned {pinned}", "bold")
        settings = ([f"smoothed {smoothing:g} (raw faint)"] if smoothing else []) \
            + (["log loss"] if log_loss else [])
        if settings:
            text.append("  [" + ", ".join(settings) + "]", "dim")
        if labels:
            if mode == "mean":
                what = f"mean of {repeats}" if repeats > 1 else "mean"
                text.append(f"   ▀▀ val {what} ⠒⠒ train", "dim")
                if repeats > 1:
                    text.append(f" {BAND * 2} ±1 std",
                                Style(color=hex_colour(muted(colour(0), 0.45))))
            else:
                text.append("   ▀▀ val ⠒⠒ train • now", "dim")
            text.append(f" {BEST} best", "dim")
            if drops:
                text.append(" │ lr drop", "dim")
            text.append("  (m: " + ("each run" if mode == "mean" else "mean ± std") + ")",
                        "dim")
        self.update(text)
