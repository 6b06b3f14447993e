"""The training loop: one run of the course CNN, reported as events.

Read it top to bottom like a paper's appendix:
1. seed everything from `cfg.seed`; put the uint8 splits on the device; build model/optimiser;
2. per epoch: a permutation that depends only on (seed, epoch), so repeat r of every variant
   sees the same batches (paired comparisons); per batch: gather, augment and normalise on the
   device, forward, data loss + Keras-style penalty, backward, step;
3. validate every epoch; the host then decides the lr schedule, the best checkpoint (lowest
   val loss) and early stopping, once per epoch;
4. test once at the end, with the best-val-loss weights when keep_best.

Loss and accuracy sums stay on the device; the host reads them at most ~10 times a second
(progress) and once per epoch. On CUDA the same code runs with channels_last, bf16 autocast,
cudnn.benchmark and fused optimisers, and the step is captured as a CUDA graph (see
`graphs`: same step, one launch); on CPU it is fp32, eager and deterministic for a fixed seed.
Exceptions propagate: the worker reports them as a failed run.
"""

from __future__ import annotations

import contextlib
import math
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trainer.config import RunConfig
from trainer.engine import graphs
from trainer.engine.data import DeviceData, Splits
from trainer.engine.model import build_model, count_params, kernels
from trainer.engine.probes import Predictions, Probe, first_filters, probe_size
from trainer.events import (
    EAGER_NOTICE,
    EpochEnd,
    Event,
    Notice,
    Preparing,
    Progress,
    RunDiverged,
    RunFinished,
    RunRequest,
    RunStarted,
    RunStopped,
)

PROGRESS_EVERY_S = 0.1  # at most 10 Progress events per second
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.2, 5  # the course's ReduceLROnPlateau(val_loss)
STEP_GAMMA = 0.1  # lr_schedule=step: ×0.1 at 50% and 75% of the epochs
CROP_PAD = 4  # augment=flip_crop: random 32×32 crop of the 4-pixel zero-padded image
ADAM_EPS = 1e-7  # Keras' Adam epsilon (PyTorch's default is 1e-8)


class Stopped(Exception):
    """should_stop() said so: unwind to train(), which reports RunStopped."""


