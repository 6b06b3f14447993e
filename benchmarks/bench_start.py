"""Dead time: the app's first frame, and how long a run waits before its first step.

  frame       process start → first paint in a real terminal (a 100×30 pty): a bare Textual
              hello-world app, and `cnn-tui` (an empty runs folder; its private worker starts
              after the first frame); the goal is cnn-tui ≤ 1.5× hello-world. Beside them a
              stub of the first screen (its header, tabs, lesson titles, lesson text, footer
              and stylesheet, nothing behind them): the floor of any first screen like ours
  first step  `cnn-tui run` start → the run's first Progress event (its first steps done),
              with the synthetic data cached: into a lab whose worker is warm (the TUI's
              case: the lab starts its workers when the app opens), and cold (no lab yet:
              the worker imports torch first), beside a bare PyTorch script's start → its
              first optimizer step (what any PyTorch program waits for)
  setup       per-run setup inside a warm worker: request sent → RunStarted, → first Progress

    python benchmarks/bench_start.py [--rounds 5] [--cold-rounds 3]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "synthetic", "--epochs", "1", "--set", "train_subset=2000",
        "--set", "widths=8,16,16"]

HELLO = """
from textual.app import App
from textual.widgets import Label
class Hello(App):
    def compose(self):
        yield Label("hello")
Hello().run()
"""


# The floor of a first screen like ours: the same tabs, header, footer and stylesheet, the
# lesson titles (parsed from the lesson files) in a plain list and one text, and nothing else
# (no session, store, trainer, run bar, verdict or hidden panels). Its start pauses the
# cyclic collector as cnn-tui's does.
STUB = """
import gc; gc.disable()
from pathlib import Path
from textual.app import App
from textual.containers import Container, Horizontal
from textual.widgets import ContentSwitcher, Footer, Header, OptionList, Static, Tab, Tabs
from textual.widgets.option_list import Option
import tui
from trainer.lessons.presets import load_presets
class Stub(App):
    CSS_PATH = str(Path(tui.__file__).parent / "app.tcss")
    def compose(self):
        presets, _ = load_presets([])
        yield Header(show_clock=False, icon="▦")
        yield Tabs(Tab("1 Lessons", id="tab-lessons"), Tab("2 Toggles", id="tab-toggles"),
                   Tab("3 Runs", id="tab-runs"), id="tabs")
        with Horizontal(id="workspace"):
            with ContentSwitcher(initial="lessons", id="side"):
                with Horizontal(id="lessons"):
                    yield OptionList(*[Option(p.title, id=k) for k, p in presets.items()],
                                     id="lesson-list")
                    yield Static(next(iter(presets.values())).lesson, id="lesson-view")
                yield Container(id="toggles")
        yield Footer(compact=True)
Stub().run()
"""


def bytecode_env(**extra: str) -> dict[str, str]:
    """The environment of a user's install: compiled bytecode kept (pip compiles Textual's;
    a session that sets PYTHONDONTWRITEBYTECODE would recompile ours on every start)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "TERM": "xterm-256color", **extra}


