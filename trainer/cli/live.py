"""The headless run's live display: a progress bar per run (one line per epoch in logs).

It only renders: the records, the queue and the data-failure policy live in the
`RunSession`, which it reads after each batch of events.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from trainer import formats as fmt
from trainer.events import (
    EpochEnd,
    Event,
    Notice,
    Preparing,
    RunDiverged,
    RunFailed,
    RunFinished,
    RunStarted,
    RunStopped,
)
from trainer.events import Progress as ProgressEvent
from trainer.host.session import RunSession
from trainer.store.record import RunRecord, RunStatus


class LiveView:
    """Progress bars for the runs of one launch, updated from the session's updates."""

    def __init__(self, session: RunSession, run_ids: list[str], console: Console) -> None:
        self.session = session
        self.run_ids = run_ids
        self.console = console
        self.notices: set[str] = set()
        self.tasks: dict[str, TaskID] = {}
        self.ended: set[str] = set()
        self.progress = Progress(
            # No markup: labels and reasons come from lesson files and error messages.
            TextColumn("{task.description}", markup=False),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[info]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,  # logs get one line per epoch/run instead
        )
        n = len(run_ids)
        self.overall = self.progress.add_task("all runs", total=n, info=f"0/{n} done")

    def show(self, events: Sequence[Event]) -> None:
        """Render one batch of events, after the session has folded them in."""
        for event in events:
            if isinstance(event, Notice):
                self.notice(event.message, event.level)
                continue
            rec = self.session.records.get(event.run_id)
            if rec is None or event.run_id not in self.run_ids:
                continue
            self._event(rec, event)
        self._waiting()
        self._count()

    def _waiting(self) -> None:
        """A run of this launch that waits gets its line at once, saying for what: the one the
        trainer took says what it prepares (at a cold start the worker imports PyTorch for
        seconds before its first word), and the first one queued behind other clients' runs
        in the lab says how many are ahead. No wait is silent."""
        session, ours, records = self.session, set(self.run_ids), self.session.records
        current = session.current
        if current is not None and current.run_id in ours:
            run_id, info = current.run_id, session.waiting_for(current.run_id)
        else:
            pending = session.pending
            first = next((i for i, r in enumerate(pending) if r.run_id in ours), None)
            if current is None or first is None or any(
                    records[r].status is not RunStatus.QUEUED for r in ours if r in records):
                return  # nothing queued, or this launch has begun: each run speaks for itself
            # Ahead of it: the run in progress, and the runs queued before it.
            run_id, ahead = pending[first].run_id, first + 1
            info = f"waiting: the trainer has {ahead} other run{'s' * (ahead != 1)} first"
        rec = records.get(run_id)
        if rec is None or rec.status is not RunStatus.QUEUED:
            return  # started (its own events speak for it) or ended
        if run_id in self.tasks:
            self._update(run_id, 0, info)
        else:
            self.tasks[run_id] = self.progress.add_task(rec.name(of_all=True), total=None,
                                                        info=info)

    def _event(self, rec: RunRecord, event: object) -> None:
        run_id = rec.run_id
        if isinstance(event, Preparing):
            info = self.session.waiting_for(run_id)
            if run_id in self.tasks:
                self._update(run_id, 0, info)
            else:
                self.tasks[run_id] = self.progress.add_task(rec.name(of_all=True), total=None,
                                                            info=info)
        elif isinstance(event, RunStarted):
            steps = max(event.steps_per_epoch, 1)
            total = max(rec.epochs, 1) * steps
            if run_id in self.tasks:
                self.progress.update(self.tasks[run_id], total=total,
                                     info=f"starting on {event.device}")
            else:
                self.tasks[run_id] = self.progress.add_task(
                    rec.name(of_all=True), total=total, info=f"starting on {event.device}")
            if event.dataset_note:
                self.notice(event.dataset_note, "info")
        elif isinstance(event, ProgressEvent):
            self._update(run_id, (event.epoch - 1) * event.steps + event.step,
                         f"ep {event.epoch}/{rec.epochs} step {event.step}/{event.steps} · "
                         f"loss {fmt.num(event.loss)} · acc {fmt.pct(event.acc)} · "
                         f"{fmt.rate(event.images_per_s)} img/s")
        elif isinstance(event, EpochEnd):
            self._update(run_id, event.epoch * (rec.steps_per_epoch or 1),
                         f"ep {event.epoch}/{rec.epochs} · val loss {fmt.num(event.val_loss)}"
                         f" · val acc {fmt.pct(event.val_acc)}")
            if not self.console.is_terminal:  # logs get one line per epoch instead of bars
                line = Text(rec.name(of_all=True))
                line.append(f": epoch {event.epoch} train loss {fmt.num(event.train_loss)} acc "
                            f"{fmt.pct(event.train_acc)} · val loss {fmt.num(event.val_loss)} "
                            f"acc {fmt.pct(event.val_acc)} · {event.seconds:.1f} s")
                self.console.print(line)
        elif isinstance(event, RunFinished):
            self._end(rec, Text.assemble(("done", "green"),
                                         f" · test acc {fmt.pct(event.test_acc)}"), True)
        elif isinstance(event, RunStopped):
            n = event.epochs_done
            self._end(rec, Text.assemble(("stopped", "yellow"),
                                         f" after {n} epoch{'s' * (n != 1)}"))
        elif isinstance(event, RunFailed):
            self._end(rec, Text.assemble(("failed", "red"), ": " + rec.error_line))
        elif isinstance(event, RunDiverged):
            self._end(rec, Text.assemble(("diverged", "magenta"),
                                         ": " + rec.error_line.removeprefix("diverged ")))

    def _update(self, run_id: str, completed: int, info: str) -> None:
        if run_id in self.tasks:
            self.progress.update(self.tasks[run_id], completed=completed, info=info)

    def _count(self) -> None:
        done = sum(1 for r in self.run_ids if r in self.session.records
                   and self.session.records[r].terminal)
        self.progress.update(self.overall, completed=done,
                             info=f"{done}/{len(self.run_ids)} done")

    def _end(self, rec: RunRecord, info: Text, complete: bool = False) -> None:
        if rec.run_id in self.ended:
            return
        self.ended.add(rec.run_id)
        task = self.tasks.get(rec.run_id)
        if task is None:  # failed before it started (data missing, worker died while loading)
            task = self.progress.add_task(rec.name(of_all=True), total=1, info="")
        total = next((t.total for t in self.progress.tasks if t.id == task), None)
        self.progress.update(task, info=info.plain, completed=total if complete else None)
        self.progress.stop_task(task)
        if not self.console.is_terminal:
            self.console.print(Text.assemble(rec.name(of_all=True), ": ", info))

    def notice(self, message: str, level: str) -> None:
        if message in self.notices:
            return
        self.notices.add(message)
        style = {"warning": "yellow", "error": "red"}.get(level, "dim")
        self.progress.console.print(Text(message, style=style))
