"""Key latency while runs train: how long `q` takes to put up its dialog (and `escape` to take
it down) while progress events stream in, against an idle trainer.

The trainer is the test suite's fake (tests/helpers/fake_trainer.py): it streams Progress
events at a chosen rate with no process behind it, so only the app's own work is timed. A real
worker sends at most 10 a second per run; a lab training repeats together sends that per
member, several lessons at once more. Times are Pilot's, headless, at 120×40, with the app's
default refresh interval (0.25 s), medians of --rounds presses.

    python benchmarks/bench_keys.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.fake_trainer import FakeTrainer, Script  # noqa: E402

from trainer.store.runstore import RunStore  # noqa: E402
from tui.app import CnnTuiApp, StartOptions  # noqa: E402
from tui.screens.dialogs import ConfirmScreen  # noqa: E402

RATES = ((0.0, 1, "held (no events)"), (0.1, 1, "10 events/s"), (0.01, 1, "100 events/s"),
         (0.01, 4, "400 events/s"))


async def until(pilot: object, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in 30 s")
        await pilot.pause(0.005)  # type: ignore[attr-defined]


async def latency(delay: float, per_poll: int, rounds: int) -> float:
    runs = Path(tempfile.mkdtemp(prefix="bench-keys-")) / "runs"
    script = Script(steps=1_000_000, steps_per_poll=per_poll, delay=delay or 0.1)
    app = CnnTuiApp(FakeTrainer(script, store=RunStore(runs)),
                    StartOptions(runs_dir=runs, check_data=False, blink=False,
                                 overrides={"dataset": "synthetic", "epochs": 2, "repeats": 1}))
    times = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: bool(app.session.running()))
        script.hold = delay == 0.0  # "held": the run sits still, nothing streams in
        await pilot.pause(1.0)
        for _ in range(rounds):
            t0 = time.perf_counter()
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
            times.append(time.perf_counter() - t0)
        script.hold = True
        app.exit()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"q → dialog → escape → back, median of {args.rounds}, while one run streams:")
    for delay, per_poll, name in RATES:
        seconds = asyncio.run(latency(delay, per_poll, args.rounds))
        print(f"  {name:<18} {seconds:.2f} s", flush=True)


if __name__ == "__main__":
    main()
