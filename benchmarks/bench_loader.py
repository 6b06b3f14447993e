"""Data path benchmark: this trainer's on-device tensors vs the usual torchvision pipeline.

Trains the same course CNN (same init, batch size, device and training step) twice:
  A. this loop's path: the uint8 split lives on the device; each step gathers a batch by index
     and normalises it there (trainer.engine.loop.Prep);
  B. the usual one: a torchvision-style Dataset returning PIL images through
     ToTensor + Normalize, batched by DataLoader(num_workers=2), copied to the device.
Prints images/s of both and their ratio. The model step is the identical function for both, so
the difference is the data path alone.

    python benchmarks/bench_loader.py --device cpu --steps 30
    python benchmarks/bench_loader.py --device cuda --batch-size 64 --steps 300 --data cifar10
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from trainer import locate
from trainer.config import RunConfig
from trainer.engine import data
from trainer.engine.loop import Prep, device_name, epoch_order, make_optimizer, per_sample_loss
from trainer.engine.model import build_model, count_params


class PILArrayDataset(Dataset):
    """What torchvision.datasets.CIFAR10.__getitem__ does: HWC uint8 → PIL → transform."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform: Callable) -> None:
        self.x = x.permute(0, 2, 3, 1).numpy()  # [N,32,32,3], like CIFAR10.data
        self.y = y.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.x[i])), self.y[i]


def torchvision_dataset(args: argparse.Namespace, raw: data.RawData,
                        transform: Callable) -> tuple[Dataset, str]:
    """The real torchvision CIFAR10 class when it accepts the files (md5), else its equivalent."""
    if args.data == "cifar10":
        from torchvision.datasets import CIFAR10

        src = locate.find_cifar10(args.data_dir)
        if src is not None and src.is_dir():
            with contextlib.suppress(RuntimeError):  # md5 mismatch → "not found or corrupted"
                return CIFAR10(str(src.parent), train=True, transform=transform), "CIFAR10"
    return PILArrayDataset(raw.train_x, raw.train_y, transform), "CIFAR10-equivalent Dataset"


def make_step(cfg: RunConfig, device: torch.device) -> tuple[torch.nn.Module, Callable]:
    """A fresh course CNN (same seed each time) and its training step, as in trainer.engine.loop."""
    cuda = device.type == "cuda"
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = make_optimizer(cfg, model, cuda)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else (
            contextlib.nullcontext())
        with autocast:
            loss = per_sample_loss(model(x), y, cfg.loss).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return model, step


def timed(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], step: Callable, warmup: int,
          steps: int, batch_size: int, device: torch.device) -> float:
    """images/s over `steps` steps after `warmup` untimed ones."""
    for _ in range(warmup):
        step(*next(batches))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(*next(batches))
    sync()
    return steps * batch_size / (time.perf_counter() - t0)


def on_device_batches(splits: data.Splits, prep: Prep, batch_size: int,
                      device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This loop's data path: index the device-resident uint8 split, normalise on device."""
    n, epoch = len(splits.train_y), 0
    while True:
        epoch += 1
        order = epoch_order(n, seed=0, epoch=epoch, shuffle=True, device=device)
        for lo in range(0, n - batch_size + 1, batch_size):
            idx = order[lo:lo + batch_size]
            yield prep(splits.train_x[idx]), splits.train_y[idx]


def loader_batches(loader: DataLoader, device: torch.device,
                   channels_last: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    while True:
        for x, y in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
            yield x, y.to(device, non_blocking=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100, help="timed steps per pipeline")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps before timing")
    ap.add_argument("--data", choices=("synthetic", "cifar10"), default="synthetic")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating timing rounds")
    args = ap.parse_args()

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    raw = data.load_raw(args.data, args.data_dir, notify=print)
    cfg = RunConfig(dataset=args.data, batch_size=args.batch_size, input_norm="standardize",
                    val_split=0.01)
    splits = data.make_splits(raw, cfg, device)
    mean, std = splits.mean.view(3).tolist(), splits.std.view(3).tolist()

    print(f"course CNN ({count_params(build_model(cfg)):,} params), batch {args.batch_size}, "
          f"{args.steps} timed steps after {args.warmup} warm-up, device {device_name(device)}, "
          f"data {args.data} ({len(raw.train_y):,} train images), torch {torch.__version__}")

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    dataset, kind = torchvision_dataset(args, raw, transform)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        num_workers=args.workers, pin_memory=cuda,
                        persistent_workers=args.workers > 0,
                        generator=torch.Generator().manual_seed(0))
    pipelines = {
        "on-device uint8 tensors (this loop)": (
            on_device_batches(splits, Prep(splits, cfg, cuda), args.batch_size, device),
            make_step(cfg, device)[1]),
        f"{kind} + ToTensor/Normalize + DataLoader({args.workers})": (
            loader_batches(loader, device, cuda), make_step(cfg, device)[1]),
    }
    # Alternate the two pipelines for a few rounds and keep each one's median, so a burst of
    # other load on the machine does not decide the comparison.
    results: dict[str, list[float]] = {name: [] for name in pipelines}
    for r in range(args.rounds):
        for name, (batches, step) in pipelines.items():
            rate = timed(batches, step, args.warmup if r == 0 else 1, args.steps,
                         args.batch_size, device)
            results[name].append(rate)
            print(f"  round {r + 1}: {name}: {rate:,.0f} images/s", flush=True)
    ours, usual = (statistics.median(v) for v in results.values())
    width = max(len(n) for n in results)
    print("median over rounds:")
    for name, rate in zip(results, (ours, usual), strict=True):
        print(f"  {name:{width}s}  {rate:10,.0f} images/s")
    print(f"  ratio (this loop / DataLoader): {ours / usual:.2f}×")

if __name__ == "__main__":
    main()
