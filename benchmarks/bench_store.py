"""Run store at scale: load, export, the TUI's first frame, and sort/group/diff of the table.

Generates N finished run records (30 epochs each, lessons of 2 variants × 3 repeats) in a
temporary runs folder and prints, for each N:
  load     RunStore.load() (parse and check every file)
  export   `cnn-tui export` as a subprocess, start to exit: cold (every record parsed, as
           for a copied-in folder) / again (unchanged runs come from the per-user row cache)
           / noted (the first export after a lesson: the cache holds the older runs, the
           worker noted the 6 it just ended)
  frame    `cnn-tui` start → its first paint in a real 100×30 terminal (a pty), as in
           bench_start.py (its private worker starts after the first frame)
  loaded   the TUI under Pilot (real TrainerProcess handle, no worker started) until every
           stored run is in the table (a big store loads after the first frame)
  warm     … until the grouped view's cells are computed ahead (a few ms per timer tick)
  sort / group / diff   one `s`, `g`, `c` on the Runs tab, until the table is redrawn

    python benchmarks/bench_store.py --sizes 0 200 2000 20000 [--rounds 3]   (medians)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trainer.config import RunConfig
from trainer.events import WorkerSettings

REPO = Path(__file__).resolve().parents[1]


def make_records(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = RunConfig().to_dict()
    for i in range(n):
        group, k = divmod(i, 6)
        variant = "BN on" if k % 2 else "BN off"
        run_id = f"20260101-{i:06d}-abcdef"
        history = [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.3 + e / 100,
                    "val_loss": 2.1 / e, "val_acc": 0.3 + e / 110, "lr": 0.001,
                    "seconds": 3.0, "is_best": True, "lr_dropped": False}
                   for e in range(1, 31)]
        doc = {"schema": 1, "run_id": run_id, "group": f"g-{group}", "preset": "batch_norm",
               "variant": variant, "repeat": k // 2,
               "config": {**cfg, "batch_norm": bool(k % 2), "seed": k // 2},
               "status": "finished", "created": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}",
               "updated": "2026-01-01T01:00:00", "env": {"device": "cpu"}, "params": 900_000,
               "history": history,
               "summary": {"test_acc": 0.6 + (i % 7) / 100, "test_loss": 1.0, "best_epoch": 30,
                           "best_val_acc": 0.57, "best_val_loss": 0.07, "epochs_done": 30,
                           "train_seconds": 90.0, "images_per_s": 1000.0},
               "error": None}
        (folder / f"{run_id}.json").write_text(json.dumps(doc))


def time_load(folder: Path) -> float:
    from trainer.store.runstore import RunStore

    t0 = time.perf_counter()
    RunStore(folder).load()
    return time.perf_counter() - t0


def time_noted_export(folder: Path, out: Path) -> float:
    """The first export after a lesson: the row cache holds every older run and the worker
    noted the 6 runs it just ended."""
    from trainer.store import rowcache
    from trainer.store.runstore import RunStore

    store = RunStore(folder)
    cache = rowcache.cache_path(store)
    cache.unlink(missing_ok=True)
    cache.with_suffix(".notes").unlink(missing_ok=True)
    lesson = sorted(folder.glob("*.json"))[-6:]
    aside = folder.parent / "aside"
    aside.mkdir(exist_ok=True)
    for path in lesson:
        path.rename(aside / path.name)
    time_export(folder, out)  # the cache, as the last export before the lesson left it
    for path in lesson:
        (aside / path.name).rename(path)
        rowcache.remember(store, path.stem)
    return time_export(folder, out)


def time_export(folder: Path, out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "trainer", "export", "--runs-dir", str(folder),
                    "--csv", str(out)], check=False, capture_output=True, cwd=REPO)
    return time.perf_counter() - t0


async def time_tui(folder: Path) -> dict[str, float]:
    from trainer import paths
    from trainer.host.process import TrainerProcess
    from tui.app import CnnTuiApp, StartOptions
    from tui.widgets.results import ResultsTable

    paths.settings_file().unlink(missing_ok=True)  # the default views, not the last size's
    trainer = TrainerProcess(WorkerSettings(runs_dir=str(folder)))
    t0 = time.perf_counter()
    app = CnnTuiApp(trainer, StartOptions(runs_dir=folder, prestart=False, check_data=False,
                                          blink=False))
    out: dict[str, float] = {}
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        table = app.main.query_one(ResultsTable)
        await pilot.press("3", "a")  # every stored run in the table, not the latest launch
        while app.store_loading or table.row_count < app.stored_runs:
            await pilot.pause(0.01)
        out["loaded"] = time.perf_counter() - t0
        while table.warming:  # the grouped view's cells, computed ahead while idle
            await pilot.pause(0.01)
        out["warm"] = time.perf_counter() - t0
        for key, name in (("s", "sort"), ("g", "group"), ("c", "diff")):
            t0 = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()
            out[name] = time.perf_counter() - t0
        assert table.row_count >= 0
    trainer.shutdown()
    return out


def time_frame(folder: Path) -> float:
    """`cnn-tui` start → first paint in a pty (see bench_start.painted)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_start import bytecode_env, painted

    argv = [sys.executable, "-m", "tui.cli", "--runs-dir", str(folder)]
    return painted(argv, b"Lessons", bytecode_env(CNN_TUI_LAB="off"))


def time_cold_export(folder: Path, out: Path) -> float:
    """An export with no row cache: every record parsed (a folder copied in)."""
    from trainer.store import rowcache
    from trainer.store.runstore import RunStore

    cache = rowcache.cache_path(RunStore(folder))
    cache.unlink(missing_ok=True)
    cache.with_suffix(".notes").unlink(missing_ok=True)
    return time_export(folder, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 200, 2000, 20000])
    parser.add_argument("--rounds", type=int, default=3, help="medians of this many")
    args = parser.parse_args()
    os.environ.setdefault("CNN_TUI_HOME", tempfile.mkdtemp(prefix="cnn-tui-bench-"))
    med = statistics.median
    print(f"medians of {args.rounds} · "
          f"{'N':>7} {'load s':>8} {'export cold/again/noted s':>25} {'frame s':>8} "
          f"{'loaded s':>9} {'warm s':>7} {'sort s':>7} {'group s':>8} {'diff s':>7}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "runs"
            make_records(folder, n)
            load = med(time_load(folder) for _ in range(args.rounds))
            export, again, noted = [], [], []
            for _ in range(args.rounds):
                export.append(time_cold_export(folder, Path(tmp) / "all.csv"))
                again.append(time_export(folder, Path(tmp) / "again.csv"))
                noted.append(time_noted_export(folder, Path(tmp) / "noted.csv"))
            time_frame(folder)  # untimed: the page cache, as for every later start
            tuis = [{"frame": time_frame(folder), **asyncio.run(time_tui(folder))}
                    for _ in range(args.rounds)]
            tui = {k: med(t[k] for t in tuis) for k in tuis[0]}
            print(f"{n:>7} {load:>8.2f} {med(export):>11.2f}/{med(again):>6.2f}/"
                  f"{med(noted):>6.2f} {tui['frame']:>8.2f} {tui['loaded']:>9.2f} "
                  f"{tui['warm']:>7.2f} {tui['sort']:>7.3f} {tui['group']:>8.3f} "
                  f"{tui['diff']:>7.3f}", flush=True)


if __name__ == "__main__":
    main()
