"""The lab: attach latency, events per second to three clients, detached vs attached speed.

  attach      a run is training in the lab; a new client connects: time until it holds the
              whole state, and until its first live Progress (LabClient), and until the TUI
              shows the running run (CnnTuiApp on the lab, first frame with live progress)
  events/s    a lab whose workers emit Progress as fast as it can send them, three clients
              attached over the socket: events each client receives per second
  detached    the same lesson (synthetic data, tiny model) run with `cnn-tui run` waiting,
              and with `--detach` then waiting for the records: wall time of each

    python benchmarks/bench_lab.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "synthetic", "--set", "train_subset=2000", "--set", "widths=8,16,16"]


def env_for(home: Path) -> dict[str, str]:
    lab_dir = Path(tempfile.mkdtemp(prefix="cnn-lab-"))
    return {**os.environ, "CNN_TUI_HOME": str(home), "CNN_TUI_LAB": "on",
            "CNN_TUI_LAB_DIR": str(lab_dir), "CNN_TUI_LAB_IDLE_S": "5"}


def cli(env: dict[str, str], *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "trainer", *args], env=env, cwd=REPO, check=True,
                   capture_output=True)
    return time.perf_counter() - t0


def attach(env: dict[str, str]) -> dict[str, float]:
    os.environ.update(env)
    from trainer.events import Progress
    from trainer.lab.client import LabClient

    runs = str(Path(env["CNN_TUI_HOME"]) / "runs")
    cli(env, "run", "--epochs", "50", *TINY, "--detach")
    first = LabClient.connect(runs, "bench")
    while not any(isinstance(e, Progress) for e in first.poll(0.1)):
        pass
    first.shutdown()
    t0 = time.perf_counter()
    client = LabClient.connect(runs, "bench")
    state = time.perf_counter() - t0
    while not any(isinstance(e, Progress) for e in client.poll(0.05)):
        pass
    live = time.perf_counter() - t0
    client.shutdown()
    tui = asyncio.run(tui_attach(runs))
    cli(env, "lab", "stop", "--force")
    return {"state": state, "live": live, "tui": tui}


async def tui_attach(runs: str) -> float:
    from trainer.lab.client import LabClient
    from tui.app import CnnTuiApp, StartOptions
    t0 = time.perf_counter()
    app = CnnTuiApp(LabClient.connect(runs, "tui"),
                    StartOptions(runs_dir=Path(runs), check_data=False, blink=False))
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.session.progress:
            await pilot.pause(0.02)
        await pilot.pause()  # … and drawn
        return time.perf_counter() - t0


class FloodWorkers:
    """Workers whose one run sends Progress without pause (the service is the bottleneck)."""

    def __init__(self) -> None:
        self.run_id = ""

    def slots(self) -> list[str]:
        return ["cpu"]

    def start(self, slot: str, request) -> None:
        self.run_id = request.run_id

    def stop(self, slot: str, force: bool = False) -> bool:
        return True

    def poll(self, timeout: float):
        from trainer.events import Progress

        if not self.run_id:
            time.sleep(timeout)
            return []
        return [Progress(self.run_id, 1, i, 1000, 1.0, 0.5, 1000.0) for i in range(200)]

    def shutdown(self, timeout: float = 3.0):
        return []


def flood(seconds: float = 5.0) -> float:
    from trainer.config import RunConfig
    from trainer.events import RunRequest, WorkerSettings
    from trainer.lab import service
    from trainer.lab.client import LabClient
    from trainer.lab.place import LabPlace
    from trainer.lab.scheduler import Scheduler

    home = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    os.environ.update(env_for(home))
    runs = home / "runs"
    runs.mkdir(parents=True)
    place = LabPlace.for_runs(runs)
    place.prepare()
    workers = FloodWorkers()
    lab = service.Lab(place, WorkerSettings(runs_dir=str(runs)), ["cpu"], 60, [], "")
    lab.workers = workers  # type: ignore[assignment]
    lab.scheduler = Scheduler(workers)
    lab.session.trainer = lab.scheduler
    from multiprocessing.connection import Listener

    listener = Listener(str(place.socket), family="AF_UNIX", backlog=16,
                        authkey=place.key(create=True))
    threading.Thread(target=lab.accept, args=(listener,), daemon=True).start()
    threading.Thread(target=lab.run, daemon=True).start()
    clients = [LabClient.connect(str(runs), f"c{i}", start=False) for i in range(3)]
    clients[0].submit([RunRequest(config=RunConfig().to_dict(), variant="flood")])
    counts = [0, 0, 0]

    def drain(i: int, until: float) -> None:
        while time.perf_counter() < until:
            counts[i] += len(clients[i].poll(0.05, max_events=10**6))

    until = time.perf_counter() + seconds
    threads = [threading.Thread(target=drain, args=(i, until)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lab.stopping.set()
    listener.close()
    return min(counts) / seconds


def detached_vs_attached() -> tuple[float, float]:
    home = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    env = env_for(home)
    lesson = ["--preset", "batch_norm", "--repeats", "1", "--epochs", "5", *TINY]
    cli(env, "run", "--epochs", "1", *TINY)  # warm: lab, worker, synthetic data cache
    attached = cli(env, "run", *lesson)
    os.environ.update(env)
    from trainer.store.record import RunStatus
    from trainer.store.runstore import RunStore

    store = RunStore(home / "runs")
    before = len(store.load()[0])
    t0 = time.perf_counter()
    cli(env, "run", *lesson, "--detach")
    while True:
        records = store.load()[0]
        if len(records) == before + 2 and all(
                r.status is RunStatus.FINISHED for r in records[before:]):
            break
        time.sleep(0.05)
    detached = time.perf_counter() - t0
    cli(env, "lab", "stop", "--force")
    return attached, detached


def main() -> None:
    a = attach(env_for(Path(tempfile.mkdtemp(prefix="bench-lab-"))))
    print(f"attach: whole state {a['state'] * 1000:.0f} ms · first live progress "
          f"{a['live'] * 1000:.0f} ms (LabClient) · TUI shows the running run "
          f"{a['tui']:.2f} s after start")
    print(f"events/s through the lab to each of 3 clients: {flood():,.0f}")
    attached, detached = detached_vs_attached()
    print(f"lesson batch_norm (2 runs × 5 epochs, synthetic): attached {attached:.1f} s · "
          f"detached {detached:.1f} s ({(detached / attached - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
