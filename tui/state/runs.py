"""RunsView: what the Runs tab shows of the session, and what must be redrawn.

The records, the queue and the data-failure policy belong to the `RunSession` (shared with
the CLI); this adds the view state of the TUI — the highlighted run, which launch the charts
follow — and "dirty" markers that the screen's timer uses to redraw at a few Hz instead of
once per event. Plain Python, no Textual: testable without a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from trainer.config import KEYS
from trainer.events import Event, RunRequest
from trainer.host.session import RunSession, Update
from trainer.lessons.curves import curve_band, curve_marks
from trainer.lessons.preset import Preset
from trainer.store.record import RunRecord, RunStatus
from tui.state.curves import CURVE_KEYS, Series, VariantCurves, live_point

STATUS_ICONS = {
    "queued": "◌", "running": "▶", "stopping": "■", "finished": "✓", "failed": "✗",
    "stopped": "■", "interrupted": "⚠", "cancelled": "–", "diverged": "↯",
}


class RunsView:
    """The session as the Runs tab sees it."""

    def __init__(self, session: RunSession, presets: Mapping[str, Preset] | None = None) -> None:
        self.session = session
        self.presets = dict(presets or {})
        self.selected: str | None = None
        self.chart_group: str | None = None
        # Redraw markers, cleared by the screen after it has drawn.
        self.dirty_rows: set[str] = set()
        self.dirty_charts = True
        self.dirty_live = False  # only live points moved (charts redraw those ~1/s)
        self.dirty_bar = True
        self.order_changed = True
        self.dirty_verdicts = True  # an epoch, start or end: the statistics may have moved
        self._positions: dict[str, int] = {}
        self._positions_of = -1  # the session's `order` they were made for
        self._differing: list[str] = []
        self._differing_of: object = None
        self._launches: dict[str, int] = {}  # launch id → 1-based number, in starting order
        self._launches_of = -1
        self.every_launch = False
        """The table shows every stored run, not only the launch the charts show."""
        self.pinned: str | None = None
        """The run the charts draw as a baseline against every launch shown later (`p`)."""
        self.search = ""
        """Words every shown run must contain (in its name, label, note, lesson, status or
        id); empty: no filter."""

    # -- changes ---------------------------------------------------------------------------
    def load(self, records: Iterable[RunRecord]) -> None:
        """Runs from the store (history): shown as they were, curves included."""
        records = list(records)
        self.session.load(records)
        self.dirty_rows.update(r.run_id for r in records)
        if self.session.records and self.chart_group is None:
            self.chart_group = next(reversed(self.session.records.values())).group or None
        self.order_changed = self.dirty_charts = True
        self.dirty_verdicts = True

    def submit(self, requests: list[RunRequest]) -> None:
        """Queue runs (raises what the trainer raises); the charts follow the new launch."""
        self.session.submit(requests)
        self.dirty_rows.update(r.run_id for r in requests)
        if requests:
            self.chart_group = requests[0].group
        self.order_changed = self.dirty_charts = self.dirty_bar = True
        self.dirty_verdicts = True

    def cancel_queue(self) -> list[RunRequest]:
        dropped = self.session.cancel_queue()
        self._forget([r.run_id for r in dropped])
        return dropped

    def stop(self) -> RunRequest | None:
        current = self.session.stop()
        if current is not None:
            self.dirty_rows.add(current.run_id)
            self.dirty_bar = True
        return current

    def forget(self, run_ids: list[str]) -> list[str]:
        """Ended runs leave the view (archived or deleted from the store)."""
        dropped = self.session.forget(run_ids)
        self._forget(dropped)
        if self.chart_group and not self.session.group_runs(self.chart_group):
            # The launch shown is gone: show the latest one left (as at start).
            last = next(reversed(self.session.records.values()), None)
            self.chart_group = last.group or None if last is not None else None
        return dropped

    def replace(self, rec: RunRecord) -> None:
        """A run's record changed outside the trainer (the user's label or note)."""
        self.session.put(rec)
        self.dirty_rows.add(rec.run_id)

    def _forget(self, run_ids: list[str]) -> None:
        if run_ids:
            self.order_changed = self.dirty_charts = self.dirty_bar = True
            self.dirty_verdicts = True
            if self.selected in run_ids:
                self.selected = None
            if self.pinned in run_ids:
                self.pinned = None

    def apply(self, events: Iterable[Event]) -> Update:
        """Fold a batch of trainer events into the session; mark what needs a redraw."""
        up = self.session.apply(events)
        records = self.session.records
        if up.started:
            self.order_changed = True
            self.dirty_verdicts = True
            if self.chart_group is None:
                self.chart_group = records[up.started[0]].group
        self._forget([r.run_id for r in up.dropped])
        self.dirty_rows |= up.runs
        if up.queue_changed:
            self.dirty_bar = self.order_changed = True
        if up.runs - up.live:
            self.dirty_verdicts = True
        if up.runs:
            self.dirty_bar = True
            shown = {r for r in up.runs if r in records
                     and (records[r].group == self.chart_group or r == self.pinned)}
            if shown - up.live:
                self.dirty_charts = True  # an epoch, start or end: redraw at the next tick
            elif shown:
                self.dirty_live = True  # only the running point moved: the screen may wait
        return up

    def select(self, run_id: str | None) -> None:
        """Highlight a run; the charts follow its lesson launch."""
        if run_id == self.selected:
            return
        self.selected = run_id
        rec = self.session.records.get(run_id or "")
        if rec is not None:
            self.chart_group = rec.group or self.chart_group
        self.dirty_charts = True

    def clear_dirty(self) -> None:
        self.dirty_rows.clear()
        self.dirty_charts = self.dirty_bar = self.order_changed = False
        self.dirty_verdicts = False

    # -- queries -----------------------------------------------------------------------------
    def index(self, run_id: str) -> int:
        """1-based position in creation order (the table's '#'); O(1), it runs per cell."""
        if self.session.order != self._positions_of:
            self._positions = {r: i for i, r in enumerate(self.session.records, 1)}
            self._positions_of = self.session.order
        return self._positions.get(run_id, 0)

    # -- launches: the runs of one press of `r` (or one `cnn-tui run`) ----------------------
    def launch_numbers(self) -> dict[str, int]:
        """Launch id → its number (1 = the first launch in the store), in starting order."""
        if self.session.order != self._launches_of:
            numbers: dict[str, int] = {}
            for rec in self.session.records.values():
                numbers.setdefault(rec.group or rec.run_id, len(numbers) + 1)
            self._launches, self._launches_of = numbers, self.session.order
        return self._launches

    def launch_label(self, rec: RunRecord) -> str:
        """'L3 14:05': the launch's number and when its first run was made."""
        group = rec.group or rec.run_id
        first = next(iter(self.session.group_runs(group)), rec) if rec.group else rec
        when = first.created[11:16] if len(first.created) >= 16 else ""
        return f"L{self.launch_numbers().get(group, 0)}" + (f" {when}" if when else "")

    def table_records(self) -> list[RunRecord]:
        """The runs the table shows: the charted launch, or every run (`every_launch`)."""
        records = self.session.records
        if self.every_launch or not self.chart_group:
            shown = list(records.values())
        else:
            shown = self.session.group_runs(self.chart_group)
        words = self.search.lower().split()
        if not words:
            return shown
        return [r for r in shown if all(w in self.search_text(r) for w in words)]

    def search_text(self, rec: RunRecord) -> str:
        return " ".join((rec.variant, rec.label, rec.note, rec.preset, rec.run_id,
                         self.session.status_label(rec.run_id))).lower()

    def step_launch(self, delta: int) -> str | None:
        """Show the previous (−1) or next (+1) launch; returns its id (None: no other)."""
        order = list(self.launch_numbers())
        if not order:
            return None
        here = order.index(self.chart_group) if self.chart_group in order else len(order) - 1
        target = order[max(0, min(len(order) - 1, here + delta))]
        if target == self.chart_group:
            return None
        self.chart_group, self.selected = target, None
        self.order_changed = self.dirty_charts = True
        self.dirty_verdicts = True
        return target

    def differing_keys(self) -> list[str]:
        """Config keys that differ between the table's runs; computed again only when runs
        come or go or the table shows other launches (a run's config never changes), not on
        every refresh of the diff view."""
        of = (self.session.order, self.every_launch, self.chart_group, self.search)
        if of != self._differing_of:
            self._differing = differing_keys(self.table_records())
            self._differing_of = of
        return self._differing

    def variant_order(self, group: str | None) -> list[str]:
        return self.session.variant_order(group, self.presets)

    def chart_runs(self) -> list[RunRecord]:
        return self.session.group_runs(self.chart_group)

    def series(self, group: str | None = None) -> list[Series]:
        """Curves of one launch (default: the chart group), one colour per variant."""
        group = group if group is not None else self.chart_group
        order = self.variant_order(group)
        return [self._series(rec, order.index(rec.variant))
                for rec in self.session.group_runs(group)]

    def _series(self, rec: RunRecord, color: int) -> Series:
        hist = rec.history
        return Series(
            run_id=rec.run_id, variant=rec.variant, repeat=rec.repeat,
            color=color, epochs=[h.epoch for h in hist],
            train_loss=[h.train_loss for h in hist], val_loss=[h.val_loss for h in hist],
            train_acc=[h.train_acc for h in hist], val_acc=[h.val_acc for h in hist],
            lr_drops=[h.epoch for h in hist if h.lr_dropped], best_epoch=rec.best_epoch,
            live=live_point(self.session.progress.get(rec.run_id)),
            selected=rec.run_id == self.selected,
        )

    # -- the pinned baseline: one run drawn against whatever the charts show later ----------
    def toggle_pin(self) -> str | None:
        """`p`: pin the highlighted run as the baseline; on the pinned run (or with no run
        highlighted) unpin. Returns the pinned run id (None: nothing pinned now)."""
        if self.selected is None or self.selected == self.pinned \
                or self.selected not in self.session.records:
            self.pinned = None
        else:
            self.pinned = self.selected
        self.dirty_charts = True
        return self.pinned

    def baseline(self) -> Series | None:
        """The pinned run's curves (from any launch or lesson; live while it trains)."""
        rec = self.session.records.get(self.pinned or "")
        if rec is None:
            return None
        return self._series(rec, 0)

    def baseline_label(self) -> str:
        """'L2 BN on #1': which run the baseline is, wherever the charts are now."""
        rec = self.session.records.get(self.pinned or "")
        if rec is None:
            return ""
        return f"{self.launch_label(rec).split(' ')[0]} {rec.name()}"

    def variant_curves(self, group: str | None = None) -> list[VariantCurves]:
        """Per variant of a launch: mean ± std curves, lr-drop and best-val epochs."""
        group = group if group is not None else self.chart_group
        runs = self.session.group_runs(group)
        out = []
        for i, label in enumerate(self.variant_order(group)):
            mine = [r for r in runs if r.variant == label]
            marks = curve_marks(mine)
            live = [p for p in (live_point(self.session.progress.get(r.run_id)) for r in mine)
                    if p is not None]
            out.append(VariantCurves(
                variant=label, color=i, runs=sum(1 for r in mine if r.history),
                bands={k: curve_band(mine, k) for k in CURVE_KEYS},
                lr_drops=marks.lr_drops, best_epochs=marks.best_epochs, live=live,
            ))
        return out

    def repeats_in(self, group: str | None = None) -> int:
        """Most runs any variant of a launch has (1 → the mean view equals the runs)."""
        counts: dict[str, int] = {}
        for rec in self.session.group_runs(group if group is not None else self.chart_group):
            counts[rec.variant] = counts.get(rec.variant, 0) + 1
        return max(counts.values(), default=0)

    def epoch_text(self, run_id: str) -> str:
        rec = self.session.records[run_id]
        total = rec.epochs
        prog = self.session.progress.get(run_id)
        if rec.status is RunStatus.RUNNING and prog is not None:
            return f"{prog.epoch}/{total}"
        if rec.status is RunStatus.RUNNING:
            return f"{min(len(rec.history) + 1, total)}/{total}"
        if rec.status is RunStatus.QUEUED:
            return f"–/{total}"
        return f"{rec.epochs_done}/{total}"

    def eta(self, run_id: str) -> float | None:
        """Seconds left in a running run: epoch times once known, else images/s."""
        rec = self.session.records.get(run_id)
        prog = self.session.progress.get(run_id)
        if rec is None or prog is None or not prog.steps:
            return None
        left_epochs = max(rec.epochs - prog.epoch, 0) + (1 - prog.step / prog.steps)
        per_epoch = rec.seconds_per_epoch
        if per_epoch is not None:
            return left_epochs * per_epoch
        if prog.images_per_s > 0:
            batch = int(rec.config.get("batch_size", 64))
            return left_epochs * prog.steps * batch / prog.images_per_s
        return None

    def queue_eta(self) -> float | None:
        """Rough time left for the whole queue: the current run's ETA plus, per pending run,
        its epochs × the latest known seconds per epoch (runs of one launch are alike)."""
        current = self.session.running()
        eta = sum(filter(None, (self.eta(r) for r in current))) if current else 0.0
        pending = self.session.pending
        if not pending:
            return eta if current else None
        per_epoch = None
        for rec in reversed(list(self.session.records.values())):
            if rec.seconds_per_epoch is not None:
                per_epoch = rec.seconds_per_epoch
                break
            prog = self.session.progress.get(rec.run_id)
            if prog is not None and prog.images_per_s > 0:
                batch = int(rec.config.get("batch_size", 64))
                per_epoch = prog.steps * batch / prog.images_per_s
                break
        if per_epoch is None:
            return None
        return eta + sum(per_epoch * int(r.config.get("epochs", 1)) for r in pending)


NOT_COMPARED = ("seed", "repeats")  # differ between repeats by design


def differing_keys(records: list[RunRecord]) -> list[str]:
    """Config keys whose value is not the same in every record (in RunConfig order)."""
    configs = [r.config for r in records]
    out = []
    for key in KEYS:
        if key in NOT_COMPARED or not configs:
            continue
        first = configs[0].get(key)
        if any(c.get(key) != first for c in configs):  # stops at the first difference
            out.append(key)
    return out
