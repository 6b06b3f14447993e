"""The run bar above the footer: the current run's progress, speed, ETA and the queue."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label, ProgressBar

from trainer import formats as fmt
from trainer.host.session import STOPPING
from tui.state.runs import RunsView


def show(label: Label, text: Text) -> None:
    """Update only on change, and re-lay out the screen (tens of ms) only when the text's
    width changed: a step count ticking from 45/133 to 46/133 is a repaint."""
    old = label.content
    if old != text:
        same_width = isinstance(old, Text) and old.cell_len == text.cell_len
        label.update(text, layout=not same_width)


class RunBar(Widget):
    """Two lines: ▶ run · epoch · step [bar] ETA / live loss, images/s and the queue."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="run-line"):
            yield Label(id="run-label")
            yield ProgressBar(total=1, show_eta=False, id="run-progress")
            yield Label(id="run-eta")
        yield Label(id="queue-line")

    def sync(self, state: RunsView, idle_hint: str) -> None:
        label = self.query_one("#run-label", Label)
        bar = self.query_one("#run-progress", ProgressBar)
        eta = self.query_one("#run-eta", Label)
        queue = self.query_one("#queue-line", Label)
        session = state.session
        running = session.running()
        self.set_class(bool(running), "-running")
        bar.display = bool(running)
        current = session.current
        if not running and current is not None and current.run_id in session.records:
            # Handed to the trainer, not training yet: say what it waits for.
            rec = session.records[current.run_id]
            show(label, Text.assemble(("◔ ", "bold"), (rec.name(), "bold"), "  ",
                                      (session.waiting_for(current.run_id), "dim")))
            show(eta, Text(""))
        elif not running:
            show(label, Text("◌ idle", style="dim"))
            show(eta, Text(idle_hint, style="dim"))
        else:
            run_id = running[-1]
            rec = session.records[run_id]
            prog = session.progress.get(run_id)
            epochs = rec.epochs or 1
            stopping = session.status_label(run_id) == STOPPING
            name = Text()
            name.append("■ stopping " if stopping else "▶ ", "bold")
            name.append(rec.name(), "bold")
            group = session.group_runs(rec.group)
            if len(group) > 1:
                name.append(f" ({[r.run_id for r in group].index(run_id) + 1}/{len(group)})",
                            "dim")
            if prog is not None:
                name.append(f"  ep {prog.epoch}/{epochs} · {prog.step}/{prog.steps}")
                bar.update(total=epochs * prog.steps,
                           progress=(prog.epoch - 1) * prog.steps + prog.step)
            else:
                done = len(rec.history)
                name.append(f"  ep {min(done + 1, epochs)}/{epochs} · ")
                name.append(session.waiting_for(run_id), "dim")
                bar.update(total=epochs, progress=done)
            show(label, name)
            show(eta, Text(f"ETA {fmt.duration(state.eta(run_id))}"))
        show(queue, self._second_line(state, running))

    def _second_line(self, state: RunsView, running: list[str]) -> Text:
        session = state.session
        text = Text(no_wrap=True, overflow="ellipsis")
        if running:
            prog = session.progress.get(running[-1])
            if prog is not None:
                text.append(f"loss {fmt.num(prog.loss)} · acc {fmt.pct(prog.acc)} · "
                            f"{fmt.rate(prog.images_per_s)} img/s", "bold")
                text.append("  │  ", "dim")
        pending = [session.records[r.run_id] for r in session.pending
                   if r.run_id in session.records]
        if pending:
            eta = state.queue_eta()
            text.append(f"queue {len(pending)}", "bold")
            if eta:
                text.append(f" (≈{fmt.duration(eta)} in all)", "dim")
            text.append(": " + ", ".join(r.name() for r in pending[:6]))
            if len(pending) > 6:
                text.append(f", … {len(pending) - 6} more")
            text.append("  · X cancels", "dim")
        else:
            text.append("queue empty", "dim")
        return text