class Diverged(Exception):
    """The loss is no longer finite: unwind to train(), which reports RunDiverged."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"loss {loss} in epoch {epoch}")
        self.epoch, self.loss = epoch, loss


def check_finite(epoch: int, *losses: float) -> None:
    """Raise Diverged when a loss is NaN or infinite (checked where the host reads it anyway:
    at each progress report and at the epoch's end, never with an extra sync)."""
    for loss in losses:
        if not math.isfinite(loss):
            raise Diverged(epoch, loss)


def train(request: RunRequest, source: DeviceData, device: torch.device,
          emit: Callable[[Event], None], should_stop: Callable[[], bool],
          cuda_graphs: bool = True, probes: bool = True) -> None:
    """Train one run; emits RunStarted, Progress…, EpochEnd…, then RunFinished or RunStopped.

    `cuda_graphs`: capture the step as a CUDA graph where it can be (CUDA only). `probes`:
    measure layer statistics each epoch and diagnose the test set (see probes.py); off only
    to time their cost."""
    cfg = RunConfig.from_dict(request.config)
    run_id = request.run_id
    cuda = device.type == "cuda"
    torch.manual_seed(cfg.seed)  # init and dropout; data order has its own generators
    if cuda:
        cuda_setup()

    data = source.splits(cfg)
    emit(Preparing(run_id, "building the model"))
    model = build_model(cfg).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)  # NHWC: tensor-core friendly convs
    n_train = len(data.train_y)
    bounds = batch_bounds(n_train, cfg.batch_size)
    seen = bounds[-1][1]  # images per epoch (n_train, less a dropped lone last image)
    graphed = graphs.wanted(device, cuda_graphs, bounds, cfg.batch_size)
    opt = make_optimizer(cfg, model, cuda, capturable=graphed)
    schedule = make_schedule(cfg, opt)
    penalised = kernels(model)

    def forward(x: torch.Tensor, y: torch.Tensor) -> graphs.Out3:
        """(objective, data loss, logits) of a batch: what the step minimises and reports."""
        with autocast(cuda):
            logits = model(x)
            loss = per_sample_loss(logits, y, cfg.loss).mean()
        return loss + penalty(penalised, cfg.l2, cfg.l1), loss, logits

    step_on = graphs.make_step(forward, opt, graphed,
                               lambda why: emit(graph_fallback(run_id, why)))
    emit(run_started(request, cfg, source, data, device, count_params(model), len(bounds),
                     cuda_graph=graphed))

    emit(Preparing(run_id, "warming up" + (" (cuDNN picks its kernels)" if cuda else "")))
    prep = Prep(data, cfg, cuda)
    k = probe_size(len(data.train_y))
    probe = Probe(model, prep(data.val_x[:k]), data.val_y[:k],
                  lambda out, y: per_sample_loss(out, y, cfg.loss).mean()) if probes else None
    best = Best()
    epochs_done, train_images, train_time, total_time = 0, 0, 0.0, 0.0
    early_stopped = False
    try:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            order = epoch_order(n_train, cfg.seed, epoch, cfg.shuffle, device)
            aug = epoch_augment(n_train, cfg.seed, epoch, device) if cfg.augment != "none" else None
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            last_report = t0
            for step, (lo, hi) in enumerate(bounds, 1):
                if should_stop():
                    raise Stopped
                idx = order[lo:hi]
                x = prep(data.train_x[idx], None if aug is None else (aug[0][lo:hi], aug[1][lo:hi]))
                y = data.train_y[idx]
                loss, logits = step_on(x, y)  # forward, loss + penalty, backward, opt step
                loss_sum += loss * (hi - lo)
                correct += (logits.argmax(1) == y).sum()
                now = time.perf_counter()
                if now - last_report >= PROGRESS_EVERY_S:  # the only host sync inside an epoch
                    last_report = now
                    running = loss_sum.item() / hi
                    check_finite(epoch, running)
                    emit(Progress(run_id=run_id, epoch=epoch, step=step, steps=len(bounds),
                                  loss=running, acc=correct.item() / hi,
                                  images_per_s=hi / max(now - t0, 1e-9)))
            train_loss, train_acc = loss_sum.item() / seen, correct.item() / seen
            t_train = time.perf_counter() - t0
            val_loss, val_acc = evaluate(model, data.val_x, data.val_y, prep, cfg.loss, cuda,
                                         should_stop)
            check_finite(epoch, train_loss, val_loss)
            layers = probe.measure() if probe is not None else ()
            lr = opt.param_groups[0]["lr"]
            is_best = best.update(epoch, val_loss, val_acc, model if cfg.keep_best else None)
            schedule_step(schedule, val_loss)
            lr_dropped = cfg.lr_schedule in ("plateau", "step") and opt.param_groups[0]["lr"] < lr
            seconds = time.perf_counter() - t0
            epochs_done, train_images = epoch, train_images + seen
            train_time, total_time = train_time + t_train, total_time + seconds
            emit(EpochEnd(run_id=run_id, epoch=epoch, train_loss=train_loss, train_acc=train_acc,
                          val_loss=val_loss, val_acc=val_acc, lr=lr, seconds=seconds,
                          is_best=is_best, lr_dropped=lr_dropped, layers=layers))
            if cfg.early_stop_patience and epoch - best.epoch >= cfg.early_stop_patience:
                early_stopped = epoch < cfg.epochs
                break

        if cfg.keep_best and best.state is not None:
            model.load_state_dict(best.state)
        predictions = Predictions() if probes else None
        test_loss, test_acc = evaluate(model, data.test_x, data.test_y, prep, cfg.loss, cuda,
                                       should_stop, predictions)
    except Stopped:
        emit(RunStopped(run_id=run_id, epochs_done=epochs_done))
        return
    except Diverged as d:
        emit(RunDiverged(run_id=run_id, epoch=d.epoch, epochs_done=epochs_done, loss=d.loss))
        return
    emit(RunFinished(
        run_id=run_id, test_loss=test_loss, test_acc=test_acc, best_epoch=best.epoch,
        best_val_acc=best.val_acc, best_val_loss=best.val_loss, epochs_done=epochs_done,
        train_seconds=total_time, images_per_s=train_images / max(train_time, 1e-9),
        early_stopped=early_stopped,
        diagnosis=(predictions.diagnose(data.test_y, source.raw.classes,
                                        test_images=source.raw.key,
                                        filters=first_filters(model))
                   if predictions is not None else None),
    ))


