"""What looking inside costs: training time with probes on vs off, and the record's size.

Trains the same run (same seed, so the same batches and, with probes off, the same numbers)
with the per-epoch layer probe and the test diagnosis on and off, alternating the order over
`--rounds`, and prints the best wall time of each and the overhead. The probe is one
forward + backward of PROBE_SIZE (256) images per epoch, so its share is about
256 / (training images per epoch): ~0.6% for the course's 42,500, ~3% for the synthetic
set's 8,500 (the default here, the worst realistic case).

Then the size of a 30-epoch course-CNN record as the store writes it (layer statistics of a
real probe pass of the default model, repeated for 30 epochs, and a 10,000-image diagnosis
with the first layer's 32 filters and the test-images key), with and without the look-inside
fields, and at 1,000 epochs (statistics thinned, see store.apply).

    python benchmarks/bench_probes.py                       # CPU, synthetic, ~2 minutes
    python benchmarks/bench_probes.py --widths 32,64,128 --epochs 3 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from trainer.config import RunConfig
from trainer.engine import data, loop, probes
from trainer.engine.model import build_model
from trainer.events import EpochEnd, RunFinished, RunRequest, RunStarted
from trainer.store.apply import apply_event
from trainer.store.record import RunRecord


def timed_run(cfg: RunConfig, source: data.DeviceData, on: bool) -> tuple[float, list]:
    events: list = []
    t0 = time.perf_counter()
    loop.train(RunRequest(cfg.to_dict()), source, torch.device("cpu"), events.append,
               lambda: False, probes=on)
    return time.perf_counter() - t0, events


def record_size(epochs: int, inside: bool) -> int:
    """Bytes of a course-CNN record of `epochs` epochs, as RunStore writes it (indent=1)."""
    cfg = RunConfig()
    model = build_model(cfg)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(probes.PROBE_SIZE, 3, 32, 32, generator=gen), torch.randint(0, 10, (256,))
    stats = probes.Probe(model, x, y, lambda o, t: loop.per_sample_loss(o, t, cfg.loss).mean()
                         ).measure() if inside else ()
    rec: RunRecord | None = apply_event(None, RunStarted(
        "20260101-000000-abcdef", cfg.to_dict(), "batch_norm", "BN on", 0, "g", "cpu", "cpu",
        "2.x", 900_000, 665, 42_500, 7_500, 10_000))
    for e in range(1, epochs + 1):
        rec = apply_event(rec, EpochEnd(rec.run_id if rec else "", e, 1.2345678, 0.56789,
                                        1.3456789, 0.5432198, 0.001, 21.123456, e % 3 == 0,
                                        False, stats))
    test_y = torch.randint(0, 10, (10_000,), generator=gen)
    pred = torch.where(torch.rand(10_000, generator=gen) < 0.7, test_y,
                       torch.randint(0, 10, (10_000,), generator=gen))
    conf = 0.1 + 0.9 * torch.rand(10_000, generator=gen)
    diagnosis = probes.diagnose(test_y, pred, conf, data.CIFAR10_CLASSES,
                                test_images="cifar10-0123abcd-4567ef89",
                                filters=probes.first_filters(model)) if inside else None
    assert rec is not None
    rec = apply_event(rec, RunFinished(rec.run_id, 1.0, 0.7, 25, 0.71, 0.9, epochs, 600.0,
                                       2000.0, diagnosis=diagnosis))
    return len(json.dumps(rec.to_json(), indent=1, ensure_ascii=False).encode())


def probe_share(cfg: RunConfig, source: data.DeviceData, events: list) -> tuple[float, float]:
    """Seconds of one probe pass (median of 10, on the run's probe batch) and its share of
    an epoch's training time: the overhead by construction, without whole-run noise."""
    import statistics

    split = source.splits(cfg)
    model = build_model(cfg)
    k = probes.probe_size(len(split.train_y))
    probe = probes.Probe(model, split.val_x[:k].float() / 255, split.val_y[:k],
                         lambda o, t: loop.per_sample_loss(o, t, cfg.loss).mean())
    probe.measure()
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        probe.measure()
        times.append(time.perf_counter() - t0)
    epoch = min(e.seconds for e in events if isinstance(e, EpochEnd))
    return statistics.median(times), statistics.median(times) / epoch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--widths", default="16,32,64")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-subset", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2, help="on/off pairs (best time counts)")
    args = ap.parse_args()
    cfg = RunConfig.from_dict({"dataset": "synthetic", "epochs": args.epochs,
                               "train_subset": args.train_subset,
                               "widths": [int(w) for w in args.widths.split(",")]})
    source = data.DeviceData(data.load_raw("synthetic"), torch.device("cpu"))
    print(f"CPU, {torch.get_num_threads()} threads · synthetic · widths {args.widths} · "
          f"{args.epochs} epochs · train_subset {args.train_subset}")
    timed_run(cfg, source, False)  # warm-up: first-call allocations and kernel choices
    times: dict[bool, list[float]] = {True: [], False: []}
    results: dict[bool, list] = {}
    for r in range(args.rounds):
        for on in ((False, True) if r % 2 == 0 else (True, False)):
            seconds, events = timed_run(cfg, source, on)
            times[on].append(seconds)
            results[on] = [(e.train_loss, e.val_loss) for e in events if isinstance(e, EpochEnd)]
            results_events = events
    off, on = min(times[False]), min(times[True])
    print(f"probes off: {off:.2f} s   probes on: {on:.2f} s   overhead {100 * (on / off - 1):+.1f}%"
          f"   (all: off {[round(t, 2) for t in times[False]]}, on "
          f"{[round(t, 2) for t in times[True]]})")
    print("same losses with probes on and off:", results[True] == results[False])
    seconds, share = probe_share(cfg, source, results_events)
    print(f"one probe pass: {seconds * 1000:.0f} ms, {100 * share:.1f}% of an epoch "
          "(the overhead by construction; whole-run times above carry the machine's noise)")
    plain, full = record_size(30, False), record_size(30, True)
    print(f"30-epoch course-CNN record: {full / 1024:.1f} KB with the look-inside data, "
          f"{plain / 1024:.1f} KB without; 1,000 epochs (statistics thinned) "
          f"{record_size(1000, True) / 1024:.0f} KB")


if __name__ == "__main__":
    main()
