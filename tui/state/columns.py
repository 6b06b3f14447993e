"""The results table's columns: how each cell of a run record looks and sorts.

Pure functions of (record, RunsView), so they are unit-tested without a terminal and the table
widget stays a thin renderer. Sort keys put unknown values last whichever way you sort.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from trainer import formats as fmt
from trainer.config import SCHEMA, format_value
from trainer.lessons.stats import mean_std
from trainer.store.record import RunRecord, RunStatus
from tui.state.runs import STATUS_ICONS, RunsView

STATUS_STYLES = {
    "queued": "dim", "running": "bold", "stopping": "bold yellow", "finished": "green",
    "failed": "bold red", "stopped": "yellow", "interrupted": "yellow",
    "diverged": "bold magenta", "cancelled": "dim",
}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    cell: Callable[[RunRecord, RunsView], str | Text]
    sort: Callable[[RunRecord, RunsView], Any]
    right: bool = False
    descending_first: bool = False  # best-first for scores (accuracy high, loss low…)


def _cfg(rec: RunRecord, key: str) -> Any:
    return rec.config.get(key)


def _images_per_s(rec: RunRecord, state: RunsView) -> float | None:
    s = rec.summary.images_per_s
    if s:
        return s
    prog = state.session.progress.get(rec.run_id)
    return prog.images_per_s if prog else None


def status_text(rec: RunRecord, state: RunsView, width: int = 44) -> Text:
    status = state.session.status_label(rec.run_id)
    text = Text()
    text.append(f"{STATUS_ICONS.get(status, '?')} {status}", STATUS_STYLES.get(status, ""))
    if rec.status in (RunStatus.FAILED, RunStatus.DIVERGED) and rec.error_line:
        reason = rec.error_line
        room = width - len(text) - 2
        if len(reason) > room:
            reason = reason[: max(room - 1, 1)] + "…"
        text.append(": " + reason)
    elif rec.status is RunStatus.FINISHED and rec.summary.early_stopped:
        text.append(" (early stop)", "dim")
    if rec.save_error:
        text.append(" ⚠ not saved", "bold yellow")
    return text


def best_val(rec: RunRecord) -> str:
    if rec.summary.best_val_acc is None:
        return "–"
    return f"{fmt.pct(rec.summary.best_val_acc)} @{rec.best_epoch or '?'}"


def _name(rec: RunRecord) -> str | Text:
    """The run's variant, and the user's own label beside it when there is one."""
    if not rec.label:
        return rec.variant or "–"
    return Text.assemble(rec.variant or "–", (f" “{rec.label}”", "italic"))


def _onoff(v: Any) -> str:
    return "–" if v is None else ("on" if v else "off")


def _key(value: Any) -> tuple[bool, Any]:
    """None sorts last; mixed types compare as text."""
    return (value is None, value if isinstance(value, int | float) else str(value or ""))


COLUMNS: tuple[Column, ...] = (
    Column("n", "#", lambda r, s: str(s.index(r.run_id)),
           lambda r, s: s.index(r.run_id), right=True),
    Column("variant", "Variant", lambda r, s: _name(r),
           lambda r, s: _key(r.variant)),
    Column("rep", "Rep", lambda r, s: str(r.repeat + 1),
           lambda r, s: r.repeat, right=True),
    Column("status", "Status", status_text,
           lambda r, s: _key(s.session.status_label(r.run_id))),
    Column("epoch", "Epoch", lambda r, s: s.epoch_text(r.run_id),
           lambda r, s: _key(len(r.history)), right=True),
    Column("best_val", "Best val", lambda r, s: best_val(r),
           lambda r, s: _key(r.summary.best_val_acc), right=True, descending_first=True),
    Column("test_acc", "Test acc", lambda r, s: fmt.pct(r.summary.test_acc),
           lambda r, s: _key(r.summary.test_acc), right=True, descending_first=True),
    Column("test_loss", "Test loss", lambda r, s: fmt.num(r.summary.test_loss),
           lambda r, s: _key(r.summary.test_loss), right=True),
    Column("bn", "BN", lambda r, s: _onoff(_cfg(r, "batch_norm")),
           lambda r, s: _key(_cfg(r, "batch_norm"))),
    Column("init", "Init", lambda r, s: str(_cfg(r, "init") or "–"),
           lambda r, s: _key(_cfg(r, "init"))),
    Column("shuffle", "Shuf", lambda r, s: _onoff(_cfg(r, "shuffle")),
           lambda r, s: _key(_cfg(r, "shuffle"))),
    Column("batch", "Batch", lambda r, s: str(_cfg(r, "batch_size") or "–"),
           lambda r, s: _key(_cfg(r, "batch_size")), right=True),
    Column("head", "Head", lambda r, s: str(_cfg(r, "head") or "–"),
           lambda r, s: _key(_cfg(r, "head"))),
    Column("lr", "LR", lambda r, s: fmt.short_float(_cfg(r, "lr")),
           lambda r, s: _key(_cfg(r, "lr")), right=True),
    Column("l2", "L2", lambda r, s: fmt.short_float(_cfg(r, "l2")),
           lambda r, s: _key(_cfg(r, "l2")), right=True),
    Column("opt", "Opt", lambda r, s: str(_cfg(r, "optimizer") or "–"),
           lambda r, s: _key(_cfg(r, "optimizer"))),
    Column("params", "Params", lambda r, s: fmt.params(r.params),
           lambda r, s: _key(r.params), right=True),
    Column("s_epoch", "s/ep", lambda r, s: fmt.num(r.seconds_per_epoch, 1),
           lambda r, s: _key(r.seconds_per_epoch), right=True),
    Column("img_s", "img/s", lambda r, s: fmt.rate(_images_per_s(r, s)),
           lambda r, s: _key(_images_per_s(r, s)), right=True, descending_first=True),
    Column("device", "Device", lambda r, s: r.env.device or "–",
           lambda r, s: _key(r.env.device or None)),
    Column("lesson", "Lesson", lambda r, s: r.preset or "–",
           lambda r, s: _key(r.preset or None)),
    Column("run_id", "Run id", lambda r, s: Text(r.run_id, style="dim"),
           lambda r, s: _key(r.run_id)),
)
LAUNCH = Column("launch", "Launch", lambda r, s: s.launch_label(r),
                lambda r, s: s.launch_numbers().get(r.group or r.run_id, 0), right=False)
"""Which launch a run belongs to; shown when the table holds more than one launch."""
BY_KEY = {c.key: c for c in (*COLUMNS, LAUNCH)}

SORT_CYCLE = ("n", "test_acc", "best_val", "test_loss", "variant", "status", "s_epoch",
              "img_s", "params", "lesson")
"""The columns `s` steps through (the others still sort by clicking their header)."""


def sorted_ids(state: RunsView, column: str, reverse: bool) -> list[str]:
    """Run ids in table order; unknown values stay last in both directions (ties keep the
    order the runs were made in)."""
    col = BY_KEY[column]
    present: list[tuple[Any, str]] = []
    missing: list[str] = []
    for rec in state.table_records():
        key = col.sort(rec, state)
        if isinstance(key, tuple) and key and key[0] is True:
            missing.append(rec.run_id)
        else:
            present.append((key, rec.run_id))
    present.sort(key=lambda kv: kv[0], reverse=reverse)
    return [run_id for _, run_id in present] + missing


# -- the table as a whole: plain rows, or one row per variant (grouped), all or diff columns --

CONFIG_COLUMNS = {"bn": "batch_norm", "init": "init", "shuffle": "shuffle", "batch": "batch_size",
                  "head": "head", "lr": "lr", "l2": "l2", "opt": "optimizer"}
"""Fixed config columns and the RunConfig key each shows."""

LEAD = ("n", "variant", "rep", "status", "epoch", "best_val", "test_acc", "test_loss")
TAIL = ("params", "s_epoch", "img_s", "device", "lesson", "run_id")


def config_column(key: str) -> Column:
    """A column for any RunConfig key (the diff view shows whichever keys differ)."""
    fixed = next((BY_KEY[c] for c, k in CONFIG_COLUMNS.items() if k == key), None)
    if fixed is not None:
        return fixed
    f = SCHEMA[key]

    def cell(r: RunRecord, s: RunsView) -> str | Text:
        value = _cfg(r, key)
        text = "–" if value is None else format_value(key, value)
        return text

    return Column(f"cfg:{key}", f.short or key, cell, lambda r, s: _key(_cfg(r, key)),
                  right=f.kind in ("int", "float"))


def columns_for(state: RunsView, diff_only: bool) -> list[Column]:
    launch = [LAUNCH] if state.every_launch and len(state.launch_numbers()) > 1 else []
    lead = [BY_KEY[k] for k in LEAD]
    lead[3:3] = launch  # after the run's name and repeat: "BN off 1 · L2 14:05"
    if not diff_only:
        keys = [c.key for c in lead]
        return lead + [c for c in COLUMNS if c.key not in keys]
    keys = state.differing_keys()
    return lead + [config_column(k) for k in keys] + [BY_KEY[k] for k in TAIL]


@dataclass
class TableRow:
    key: str  # run id, or "variant:<group>:<label>" for a grouped row
    cells: list[str | Text]
    run_id: str | None = None  # None for a variant row
    runs: list[str] = field(default_factory=list)  # a variant row's run ids


def variant_key(group: str, label: str) -> str:
    return f"variant:{group}:{label}"


def _mean_std(values: list[float | None], pct: bool) -> tuple[str, float | None]:
    mean, std = mean_std(values)
    if mean is None:
        return "–", None
    scale, digits = (100.0, 1) if pct else (1.0, 3)
    text = f"{mean * scale:.{digits}f}"
    if std is not None:
        text += f" ± {std * scale:.{digits}f}"
    return text + ("%" if pct else ""), mean


AGGREGATES: dict[str, tuple[Callable[[RunRecord, RunsView], float | None], bool]] = {
    "best_val": (lambda r, s: r.summary.best_val_acc, True),
    "test_acc": (lambda r, s: r.summary.test_acc, True),
    "test_loss": (lambda r, s: r.summary.test_loss, False),
}


VariantCache = dict[tuple[str, str, bool], dict[str, tuple[str | Text, Any]]]
"""(launch, variant, expanded) → column key → (cell, sort key): what a variant row showed."""


CellOf = Callable[[RunRecord, "Column"], "str | Text"]
"""A run's cell in a column (the table passes its cache; default: compute it)."""


