"""App state in plain classes: what the widgets render, testable without a terminal.

Two parts:

* `ToggleState` — the selected lesson, the start-up overrides (`--epochs`, `--set` …) and the
  user's edits per lesson, with invalid texts kept next to their reasons so a bad value can be
  shown at its field and block a start without ever reaching the trainer.
* `RunState` — every run the app knows (run-store records, plus placeholders for queued
  requests), the latest `Progress` per running run (transient: only the newest is kept, so
  memory stays bounded however fast events come), the trainer's queue, and "dirty" markers the
  screen's timer uses to redraw at a few Hz instead of once per event.

Records are updated with `trainer.store.runstore.apply_event`, the same function the worker uses to
persist them, so what the table shows and what the store holds cannot drift apart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trainer.config import DEFAULT, KEYS, ConfigError, RunConfig, describe, parse_value
from trainer.events import (
    EpochEnd,
    Event,
    Notice,
    Progress,
    RunFailed,
    RunFinished,
    RunRequest,
    RunStarted,
    RunStopped,
)
from trainer.lessons.presets import CUSTOM, Preset, build_requests, custom_requests, new_group_id
from trainer.lessons.stats import BandPoint, curve_band, curve_marks
from trainer.store.runstore import apply_event, request_record

# -- toggles ------------------------------------------------------------------------------------

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Data", ("dataset", "train_subset", "val_split", "split_seed", "input_norm", "augment")),
    ("Model", ("batch_norm", "init", "activation", "head", "downsample", "kernel_size",
               "widths", "dropout")),
    ("Training", ("optimizer", "lr", "lr_schedule", "batch_size", "shuffle", "epochs", "l2",
                  "l1", "loss", "early_stop_patience", "keep_best")),
    ("Runs", ("seed", "repeats")),
)
"""The toggles panel's sections, in the order a course student thinks about them."""

assert sorted(k for _, keys in GROUPS for k in keys) == sorted(KEYS), "every key has a section"


