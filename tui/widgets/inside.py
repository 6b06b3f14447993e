"""Rich text of the Inside view: heat strips per layer × epoch, the confusion matrix, the
confidence histograms of right and wrong answers.

Each strip cell is a block whose height and colour both encode the value (readable without
colour too). Class and layer names come from run files: they only ever go into `Text`
objects as plain text, never into markup.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from trainer import formats as fmt
from trainer.events import TestDiagnosis
from trainer.store.record import RunRecord, RunStatus
from tui.state.inside import Scale

BLOCKS = "▁▂▃▄▅▆▇█"
# Viridis at eight stops: ordered in lightness, distinct for most colour vision.
RAMP = ("#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725")
MAX_STRIP = 40  # epochs drawn per strip; longer runs show every n-th epoch
NAME_W = 7
COLUMN_WIDTH = 52  # one run's column (the .tcss gives .inside-column this width)
STRIPS = (("act_std", "Activation std"), ("off", "Dead / saturated fraction"),
          ("grad_norm", "Weight-gradient norm"))
FLAT_WORDS = {"relu": "ReLU output 0", "leaky_relu": "none for leaky ReLU",
              "sigmoid": "sigmoid <0.01 or >0.99", "tanh": "|tanh| > 0.99"}


def cell(level: int | None) -> tuple[str, Style]:
    if level is None:
        return "·", Style(dim=True)
    return BLOCKS[level], Style(color=RAMP[level])


def strips(record: RunRecord, key: str, scale: Scale) -> Text:
    """One line per layer: that statistic at each epoch (sampled to MAX_STRIP epochs)."""
    probes = record.probes
    step = max(1, -(-len(probes) // MAX_STRIP))
    shown = probes[::step]
    if shown[-1] is not probes[-1]:  # the latest epoch always ends the strip
        shown = (*shown[:-1], probes[-1]) if len(shown) >= MAX_STRIP else (*shown, probes[-1])
    out = Text()
    names = [layer.name for layer in probes[0].layers]
    for i, name in enumerate(names):
        out.append(f"{name[:NAME_W]:<{NAME_W}} ", style="bold")
        last = None
        for p in shown:
            value = getattr(p.layers[i], key) if i < len(p.layers) else None
            last = value if value is not None else last
            out.append(*cell(scale.level(value, len(BLOCKS))))
        out.append(f" {fmt.num(last, 3) if last is not None else '—'}\n", style="dim")
    first, final = shown[0].epoch, shown[-1].epoch
    # Long runs are sampled (here, and thinned in the record): say how many epochs are drawn.
    every = f", {len(shown)} of {final - first + 1} epochs" if len(shown) < final - first + 1 \
        else ""
    out.append(f"{'':<{NAME_W}} epoch {first} → {final}{every} · {scale.describe()}\n",
               style="dim")
    return out


def legend() -> Text:
    out = Text("low ", style="dim")
    for level in range(len(BLOCKS)):
        out.append(*cell(level))
    out.append(" high", style="dim")
    return out


def confusion(d: TestDiagnosis) -> Text:
    """Rows: true class; columns: predicted (row %); the diagonal bold; accuracy per class."""
    k = len(d.classes)
    out = Text(f"{'true ↓ pred →':<10}", style="dim")
    for name in d.classes:
        out.append(f"{name[:2]:>3}")
    out.append("   acc\n", style="dim")
    for t, (name, row) in enumerate(zip(d.classes, d.confusion, strict=True)):
        out.append(f"{name[:9]:<10}")
        total = sum(row) or 1
        for p in range(k):
            share = row[p] / total
            level = min(len(RAMP) - 1, int(share * len(RAMP))) if row[p] else None
            text = f"{round(share * 100):>3}" if row[p] else "  ·"
            colour = RAMP[level] if level is not None else None
            out.append(text, style=Style(color=colour, bold=p == t))
        acc = d.class_acc[t]
        out.append(f" {fmt.pct(acc) if acc is not None else '–':>5}\n")
    return out


def histogram(d: TestDiagnosis, width: int = 14) -> Text:
    """Confidence (the probability given to the predicted class), right vs wrong answers."""
    bins = len(d.confident_right)
    top = max([*d.confident_right, *d.confident_wrong, 1])
    out = Text(f"{'p(chosen)':<9} {'right':<{width + 7}} wrong\n", style="dim")
    for b in reversed(range(bins)):
        lo = b / bins
        out.append(f"{lo:.1f}–{lo + 1 / bins:.1f}  ")
        for counts, colour in ((d.confident_right, "green"), (d.confident_wrong, "red")):
            n = counts[b] if b < len(counts) else 0
            bar = round(n / top * width)
            out.append("█" * bar, style=colour)
            out.append(" " * (width - bar) + f" {n:>5} ")
        out.append("\n")
    return out


def mistakes_line(d: TestDiagnosis) -> Text:
    """The most confident mistakes, by test index (the images themselves stay in the set)."""
    if not d.mistakes:
        return Text("no mistakes on the test set\n", style="dim")
    out = Text(f"{len(d.mistakes)} most confident mistakes kept (test indices), e.g.\n",
               style="dim")
    for m in d.mistakes[:3]:
        true = d.classes[m.true] if m.true < len(d.classes) else str(m.true)
        pred = d.classes[m.predicted] if m.predicted < len(d.classes) else str(m.predicted)
        out.append(f"  #{m.index}: {true} → {pred} ({fmt.pct(m.confidence)})\n")
    return out


def run_column(record: RunRecord, scales: dict[str, Scale]) -> Text:
    """Everything the Inside view shows of one run, top to bottom."""
    out = Text()
    out.append(record.name(of_all=True) or record.run_id, style="bold underline")
    out.append(f"  {record.status.value}")
    if record.summary.test_acc is not None:
        out.append(f" · test {fmt.pct(record.summary.test_acc)}")
    out.append("\n")
    flat = record.config.get("activation", "relu")
    if not record.probes:
        why = ("no epoch finished yet" if record.status is RunStatus.RUNNING and not
               record.history else "not recorded")
        out.append(f"Layer statistics: {why}\n\n", style="italic")
    else:
        for key, title in STRIPS:
            out.append(title, style="bold")
            if key == "off":
                out.append(f" · {FLAT_WORDS.get(str(flat), '')}", style="dim")
            out.append("\n")
            out.append_text(strips(record, key, scales[key]))
        out.append_text(legend())
        out.append("\n\n")
    d = record.diagnosis
    if d is None:
        why = "after the run ends" if not record.terminal else "not recorded"
        out.append(f"Test confusion matrix: {why}\n", style="italic")
        return out
    out.append("Test confusion matrix (row %, diagonal bold)\n", style="bold")
    out.append_text(confusion(d))
    out.append("\nConfidence of the chosen class, test set\n", style="bold")
    out.append_text(histogram(d))
    out.append_text(mistakes_line(d))
    return out


class InsideColumn(Static):
    """The text of one run's column in the Inside view."""


class GallerySlot(Vertical):
    """Where a run's gallery goes, below its text (filled by the Inside screen, which loads
    the gallery's images and their libraries only when a gallery is shown)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shown: object = None  # what it shows: the screen redraws it when this changes
        self._pending: list[Widget] | None = None

    def show(self, key: object, widgets: list[Widget]) -> None:
        """Show `widgets` (none: hidden) as the gallery of `key`."""
        self.shown = key
        self.display = bool(widgets)
        if self.is_mounted:
            self.remove_children()
            self.mount_all(widgets)
        else:
            self._pending = widgets

    def on_mount(self) -> None:
        if self._pending:
            self.mount_all(self._pending)
        self._pending = None


class RunColumn(Vertical):
    """One run's column: its text, then its gallery."""

    def __init__(self, text: Text) -> None:
        self.text = InsideColumn(text)
        self.gallery = GallerySlot(classes="inside-gallery")
        super().__init__(self.text, self.gallery, classes="inside-column")