def variant_row(state: RunsView, group: str, label: str, runs: list[RunRecord], expanded: bool,
                columns: list[Column], cache: VariantCache | None = None,
                cell_of: CellOf | None = None) -> tuple[TableRow, dict[str, Any]]:
    """One row summarising a variant's repeats (mean ± std), and its sort keys per column.

    With `cache`, cells computed before for this variant are reused (the table drops a
    variant's entry when one of its runs changes), so a new sort or column set is cheap.
    """
    known = cache.setdefault((group, label, expanded), {}) if cache is not None else {}
    finished = [r for r in runs if r.status is RunStatus.FINISHED]
    of = cell_of or _computed(state)
    cells: list[str | Text] = []
    keys: dict[str, Any] = {}
    for col in columns:
        if col.key not in known:
            known[col.key] = variant_cell(state, label, runs, finished, expanded, col, group, of)
        cell, keys[col.key] = known[col.key]
        cells.append(cell)
    row = TableRow(variant_key(group, label), cells, None, [r.run_id for r in runs])
    return row, keys


def variant_cell(state: RunsView, label: str, runs: list[RunRecord], finished: list[RunRecord],
                 expanded: bool, col: Column, group: str, of: CellOf) -> tuple[str | Text, Any]:
    """One cell of a variant row, and its sort key."""
    k = col.key
    if k == "n":
        return "", min(state.index(r.run_id) for r in runs)
    if k == "variant":
        return Text(("▾ " if expanded else "▸ ") + label, style="bold"), _key(label)
    if k == "rep":
        return f"×{len(runs)}", len(runs)
    if k == "status":
        counts: dict[str, int] = {}
        for r in runs:
            st = state.session.status_label(r.run_id)
            counts[st] = counts.get(st, 0) + 1
        cell = Text()
        for i, (st, n) in enumerate(sorted(counts.items(), key=lambda kv: -kv[1])):
            cell.append((" " if i else "") + f"{STATUS_ICONS.get(st, '?')}{n} {st}",
                        STATUS_STYLES.get(st, ""))
        return cell, _key(max(counts, key=lambda st: counts[st]))
    if k in AGGREGATES:
        get, pct = AGGREGATES[k]
        text, mean = _mean_std([get(r, state) for r in finished], pct)
        return text, _key(mean)
    if k in ("s_epoch", "img_s"):
        values = [r.seconds_per_epoch if k == "s_epoch" else _images_per_s(r, state)
                  for r in runs]
        mean, _ = mean_std(values)
        return (fmt.num(mean, 1) if k == "s_epoch" else fmt.rate(mean)), _key(mean)
    if k == "epoch":
        return (of(max(runs, key=lambda r: len(r.history)), col),
                _key(max(len(r.history) for r in runs)))
    if k == "run_id":
        return Text(f"{len(runs)} run{'s' * (len(runs) != 1)}", style="dim"), _key(group)
    # config, params, device, lesson: the common value, or "mixed"
    shown = [of(r, col) for r in runs]
    plain = {c.plain if isinstance(c, Text) else str(c) for c in shown}
    return (shown[0] if len(plain) == 1 else Text("mixed", style="dim italic"),
            col.sort(runs[0], state))