class ToggleState:
    """The config the user is about to run: lesson base ← start options ← edits.

    Edits are remembered per lesson (switching lessons and back keeps them) and are compared
    with the lesson's own base, so the panel can say exactly what the user changed.
    """

    def __init__(self, presets: Mapping[str, Preset], overrides: Mapping[str, Any] | None = None):
        self.presets = dict(presets)
        self.overrides: dict[str, Any] = dict(overrides or {})
        self.lesson: str = next(iter(self.presets), CUSTOM)
        self._edits: dict[str, dict[str, Any]] = {}
        self._errors: dict[str, dict[str, tuple[str, str]]] = {}  # key → (text, reason)

    # -- which lesson ---------------------------------------------------------------------------
    @property
    def preset(self) -> Preset | None:
        return self.presets.get(self.lesson)

    def select(self, key: str) -> None:
        self.lesson = key if key in self.presets else CUSTOM

    @property
    def title(self) -> str:
        p = self.preset
        return p.title if p else "Custom run"

    # -- configs --------------------------------------------------------------------------------
    def lesson_base(self) -> RunConfig:
        """The lesson's own base (defaults for custom), before start options and edits."""
        p = self.preset
        cfg = p.base_config() if p else DEFAULT
        return cfg.replace(repeats=p.repeats) if p else cfg

    def start_base(self) -> RunConfig:
        """Lesson base with the start-up overrides applied: what an unedited run uses."""
        return self.lesson_base().replace(**self.overrides)

    @property
    def edits(self) -> dict[str, Any]:
        return self._edits.setdefault(self.lesson, {})

    @property
    def errors(self) -> dict[str, tuple[str, str]]:
        """key → (the text typed, why it is invalid) for the current lesson."""
        return self._errors.setdefault(self.lesson, {})

    def config(self) -> RunConfig:
        """The valid config the toggles describe (invalid fields keep their last good value)."""
        return self.start_base().replace(**self.edits)

    def value(self, key: str) -> Any:
        return self.config().to_dict()[key]

    def source(self, key: str) -> str:
        """Where the current value comes from: edited | option | lesson | default."""
        if key in self.edits:
            return "edited"
        if key in self.overrides:
            return "option"
        p = self.preset
        if (p and key in p.base) or (p and key == "repeats" and p.repeats != DEFAULT.repeats):
            return "lesson"
        return "default"

    def changes(self) -> dict[str, Any]:
        """What differs from the lesson's base (start options and edits), for the summary."""
        return self.config().diff(self.lesson_base())

    def varied_keys(self) -> list[str]:
        """Keys the lesson's variants set themselves (an edit there does not reach `r` runs)."""
        p = self.preset
        return p.varied_keys() if p else []

    # -- editing --------------------------------------------------------------------------------
    def set_text(self, key: str, text: str) -> str | None:
        """Apply typed text; returns the reason when it is invalid (and remembers it)."""
        try:
            value = parse_value(key, text)
            self.start_base().replace(**{**self.edits, key: value})
        except ConfigError as err:
            self.errors[key] = (text, err.message)
            return err.message
        self.errors.pop(key, None)
        self._set(key, value)
        return None

    def set_value(self, key: str, value: Any) -> None:
        """Apply a value from a switch or select (always valid)."""
        self.errors.pop(key, None)
        self._set(key, value)

    def _set(self, key: str, value: Any) -> None:
        base = self.start_base().to_dict()[key]
        canonical = RunConfig.from_dict({key: value}).to_dict()[key]
        if canonical == base:
            self.edits.pop(key, None)
        else:
            self.edits[key] = canonical

    def reset(self) -> None:
        """Forget this lesson's edits and invalid texts."""
        self.edits.clear()
        self.errors.clear()

    def set_override(self, key: str, value: Any) -> None:
        """A session-wide option (e.g. `d` switches the dataset for every lesson)."""
        self.overrides[key] = RunConfig.from_dict({key: value}).to_dict()[key]
        for edits in self._edits.values():
            edits.pop(key, None)

    def blocking_error(self) -> tuple[str, str] | None:
        """(key, reason) of the first invalid field, in panel order; None when all are valid."""
        for _, keys in GROUPS:
            for key in keys:
                if key in self.errors:
                    return key, self.errors[key][1]
        return None

    # -- requests -------------------------------------------------------------------------------
    def run_overrides(self) -> dict[str, Any]:
        """Start options and edits, as overrides on top of every variant of the lesson."""
        return {**self.overrides, **self.edits}

    def lesson_requests(self) -> list[RunRequest]:
        """Every variant × repeat of the selected lesson (custom: the toggles themselves)."""
        p = self.preset
        if p is None:
            return self.toggle_requests()
        overrides = self.run_overrides()
        repeats = overrides.pop("repeats", None)
        return build_requests(p, overrides, repeats=repeats or p.repeats)

    def toggle_requests(self) -> list[RunRequest]:
        """The current toggles as one variant, labelled by what the user changed."""
        cfg = self.config()
        changed = {k: v for k, v in cfg.diff(self.start_base()).items()
                   if k not in ("repeats", "seed")}
        if changed:
            label = " · ".join(describe(k, v) for k, v in changed.items())
        else:
            label = "lesson base" if self.preset else "defaults"
        return custom_requests(cfg, label=label, group=new_group_id())


# -- runs ---------------------------------------------------------------------------------------

ACTIVE = ("queued", "running", "stopping")
STATUS_ICONS = {
    "queued": "◌", "running": "▶", "stopping": "■", "finished": "✓", "failed": "✗",
    "stopped": "■", "interrupted": "⚠",
}


def queued_record(req: RunRequest) -> dict[str, Any]:
    """A placeholder row for a request the trainer has not started yet (never persisted)."""
    return request_record(req, status="queued")


@dataclass
class Update:
    """What one batch of events changed, so the screen redraws only that."""

    runs: set[str] = field(default_factory=set)
    notices: list[Notice] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    ended: list[tuple[str, str]] = field(default_factory=list)  # (run_id, status)
    failures: list[RunFailed] = field(default_factory=list)
    epochs: bool = False
    live: set[str] = field(default_factory=set)  # runs whose only news is Progress