def painted(argv: list[str], marker: bytes, env: dict[str, str]) -> float:
    """Process start → the first screen written to a real 100×30 terminal (a pty) that
    shows `marker`: what a user waits for, driver start-up and first paint included."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO,
                            start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        while marker not in seen:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                raise TimeoutError(f"no {marker!r} on the screen of {argv} after 30 s")
            seen = seen[-len(marker):] + os.read(master, 1 << 16)
        return time.perf_counter() - t0
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(master)


def frames(rounds: int, runs: Path) -> tuple[float, float, float]:
    """Median first paint of a bare Textual hello-world, of `cnn-tui` (empty runs folder,
    private worker started after the first frame) and of STUB, after one untimed start of
    each. The three alternate, so a change in the machine's load while it runs touches all
    alike."""
    hello = [sys.executable, "-c", HELLO]
    cnn = [sys.executable, "-m", "tui.cli", "--runs-dir", str(runs)]
    stub = [sys.executable, "-c", STUB]
    env = bytecode_env(CNN_TUI_LAB="off")
    starts = ((hello, b"hello"), (cnn, b"Lessons"), (stub, b"Lessons"))
    for argv, marker in starts:
        painted(argv, marker, env)
    times = [[painted(argv, marker, env) for argv, marker in starts] for _ in range(rounds)]
    h, c, s = (statistics.median(column) for column in zip(*times, strict=True))
    return h, c, s


def lab_env(home: Path) -> dict[str, str]:
    return {**os.environ, "CNN_TUI_HOME": str(home), "CNN_TUI_LAB": "on",
            "CNN_TUI_LAB_DIR": tempfile.mkdtemp(prefix="cnn-lab-"), "CNN_TUI_LAB_IDLE_S": "30"}


def first_step(env: dict[str, str]) -> float:
    """`cnn-tui run` start → first Progress of its run, watched by a second client."""
    os.environ.update(env)
    from trainer.events import Progress
    from trainer.lab.client import LabClient

    runs = str(Path(env["CNN_TUI_HOME"]) / "runs")
    watcher = LabClient.connect(runs, "bench")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "run", *TINY], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not any(isinstance(e, Progress) for e in watcher.poll(0.01)):
        pass
    elapsed = time.perf_counter() - t0
    proc.wait()
    watcher.shutdown()
    return elapsed


FLOOR = """
import torch
model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                            torch.nn.Linear(8 * 30 * 30, 10))
opt = torch.optim.Adam(model.parameters())
x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
torch.nn.functional.cross_entropy(model(x), y).backward()
opt.step()
print("stepped", flush=True)
"""


def torch_floor(rounds: int) -> float:
    """Process start → one Adam step of a tiny model in a bare PyTorch script: what any
    PyTorch program pays before its first step (importing torch, and torch._dynamo, which
    every optimizer step imports), the other side of the no-lab figure."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", FLOOR], stdout=subprocess.PIPE,
                                env=bytecode_env())
        assert proc.stdout is not None and proc.stdout.readline() == b"stepped\n"
        times.append(time.perf_counter() - t0)  # not its exit: torch's teardown is slow
        proc.kill()
        proc.wait()
    return statistics.median(times)


def setup_times(rounds: int) -> tuple[list[float], list[float]]:
    from trainer.config import RunConfig
    from trainer.events import TERMINAL, Progress, RunRequest, RunStarted, WorkerSettings
    from trainer.host.process import TrainerProcess

    cfg = RunConfig.from_dict(dict(dataset="synthetic", epochs=1, widths=(8, 16, 16),
                                   train_subset=2000)).to_dict()
    started, stepped = [], []
    with TrainerProcess(WorkerSettings()) as tp:
        for i in range(rounds + 1):
            t0 = time.perf_counter()
            tp.submit(RunRequest(config=cfg, variant=f"r{i}"))
            marks: dict[type, float] = {}
            while True:
                events = tp.poll(0.01)
                for ev in events:
                    marks.setdefault(type(ev), time.perf_counter() - t0)
                if any(isinstance(e, TERMINAL) for e in events):
                    break
            if i:  # the first run pays the worker start and the data load
                started.append(marks[RunStarted])
                stepped.append(marks[Progress])
    return started, stepped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-rounds", type=int, default=3,
                        help="starts with no lab yet (each imports torch: ~2 s)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-start-"))
    os.environ["CNN_TUI_HOME"] = str(home)
    med = statistics.median
    hello, cnn, stub = frames(args.rounds, home / "runs")
    print(f"first frame: hello-world {hello:.2f} s · cnn-tui {cnn:.2f} s "
          f"({cnn / hello:.2f}×; goal ≤1.5×) · a stub of its visible first screen "
          f"{stub:.2f} s ({stub / hello:.2f}×)")
    started, stepped = setup_times(args.rounds)
    print(f"per-run setup in a warm worker: RunStarted after {med(started) * 1000:.0f} ms, "
          f"first Progress after {med(stepped) * 1000:.0f} ms (median of {args.rounds})")
    env = lab_env(home)
    first_step(env)  # draws and caches the synthetic data, starts the lab
    warm = med(first_step(env) for _ in range(args.rounds))
    # No lab yet: each round stops the lab, so the next client starts one whose worker
    # imports torch; a bare PyTorch script's start alternates with it (same load on both).
    colds, floors = [], []
    for _ in range(args.cold_rounds):
        stop_lab(env)
        env = lab_env(home)
        colds.append(first_step(env))
        floors.append(torch_floor(1))
    stop_lab(env)
    print(f"`cnn-tui run` start → first step (synthetic data cached): warm lab {warm:.2f} s "
          f"(goal ≤2 s) · no lab yet {med(colds):.2f} s · a bare PyTorch script's first Adam "
          f"step {med(floors):.2f} s (medians of {args.cold_rounds} alternated)")


def stop_lab(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "trainer", "lab", "stop", "--force"], env=env,
                   cwd=REPO, capture_output=True)


if __name__ == "__main__":
    main()