def _computed(state: RunsView) -> CellOf:
    return lambda rec, col: col.cell(rec, state)


def plain_row(state: RunsView, columns: list[Column], run_id: str, indent: bool = False,
              cell_of: CellOf | None = None) -> TableRow:
    """One run's row (indented under its variant row in the grouped view)."""
    rec = state.session.records[run_id]
    of = cell_of or _computed(state)
    cells = [of(rec, col) for col in columns]
    if indent:
        i = [c.key for c in columns].index("variant")
        cells[i] = Text(f"   rep {rec.repeat + 1}", style="dim")
    return TableRow(run_id, cells, run_id)


def variants(state: RunsView) -> list[tuple[str, str, list[RunRecord]]]:
    """Every (launch, variant label, its runs) of the grouped view, launches in creation
    order and variants in lesson order."""
    groups: dict[str, list[RunRecord]] = {}
    for rec in state.table_records():
        groups.setdefault(rec.group or rec.run_id, []).append(rec)
    out: list[tuple[str, str, list[RunRecord]]] = []
    for group, recs in groups.items():
        for label in state.variant_order(group) or [recs[0].variant]:
            runs = [r for r in recs if r.variant == label]
            if runs:
                out.append((group, label, runs))
    return out


def table_rows(state: RunsView, columns: list[Column], sort_column: str, reverse: bool,
               grouped: bool = False, expanded: set[str] | frozenset[str] = frozenset(),
               cache: VariantCache | None = None, cell_of: CellOf | None = None
               ) -> list[TableRow]:
    """The table's rows in display order.

    Plain: one row per run, sorted. Grouped: one row per variant of each launch (sorted by
    its mean), each followed by its runs (in repeat order) when expanded.
    """
    def run_row(run_id: str, indent: bool = False) -> TableRow:
        return plain_row(state, columns, run_id, indent, cell_of)

    if not grouped:
        return [run_row(r) for r in sorted_ids(state, sort_column, reverse)]
    blocks: list[tuple[Any, list[TableRow]]] = []
    for group, label, runs in variants(state):
        key = variant_key(group, label)
        row, keys = variant_row(state, group, label, runs, key in expanded, columns, cache,
                                cell_of)
        block = [row]
        if key in expanded:
            for rec in sorted(runs, key=lambda r: r.repeat):
                block.append(run_row(rec.run_id, indent=True))
        blocks.append((keys.get(sort_column), block))
    present = [b for b in blocks if not _is_missing(b[0])]
    missing = [b for b in blocks if _is_missing(b[0])]
    present.sort(key=lambda b: b[0], reverse=reverse)
    return [row for _, block in present + missing for row in block]


def _is_missing(key: Any) -> bool:
    return key is None or (isinstance(key, tuple) and bool(key) and key[0] is True)