def cuda_setup() -> None:
    """Let cuDNN pick the fastest kernels for our fixed shapes, and use TF32 for fp32 math."""
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def run_started(request: RunRequest, cfg: RunConfig, source: DeviceData, data: Splits,
                device: torch.device, params: int, steps: int,
                together: int = 1, cuda_graph: bool = False) -> RunStarted:
    """The RunStarted of `request` (shared with the grouped loop, which adds `together`)."""
    return RunStarted(
        run_id=request.run_id, config=cfg.to_dict(), preset=request.preset,
        variant=request.variant, repeat=request.repeat, group=request.group,
        device=str(device), device_name=device_name(device),
        torch_version=str(torch.__version__), params=params, steps_per_epoch=steps,
        train_size=len(data.train_y), val_size=len(data.val_y), test_size=len(data.test_y),
        dataset_note=source.note, trained_together=together, cuda_graph=cuda_graph,
    )


def graph_fallback(run_id: str, why: str) -> Notice:
    """The one Notice of a run whose step could not be captured: it trains on eagerly (its
    record then says cuda_graph false, see store.apply)."""
    return Notice(message=f"CUDA graph capture failed ({why}): this run trains eagerly "
                  "(same results, slower steps)", level="warning", run_id=run_id,
                  kind=EAGER_NOTICE)


# -- data order and augmentation ---------------------------------------------------------------

def _stream_seed(seed: int, epoch: int, stream: int) -> int:
    """A distinct generator seed per (run seed, epoch, stream); never depends on the model."""
    return seed * 1_000_003 + epoch * 8 + stream


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Indices of the training set in the order epoch `epoch` visits them.

    Drawn on the CPU from (seed, epoch) alone, so the permutation is identical on every
    device and for every variant of a lesson: repeat r of "BN off" and "BN on" see exactly
    the same batches. shuffle=false keeps the dataset order every epoch.
    """
    if not shuffle:
        return torch.arange(n, device=device)
    gen = torch.Generator().manual_seed(_stream_seed(seed, epoch, 0))
    return torch.randperm(n, generator=gen).to(device)


def epoch_augment(n: int, seed: int, epoch: int,
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position flips [n] (bool) and crop offsets [n,2] (0..2·pad) for one epoch."""
    gen = torch.Generator().manual_seed(_stream_seed(seed, epoch, 1))
    flips = torch.rand(n, generator=gen) < 0.5
    shifts = torch.randint(0, 2 * CROP_PAD + 1, (n, 2), generator=gen)
    return flips.to(device), shifts.to(device)


