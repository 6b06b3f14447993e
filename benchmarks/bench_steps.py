"""Training-step benchmark on one device: the usual DataLoader pipeline, this loop eager, this
loop as a CUDA graph, and repeats trained together (grouped ×N) vs the same runs one by one.

Same course CNN, batch size and step (Adam, bf16 on CUDA) for every row; images/s counts
the images of every run a step trains. "s/epoch" is the training part of one course epoch
(42,500 images) at that rate, per run. Rows that cannot be measured here say why; no figure
is printed that was not measured.

    python benchmarks/bench_steps.py --device cpu --steps 20
    python benchmarks/bench_steps.py --device cuda --steps 300
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loader import (  # a sibling script, not a package
    PILArrayDataset,
    loader_batches,
    make_step,
    on_device_batches,
    timed,
)

from trainer.config import RunConfig
from trainer.engine import data, graphs, grouped
from trainer.engine.loop import (
    Prep,
    autocast,
    device_name,
    epoch_order,
    make_optimizer,
    per_sample_loss,
)
from trainer.engine.model import build_model

COURSE_TRAIN = 42_500  # training images per course epoch


def graphed_step(cfg: RunConfig, device: torch.device, failures: list[str]) -> Callable:
    """The loop's step as a CUDA graph (trainer.engine.graphs), on the same model as the
    eager row; a failed capture is noted in `failures` (its row then prints no figure)."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device).to(memory_format=torch.channels_last)
    model.train()
    opt = make_optimizer(cfg, model, cuda=True, capturable=True)

    def forward(x: torch.Tensor, y: torch.Tensor) -> graphs.Out3:
        with autocast(True):
            logits = model(x)
            loss = per_sample_loss(logits, y, cfg.loss).mean()
        return loss, loss, logits

    return graphs.GraphedStep(forward, opt, failures.append)


def grouped_step(cfg: RunConfig, n: int, device: torch.device) -> Callable:
    """The grouped loop's step for n seeds: one wide model, each run its own batch."""
    cuda = device.type == "cuda"
    solos = []
    for seed in range(n):
        torch.manual_seed(seed)
        solos.append(build_model(cfg.replace(seed=seed)))
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = grouped.widen(solos).to(device).to(memory_format=fmt)
    model.train()
    opt = make_optimizer(cfg, model, cuda)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast(cuda):
            losses = grouped.run_losses(model(grouped.side_by_side(x, n, fmt)),
                                        y.view(n, -1), cfg.loss)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()

    return step


def grouped_batches(splits: data.Splits, prep: Prep, batch_size: int, n: int,
                    device: torch.device):
    """n runs' own batches (each seed its own order), run-major: [n·B,3,H,W], [n·B]."""
    count, epoch = len(splits.train_y), 0
    while True:
        epoch += 1
        orders = torch.stack([epoch_order(count, s, epoch, True, device) for s in range(n)])
        for lo in range(0, count - batch_size + 1, batch_size):
            idx = orders[:, lo:lo + batch_size].reshape(-1)
            yield prep(splits.train_x[idx]), splits.train_y[idx]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100, help="timed steps per row and round")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--group", type=int, default=3, help="runs trained together")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    args = ap.parse_args()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    raw = data.load_raw("synthetic", None, notify=lambda m: None)
    cfg = RunConfig(dataset="synthetic", batch_size=args.batch_size, val_split=0.01)
    splits = data.make_splits(raw, cfg, device)
    b, n = args.batch_size, args.group
    print(f"course CNN, batch {b}, Adam, {'bf16' if cuda else 'fp32'}, {args.steps} timed "
          f"steps × {args.rounds} rounds, device {device_name(device)}, torch "
          f"{torch.__version__}")

    transform = transforms.Compose([transforms.ToTensor()])
    loader = DataLoader(PILArrayDataset(raw.train_x, raw.train_y, transform), batch_size=b,
                        shuffle=True, drop_last=True, num_workers=args.workers,
                        pin_memory=cuda, persistent_workers=args.workers > 0,
                        generator=torch.Generator().manual_seed(0))
    graph_failures: list[str] = []
    pipeline = f"torchvision Dataset + DataLoader({args.workers})"
    rows: dict[str, tuple] = {
        pipeline: (
            loader_batches(loader, device, cuda), make_step(cfg, device)[1], b),
        "this loop, eager": (
            on_device_batches(splits, Prep(splits, cfg, cuda), b, device),
            make_step(cfg, device)[1], b),
    }
    if cuda:  # CUDA graphs exist on CUDA only
        rows["this loop, graphed"] = (
            on_device_batches(splits, Prep(splits, cfg, cuda), b, device),
            graphed_step(cfg, device, graph_failures), b)
    rows[f"this loop, grouped ×{n}"] = (
        grouped_batches(splits, Prep(splits, cfg, False), b, n, device),
        grouped_step(cfg, n, device), n * b)
    rates: dict[str, list[float]] = {name: [] for name in rows}
    for r in range(args.rounds):
        for name, (batches, step, per_step) in rows.items():
            # timed() counts batch_size images a step; a grouped step trains n batches.
            rate = timed(batches, step, args.warmup if r == 0 else 1, args.steps, per_step,
                         device)
            rates[name].append(rate)
            print(f"  round {r + 1}: {name}: {rate:,.0f} images/s", flush=True)

    median = {name: statistics.median(v) for name, v in rates.items()}
    width = max(len(name) for name in [*median, "this loop, graphed"])
    print(f"median over rounds (s/epoch: the training part of one {COURSE_TRAIN:,}-image "
          f"epoch per run; runs trained together share the group's epoch wall time):")
    for name, rate in median.items():
        runs = rows[name][2] // b
        if name == "this loop, graphed" and graph_failures:  # it timed eager steps
            print(f"  {name:{width}s}  not measured: capture failed ({graph_failures[0]})")
            continue
        shared = f"  ({runs} runs' epochs in {runs * COURSE_TRAIN / rate:.2f} s)" if runs > 1 \
            else ""
        print(f"  {name:{width}s}  {rate:10,.0f} images/s  {COURSE_TRAIN / rate:8.2f} s/epoch"
              + shared)
        if name == "this loop, eager" and not cuda:
            print(f"  {'this loop, graphed':{width}s}  n/a on cpu")
    ratios = ", ".join(f"{name.removeprefix('this loop, ')} {rate / median[pipeline]:.1f}×"
                       for name, rate in median.items() if name.startswith("this loop")
                       and not (name == "this loop, graphed" and graph_failures))
    print(f"  vs the DataLoader pipeline, images/s: {ratios}")
    eager, wide = median["this loop, eager"], median[f"this loop, grouped ×{n}"]
    if cuda and not graph_failures:
        graphed = median["this loop, graphed"]
        print(f"  graphed vs eager: {graphed / eager:.2f}× the images/s")
    print(f"  grouped ×{n} vs {n} runs one by one: {wide / eager:.2f}× the images/s "
          f"({n} runs' epochs in {n * COURSE_TRAIN / wide:.2f} s instead of "
          f"{n * COURSE_TRAIN / eager:.2f} s)")


if __name__ == "__main__":
    main()
