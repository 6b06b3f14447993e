"""Rich renderables of the headless CLI: the lesson list, a lesson, results, statistics, verdict.

Text that comes from files (lesson titles and texts, variant labels, error messages) only ever
goes into `rich.text.Text` objects, never into markup strings, so `[bold]` in a shared lesson
file is shown as written.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from trainer import formats as fmt
from trainer.config import ConfigError, RunConfig, describe
from trainer.lessons.preset import Preset
from trainer.lessons.report import stats_table
from trainer.lessons.stats import lesson_stats
from trainer.lessons.verdict import make_verdict
from trainer.store.inside import class_acc_by_variant
from trainer.store.record import RunRecord, RunStatus

STATUS_STYLES = {RunStatus.FINISHED: "green", RunStatus.FAILED: "red",
                 RunStatus.STOPPED: "yellow", RunStatus.CANCELLED: "dim",
                 RunStatus.INTERRUPTED: "yellow", RunStatus.DIVERGED: "magenta"}
VERDICT_STYLES = {"agree": "green", "disagree": "red", "mixed": "yellow"}


def presets_table(presets: Iterable[Preset]) -> Table:
    table = Table(title="Lesson presets", title_justify="left", show_lines=False)
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("title")
    table.add_column("variants (first = baseline)")
    table.add_column("repeats", justify="right")
    for p in presets:
        table.add_row(Text(p.key), Text(p.title), Text(" | ".join(p.labels)), str(p.repeats))
    return table


def describe_preset(preset: Preset) -> Panel:
    """A lesson in full: what it teaches, its variants, what the course found."""
    body = Text()
    body.append(preset.summary + "\n\n", style="italic")
    body.append(preset.lesson + "\n\n")
    body.append("Variants", style="bold")
    for i, v in enumerate(preset.variants):
        what = " · ".join(describe(k, val) for k, val in v.changes.items())
        body.append(f"\n  {v.label}" + (" (baseline)" if i == 0 else "") + f": {what}")
    if preset.base:
        shared = " · ".join(describe(k, val) for k, val in preset.base.items())
        body.append(f"\n  all variants: {shared}")
    body.append(f"\n  {preset.repeats} repeats each, paired seeds\n\n")
    body.append("What the course found\n", style="bold")
    body.append(preset.expect)
    if preset.try_next:
        body.append("\n\nTry next", style="bold")
        for s in preset.try_next:
            body.append(f"\n  • {s}")
    return Panel(body, title=Text(f"{preset.title} ({preset.key})"), title_align="left",
                 subtitle=Text(str(preset.source)), subtitle_align="right")


def _settings(record: RunRecord, preset: Preset | None) -> str:
    """The settings this run's variant is about (a lesson's varied keys; else all changes)."""
    cfg = record.config
    try:
        if preset is not None:
            return " · ".join(describe(k, cfg[k]) for k in preset.varied_keys() if k in cfg)
        known = {k: v for k, v in cfg.items() if k not in ("repeats", "seed")}
        label = RunConfig.from_dict(known).label()
        return "" if label == record.variant else label  # don't say it twice
    except (ConfigError, KeyError, TypeError):
        return ""


Cell = str | Text


def fitted_table(title: Text, headers: list[tuple[str, bool]], rows: list[list[Cell]],
                 width: int | None, drop: tuple[str, ...] = (), wrap: tuple[str, ...] = (),
                 caption: Text | None = None) -> Table:
    """A table that fits `width` columns without cutting or wrapping a number.

    Numbers never wrap (a value split over two lines reads as two values); columns named in
    `drop` are left out, in that order, until the rest fits, and the caption says which.
    Only `wrap` columns (labels) may wrap, down to 12 characters.
    """
    keep = list(range(len(headers)))

    def need(i: int) -> int:
        name = headers[i][0]
        longest = max([cell_len(name)] + [cell_len(c.plain if isinstance(c, Text) else c)
                                          for c in (r[i] for r in rows)])
        return min(longest, max(12, cell_len(name))) if name in wrap else longest

    def total() -> int:
        return 1 + sum(need(i) + 3 for i in keep)

    dropped: list[str] = []
    for name in drop:
        if width is None or total() <= width:
            break
        i = next((i for i in keep if headers[i][0] == name), None)
        if i is not None:
            keep.remove(i)
            dropped.append(name)
    if dropped:
        note = Text(f"left out to fit {width} columns: {', '.join(dropped)}", style="dim")
        caption = note if caption is None else Text.assemble(caption, "\n", note)
    table = Table(title=title, title_justify="left", header_style="bold", caption=caption,
                  caption_justify="left")
    for i in keep:
        name, right = headers[i]
        table.add_column(name, justify="right" if right else "left",
                         no_wrap=name not in wrap, overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table


RESULT_DROP = ("device", "img/s", "params", "test loss", "s/epoch", "epochs")
"""Result columns left out first when the terminal is narrow (test accuracy stays)."""


def results_table(records: list[RunRecord], preset: Preset | None = None,
                  width: int | None = None) -> Table:
    """One row per run: what it changed, how it ended, and its key numbers.

    A lesson's variant label already names its settings, so the settings column only shows
    when some run's settings say more than its label; runs of one custom config share one
    label, which then goes into the title instead of every row.
    """
    labels = {rec.variant for rec in records}
    custom = preset is None and len(labels) == 1
    title = Text(f"Results · {preset.title}" if preset else "Results")
    if custom:
        title.append(f" · {next(iter(labels))}")
    settings = [_settings(rec, preset) for rec in records]
    show_settings = not custom and any(s and s != rec.variant
                                       for s, rec in zip(settings, records, strict=True))
    headers = [("variant", False), ("settings", False), ("#", True), ("status", False),
               ("epochs", True), ("best val acc @ep", True), ("test acc", True),
               ("test loss", True), ("params", True), ("s/epoch", True), ("img/s", True),
               ("device", False)]
    rows: list[list[Cell]] = []
    for rec, setting in zip(records, settings, strict=True):
        s = rec.summary
        status = Text(rec.status.value, style=STATUS_STYLES.get(rec.status, ""))
        if rec.status in (RunStatus.FAILED, RunStatus.DIVERGED) and rec.error_line:
            status.append(": " + rec.error_line)
        if rec.save_error:
            status.append(" (not saved)", style="bold yellow")
        best = (f"{fmt.pct(s.best_val_acc)} @{rec.best_epoch}"
                if s.best_val_acc is not None and rec.best_epoch else "–")
        rows.append([
            Text(rec.variant), Text(setting), str(rec.repeat + 1), status,
            f"{rec.epochs_done}/{rec.epochs or '?'}", best, fmt.pct(s.test_acc),
            fmt.num(s.test_loss), fmt.params(rec.params), fmt.num(rec.seconds_per_epoch, 1),
            fmt.rate(s.images_per_s), Text(rec.env.device or "–"),
        ])
    skip = {"variant"} if custom else set()
    if not show_settings:
        skip.add("settings")
    keep = [i for i, (name, _) in enumerate(headers) if name not in skip]
    return fitted_table(title, [headers[i] for i in keep], [[r[i] for i in keep] for r in rows],
                        width, drop=RESULT_DROP, wrap=("variant", "settings", "status"))


def class_acc_table(records: list[RunRecord]) -> Table | None:
    """Test accuracy per class (rows) and variant (columns, mean over repeats); None when no
    run has a test diagnosis. Class names come from run files: Text only."""
    classes, by_variant = class_acc_by_variant(records)
    if not by_variant:
        return None
    table = Table(title=Text("Test accuracy per class"), title_justify="left",
                  header_style="bold")
    table.add_column("class")
    for variant in by_variant:
        table.add_column(Text(variant), justify="right")
    for i, name in enumerate(classes):
        table.add_row(Text(name), *(fmt.pct(accs[i]) for accs in by_variant.values()))
    return table


STATS_DROP = ("params", "s/epoch", "best epoch", "95% CI", "best val acc", "runs")
"""Statistics left out first when narrow: the difference, its interval and p stay."""


def lesson_report(preset: Preset, records: list[RunRecord],
                  width: int | None = None) -> tuple[Table, Panel]:
    """The per-variant statistics table and the verdict panel of a lesson's runs."""
    headers, rows = stats_table(lesson_stats(preset, records))
    table = fitted_table(Text(f"Per variant · {preset.title}"),
                         [(h, i > 0) for i, h in enumerate(headers)],
                         [[Text(cell) for cell in row] for row in rows], width,
                         drop=STATS_DROP, wrap=("variant",))
    verdict = make_verdict(preset, records)
    text = Text()
    text.append(verdict.headline + "\n", style="bold")
    for sentence in verdict.sentences:
        text.append("\n" + sentence)
    body: Text | Group = text
    if verdict.suggestions:
        text.append("\n\nTry next:", style="bold")
        bullets = Table.grid(padding=(0, 1))  # a wrapped suggestion stays under its bullet
        bullets.add_column(no_wrap=True)
        bullets.add_column()
        for s in verdict.suggestions:
            bullets.add_row("  •", Text(s))
        body = Group(text, bullets)
    panel = Panel(body, title=Text(f"Verdict · {preset.title}"), title_align="left",
                  border_style=VERDICT_STYLES.get(verdict.status, "blue"),
                  subtitle=verdict.status, subtitle_align="right")
    return table, panel
