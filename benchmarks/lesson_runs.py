"""One line on how a `cnn-tui run --csv FILE` launch trained, per variant: s/epoch, test
accuracy, where, and how (trained alone or N together, eager or as a CUDA graph), read from
the CSV and the run records it names. Used by benchmarks/gpu_check.sh.

    python benchmarks/lesson_runs.py FILE.csv RUNS_DIR
"""

from __future__ import annotations

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from trainer.store.runstore import RunStore


def main() -> None:
    csv_path, runs_dir = Path(sys.argv[1]), sys.argv[2]
    if not csv_path.is_file():
        print(f"no CSV ({csv_path.name} was not written)")
        return
    rows = list(csv.DictReader(csv_path.open()))
    records, _ = RunStore(runs_dir).load()
    env = {r.run_id: r.env for r in records}
    by_variant: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_variant[row["variant"]].append(row)
    parts = []
    for variant, group in by_variant.items():
        spe = [float(r["seconds_per_epoch"]) for r in group if r["seconds_per_epoch"]]
        acc = [float(r["test_acc"]) for r in group if r["test_acc"]]
        how = sorted({f"{e.trained_together} together" if e.trained_together > 1 else "alone"
                      for r in group if (e := env.get(r["run_id"])) is not None})
        graphed = sum(1 for r in group if (e := env.get(r["run_id"])) and e.cuda_graph)
        status = ",".join(sorted({r["status"] for r in group}))
        parts.append(
            f"{variant}: {len(group)} {status}, "
            + (f"{statistics.median(spe):.2f} s/epoch" if spe else "s/epoch n/a")
            + (f", test acc {statistics.mean(acc):.1%}" if acc else "")
            + f", {group[0]['device']}, {'/'.join(how) or '?'}, {graphed} graphed")
    print(" · ".join(parts))


if __name__ == "__main__":
    main()