def flip_crop(x: torch.Tensor, flips: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Batched random horizontal flip + padded random crop of uint8 images [B,3,H,W]."""
    b, _, h, w = x.shape
    x = torch.where(flips.view(b, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (CROP_PAD,) * 4)
    rows = shifts[:, :1] + torch.arange(h, device=x.device)  # [B,H]
    cols = shifts[:, 1:] + torch.arange(w, device=x.device)  # [B,W]
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    # Advanced indices around a slice put the batch/row/col dims first: [B,H,W,C].
    return padded[batch, :, rows.view(b, h, 1), cols.view(b, 1, w)].permute(0, 3, 1, 2)


class Prep:
    """uint8 batch → float model input: optional augmentation, then unit or per-channel scale."""

    def __init__(self, data: Splits, cfg: RunConfig, cuda: bool) -> None:
        if cfg.input_norm == "standardize":
            self.scale = 1.0 / (255.0 * data.std)
            self.shift = -data.mean / data.std
        else:
            self.scale = torch.full_like(data.std, 1.0 / 255.0)
            self.shift = torch.zeros_like(data.mean)
        self.memory_format = torch.channels_last if cuda else torch.contiguous_format

    def __call__(self, x: torch.Tensor,
                 aug: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if aug is not None:
            x = flip_crop(x, *aug)
        x = torch.addcmul(self.shift, x.float(), self.scale)
        return x.contiguous(memory_format=self.memory_format)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, end) of each step; a trailing batch of a single image is dropped.

    A last partial batch is kept (as Keras does), except a lone image: BatchNorm cannot
    normalise a batch of one 1×1 map, and one image is a needlessly noisy step.
    """
    out = [(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]
    if batch_size > 1 and len(out) > 1 and out[-1][1] - out[-1][0] == 1:
        out.pop()
    return out


# -- loss, penalty, evaluation -----------------------------------------------------------------

def autocast(cuda: bool) -> contextlib.AbstractContextManager:
    """bf16 mixed precision on CUDA (no loss scaling needed); plain fp32 elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()


def per_sample_loss(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """cross_entropy on logits, or mse between softmax and the one-hot target (Keras' mean)."""
    logits = logits.float()
    if kind == "mse":
        target = F.one_hot(y, logits.shape[1]).float()
        return (logits.softmax(1) - target).pow(2).mean(1)
    return F.cross_entropy(logits, y, reduction="none")


def penalty(weights: list[torch.Tensor], l2: float, l1: float) -> torch.Tensor | float:
    """Keras kernel_regularizer: l2·Σw² + l1·Σ|w| over conv/dense kernels (reported losses
    leave it out, so variants with and without a penalty compare on the same data loss).

    One expression over all kernels at once (a cat, then one reduction per term): a Python
    sum over layers issued several kernel launches per layer and step, which on a GPU costs
    more than the arithmetic."""
    if not (l2 or l1):
        return 0.0
    flat = torch.cat([w.reshape(-1) for w in weights])
    total: torch.Tensor | float = 0.0
    if l2:
        total = total + l2 * flat.square().sum()
    if l1:
        total = total + l1 * flat.abs().sum()
    return total


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, prep: Prep, loss_kind: str,
             cuda: bool, should_stop: Callable[[], bool],
             keep: Predictions | None = None) -> tuple[float, float]:
    """Mean data loss and accuracy over a split, in eval mode; one host sync at the end.
    `keep` collects each image's predicted class and probability (the test diagnosis)."""
    model.eval()
    batch = 2048 if cuda else 500
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for lo in range(0, len(y), batch):
        if should_stop():
            raise Stopped
        yb = y[lo:lo + batch]
        with autocast(cuda):
            logits = model(prep(x[lo:lo + batch]))
        loss_sum += per_sample_loss(logits, yb, loss_kind).sum()
        correct += (logits.argmax(1) == yb).sum()
        if keep is not None:
            keep.add(logits)
    n = max(len(y), 1)
    return loss_sum.item() / n, correct.item() / n


@dataclass
class Best:
    """The lowest-val-loss epoch so far (Keras ModelCheckpoint(save_best_only) semantics)."""

    epoch: int = 0
    val_loss: float = math.nan
    val_acc: float = math.nan
    state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, val_loss: float, val_acc: float, model: nn.Module | None) -> bool:
        improved = math.isfinite(val_loss) and not val_loss >= self.val_loss  # nan-safe "<"
        if improved:
            self.epoch, self.val_loss, self.val_acc = epoch, val_loss, val_acc
            if model is not None:  # a device-side copy: cheap, no host round trip
                self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return improved


# -- optimiser and schedule --------------------------------------------------------------------

def make_optimizer(cfg: RunConfig, model: nn.Module, cuda: bool,
                   capturable: bool = False) -> torch.optim.Optimizer:
    """No weight_decay: L2/L1 go into the loss, Keras-style (see `penalty`). `capturable`:
    Adam keeps its step count on the device, so a CUDA graph may hold its step (SGD always
    can)."""
    fused = True if cuda else None  # fused kernels: one launch per step instead of per tensor
    params = list(model.parameters())
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, eps=ADAM_EPS, fused=fused,
                                capturable=capturable and cuda)  # a CPU Adam cannot be
    momentum = 0.9 if cfg.optimizer == "sgd_momentum" else 0.0
    return torch.optim.SGD(params, lr=cfg.lr, momentum=momentum, fused=fused)


Schedule = torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau


def make_schedule(cfg: RunConfig, opt: torch.optim.Optimizer) -> Schedule | None:
    """Stepped once per epoch by the host (after validation)."""
    sched = torch.optim.lr_scheduler
    if cfg.lr_schedule == "plateau":
        # Keras semantics: min_delta 1e-4 absolute, cooldown 0, and it drops once `patience`
        # epochs passed without gain; PyTorch drops when more than `patience` passed, hence -1.
        return sched.ReduceLROnPlateau(opt, mode="min", factor=PLATEAU_FACTOR,
                                       patience=PLATEAU_PATIENCE - 1, threshold=1e-4,
                                       threshold_mode="abs")
    if cfg.lr_schedule == "cosine":
        return sched.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.lr_schedule == "step":
        milestones = sorted({max(1, round(cfg.epochs * f)) for f in (0.5, 0.75)})
        return sched.MultiStepLR(opt, milestones=milestones, gamma=STEP_GAMMA)
    return None


def schedule_step(schedule: Schedule | None, val_loss: float) -> None:
    if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
        schedule.step(val_loss)
    elif schedule is not None:
        schedule.step()


# -- device description ------------------------------------------------------------------------

def device_name(device: torch.device) -> str:
    """GPU name, or the CPU model and how many threads PyTorch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    model = cpu_model()
    return f"{model} ({threads} threads)" if model else f"CPU ({threads} threads)"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in _read_lines("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor().strip()


def _read_lines(path: str) -> Iterator[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        yield from f