@dataclass
class Point:
    x: float
    y: float


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
    live: tuple[float, float, float] | None  # (x, running loss, running acc) of this epoch
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
    live: list[tuple[float, float, float]]  # running repeats: (x, running loss, running acc)


CURVE_KEYS = ("train_loss", "val_loss", "train_acc", "val_acc")


class RunState:
    """Every run the app shows, updated from trainer events and the run store."""

    def __init__(self, presets: Mapping[str, Preset] | None = None) -> None:
        self.presets = dict(presets or {})
        self.records: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, Progress] = {}
        self.pending: list[RunRequest] = []
        self.current: RunRequest | None = None
        self.stopping: set[str] = set()
        self.selected: str | None = None
        self.chart_group: str | None = None
        self.notices: deque[Notice] = deque(maxlen=200)
        self.device = ""
        self.device_name = ""
        self.dataset_note = ""
        # Redraw markers, cleared by the screen after it has drawn.
        self.dirty_rows: set[str] = set()
        self.dirty_charts = True
        self.dirty_live = False  # only live points moved (charts redraw those ~1/s)
        self.dirty_bar = True
        self.order_changed = True

    # -- loading and queueing -------------------------------------------------------------------
    def load(self, records: Iterable[dict[str, Any]]) -> None:
        """Runs from the store (history): shown as they were, curves included."""
        for rec in records:
            run_id = rec.get("run_id")
            if not run_id:
                continue
            self.records[run_id] = rec
            self.dirty_rows.add(run_id)
        self.records = dict(sorted(self.records.items(), key=lambda kv: _created(kv[1])))
        if self.records and self.chart_group is None:
            self.chart_group = next(reversed(self.records.values())).get("group") or None
        self.order_changed = self.dirty_charts = True

    def queue(self, requests: Iterable[RunRequest]) -> None:
        """Show submitted requests at once, as 'queued' rows."""
        reqs = list(requests)
        for req in reqs:
            self.records[req.run_id] = queued_record(req)
            self.dirty_rows.add(req.run_id)
        if reqs:
            self.chart_group = reqs[0].group
            self.order_changed = self.dirty_charts = self.dirty_bar = True

    def unqueue(self, requests: Iterable[RunRequest]) -> list[str]:
        """Drop the placeholders of cancelled requests; returns their ids."""
        gone = []
        for req in requests:
            rec = self.records.get(req.run_id)
            if rec is not None and rec["status"] == "queued":
                del self.records[req.run_id]
                gone.append(req.run_id)
        if gone:
            self.order_changed = self.dirty_charts = self.dirty_bar = True
            if self.selected in gone:
                self.selected = None
        return gone

    def sync_queue(self, pending: list[RunRequest], current: RunRequest | None) -> None:
        if [r.run_id for r in pending] != [r.run_id for r in self.pending] or (
            (current and current.run_id) != (self.current and self.current.run_id)
        ):
            self.dirty_bar = True
        self.pending = list(pending)
        self.current = current

    def mark_stopping(self, run_id: str) -> None:
        if run_id in self.records and self.records[run_id]["status"] == "running":
            self.stopping.add(run_id)
            self.dirty_rows.add(run_id)
            self.dirty_bar = True

    # -- events -----------------------------------------------------------------------------------
    def apply(self, events: Iterable[Event]) -> Update:
        """Fold a batch of trainer events into the records; report what changed."""
        up = Update()
        for ev in events:
            if isinstance(ev, Notice):
                self.notices.append(ev)
                up.notices.append(ev)
                continue
            run_id = ev.run_id
            if isinstance(ev, Progress):
                # Transient: only the newest per run matters.
                if run_id in self.records and self.records[run_id]["status"] == "running":
                    self.progress[run_id] = ev
                    up.runs.add(run_id)
                    up.live.add(run_id)
                continue
            if isinstance(ev, RunStarted):
                self.records[run_id] = apply_event(self.records.get(run_id), ev)
                self.device, self.device_name = ev.device, ev.device_name
                self.dataset_note = ev.dataset_note
                self.order_changed = True
                if self.chart_group is None:
                    self.chart_group = ev.group
                up.started.append(run_id)
            elif run_id in self.records:
                # (A queued run can fail before it starts, e.g. the worker died loading data.)
                self.records[run_id] = apply_event(self.records[run_id], ev)
            else:
                continue  # an event for a run this app never saw start: nothing to draw
            if isinstance(ev, EpochEnd):
                up.epochs = True
            if isinstance(ev, RunFinished | RunFailed | RunStopped):
                self.progress.pop(run_id, None)
                self.stopping.discard(run_id)
                up.ended.append((run_id, self.records[run_id]["status"]))
                if isinstance(ev, RunFailed):
                    up.failures.append(ev)
            up.runs.add(run_id)
            up.live.discard(run_id)
        self.dirty_rows |= up.runs
        if up.runs:
            self.dirty_bar = True
            shown = {r for r in up.runs if r in self.records
                     and self.records[r].get("group") == self.chart_group}
            if shown - up.live:
                self.dirty_charts = True  # an epoch, start or end: redraw at the next tick
            elif shown:
                self.dirty_live = True  # only the running point moved: the screen may wait
        return up

    # -- queries ----------------------------------------------------------------------------------
    def status(self, run_id: str) -> str:
        rec = self.records[run_id]
        if run_id in self.stopping and rec["status"] == "running":
            return "stopping"
        return rec["status"]

    def running(self) -> list[str]:
        return [r for r, rec in self.records.items() if rec["status"] == "running"]

    def active(self) -> bool:
        """Anything queued or running (quitting would lose work)."""
        return bool(self.pending or self.current or self.running())

    def exportable(self) -> list[dict[str, Any]]:
        """Records the CSV should hold: everything that has started."""
        return [rec for rec in self.records.values() if rec["status"] != "queued"]

    def group_runs(self, group: str | None) -> list[dict[str, Any]]:
        return [rec for rec in self.records.values() if group and rec.get("group") == group]

    def index(self, run_id: str) -> int:
        """1-based position in creation order (the table's '#')."""
        for i, key in enumerate(self.records, 1):
            if key == run_id:
                return i
        return 0

    def select(self, run_id: str | None) -> None:
        """Highlight a run; the charts follow its lesson launch."""
        if run_id == self.selected:
            return
        self.selected = run_id
        if run_id in self.records:
            self.chart_group = self.records[run_id].get("group") or self.chart_group
        self.dirty_charts = True

    def variant_order(self, group: str | None) -> list[str]:
        """Variant labels of a launch in lesson order (colours follow this order)."""
        runs = self.group_runs(group)
        labels: list[str] = []
        if runs:
            preset = self.presets.get(runs[0].get("preset", ""))
            if preset:
                labels = [v for v in preset.labels if any(r["variant"] == v for r in runs)]
        for rec in runs:
            if rec["variant"] not in labels:
                labels.append(rec["variant"])
        return labels

    def series(self, group: str | None = None) -> list[Series]:
        """Curves of one launch (default: the chart group), one colour per variant."""
        group = group if group is not None else self.chart_group
        order = self.variant_order(group)
        out = []
        for rec in self.group_runs(group):
            hist = rec.get("history") or []
            live = None
            prog = self.progress.get(rec["run_id"])
            if prog is not None and prog.steps:
                live = (prog.epoch - 1 + prog.step / prog.steps, prog.loss, prog.acc)
            out.append(Series(
                run_id=rec["run_id"],
                variant=rec["variant"],
                repeat=int(rec.get("repeat", 0)),
                color=order.index(rec["variant"]),
                epochs=[h["epoch"] for h in hist],
                train_loss=[h["train_loss"] for h in hist],
                val_loss=[h["val_loss"] for h in hist],
                train_acc=[h["train_acc"] for h in hist],
                val_acc=[h["val_acc"] for h in hist],
                lr_drops=[h["epoch"] for h in hist if h.get("lr_dropped")],
                best_epoch=(rec.get("summary") or {}).get("best_epoch") or _best_epoch(hist),
                live=live,
                selected=rec["run_id"] == self.selected,
            ))
        return out

    def variant_curves(self, group: str | None = None) -> list[VariantCurves]:
        """Per variant of a launch: mean ± std curves, lr-drop and best-val epochs."""
        group = group if group is not None else self.chart_group
        runs = self.group_runs(group)
        out = []
        for i, label in enumerate(self.variant_order(group)):
            mine = [r for r in runs if r["variant"] == label]
            marks = curve_marks(mine)
            live = []
            for rec in mine:
                prog = self.progress.get(rec["run_id"])
                if prog is not None and prog.steps:
                    live.append((prog.epoch - 1 + prog.step / prog.steps, prog.loss, prog.acc))
            out.append(VariantCurves(
                variant=label, color=i,
                runs=sum(1 for r in mine if r.get("history")),
                bands={k: curve_band(mine, k) for k in CURVE_KEYS},
                lr_drops=marks.lr_drops, best_epochs=marks.best_epochs, live=live,
            ))
        return out

    def repeats_in(self, group: str | None = None) -> int:
        """Most runs any variant of a launch has (1 → the mean view equals the runs)."""
        counts: dict[str, int] = {}
        for rec in self.group_runs(group if group is not None else self.chart_group):
            counts[rec["variant"]] = counts.get(rec["variant"], 0) + 1
        return max(counts.values(), default=0)

    def latest_group(self, preset: str) -> str | None:
        """The most recent launch of a lesson (its runs are what its verdict is about)."""
        for rec in reversed(list(self.records.values())):
            if rec.get("preset") == preset and rec.get("group"):
                return rec["group"]
        return None

    def epoch_text(self, run_id: str) -> str:
        rec = self.records[run_id]
        total = int(rec.get("config", {}).get("epochs", 0) or 0)
        prog = self.progress.get(run_id)
        done = len(rec.get("history") or [])
        if rec["status"] == "running" and prog is not None:
            return f"{prog.epoch}/{total}"
        if rec["status"] == "running":
            return f"{min(done + 1, total)}/{total}"
        summary = rec.get("summary") or {}
        done = summary.get("epochs_done", done)
        return f"{done}/{total}" if rec["status"] != "queued" else f"–/{total}"

    def eta(self, run_id: str) -> float | None:
        """Seconds left in a running run: epoch times once known, else images/s."""
        rec = self.records.get(run_id)
        prog = self.progress.get(run_id)
        if rec is None or prog is None or not prog.steps:
            return None
        total = int(rec["config"].get("epochs", 0))
        left_epochs = max(total - prog.epoch, 0) + (1 - prog.step / prog.steps)
        hist = rec.get("history") or []
        if hist:
            per_epoch = sum(h["seconds"] for h in hist) / len(hist)
            return left_epochs * per_epoch
        if prog.images_per_s > 0:
            batch = int(rec["config"].get("batch_size", 64))
            return left_epochs * prog.steps * batch / prog.images_per_s
        return None

    def queue_eta(self) -> float | None:
        """Rough time left for the whole queue: the current run's ETA plus, per pending run,
        its epochs × the latest known seconds per epoch (runs of one launch are alike)."""
        current = self.running()
        eta = sum(filter(None, (self.eta(r) for r in current))) if current else 0.0
        if not self.pending:
            return eta if current else None
        per_epoch = None
        for rec in reversed(list(self.records.values())):
            hist = rec.get("history") or []
            if hist:
                per_epoch = sum(h["seconds"] for h in hist) / len(hist)
                break
            prog = self.progress.get(rec["run_id"])
            if prog is not None and prog.images_per_s > 0:
                batch = int(rec["config"].get("batch_size", 64))
                per_epoch = prog.steps * batch / prog.images_per_s
                break
        if per_epoch is None:
            return None
        return eta + sum(per_epoch * int(r.config.get("epochs", 1)) for r in self.pending)

    def clear_dirty(self) -> None:
        self.dirty_rows.clear()
        self.dirty_charts = self.dirty_bar = self.order_changed = False


def _created(rec: dict[str, Any]) -> str:
    # Queued placeholders have no timestamp; keep them after everything stored.
    return rec.get("created") or "~"


def _best_epoch(hist: list[dict[str, Any]]) -> int | None:
    best = [h["epoch"] for h in hist if h.get("is_best")]
    return best[-1] if best else None


