"""The system line above the run bar (`y`): CPU, load, memory and each GPU, once a second.

Sampling reads /proc and asks NVML, which can block on a busy driver, so it runs on a thread
worker that posts each sample back as a message; the UI thread only renders a line. It polls
only while the line is shown, and never inside the training process (which is another
process anyway: this measures the whole machine, the trainer included).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.message import Message
from textual.widgets import Static

from tui.state.system import SystemSample, SystemSampler, system_parts

POLL_S = 1.0  # at most one sample a second: NVML and /proc reads are cheap but not free


class SystemLine(Static):
    """CPU 12% · load 0.8/16 · mem 5.1/62 GB · GPU0 H200 87% 10.2/141 GB …"""

    class Sampled(Message):
        def __init__(self, sample: SystemSample) -> None:
            super().__init__()
            self.sample = sample

    def __init__(self, sampler: Callable[[], SystemSampler] = SystemSampler,
                 interval: float = POLL_S, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.make_sampler = sampler
        self.interval = interval
        self.sample: SystemSample | None = None  # the last one shown (tests read it)
        self._stop: threading.Event | None = None

    def set_shown(self, on: bool) -> None:
        """Show (and start polling) or hide (and stop: a hidden line costs nothing)."""
        self.display = on
        if on and self._stop is None:
            self._stop = threading.Event()
            self.update(Text("system: sampling…", style="dim"))
            self._poll(self._stop)
        elif not on and self._stop is not None:
            self._stop.set()
            self._stop = None

    def on_unmount(self) -> None:
        if self._stop is not None:
            self._stop.set()

    @work(thread=True, exclusive=True, group="system", exit_on_error=False)
    def _poll(self, stop: threading.Event) -> None:
        sampler = self.make_sampler()
        try:
            while not stop.is_set():
                sample = sampler.sample()
                if stop.is_set():
                    break
                self.post_message(self.Sampled(sample))  # thread-safe, never blocks
                stop.wait(self.interval)
        finally:
            sampler.close()

    def on_system_line_sampled(self, message: SystemLine.Sampled) -> None:
        message.stop()
        if self._stop is None:  # hidden since: a late sample
            return
        self.sample = message.sample
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (label, value) in enumerate(system_parts(message.sample)):
            if i:
                text.append(" · ", "dim")
            text.append(label + " ", "dim")
            text.append(value, "bold")
        self.update(text)
