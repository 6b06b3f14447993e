"""Repeats trained together: N runs that differ only in their seed, as one wide model.

Why: at batch 64 the course CNN is far too small to fill a GPU, so a step costs mostly kernel
launches and N runs in one step cost about as much as one. The wide model keeps each run's
own semantics:
- each conv becomes one grouped conv (groups=N): run r owns channel block r, and starts from
  its own init (each run's solo model is built from its own seed, then copied in);
- BatchNorm over N·C channels normalises every channel over its own run's batch: per-run BN;
- each dense layer becomes a batched matmul over stacked weights [N,out,in];
- each run draws its own batches (epoch_order/epoch_augment with its own seed), so run r sees
  the batches it sees alone; its images sit in channel block r of the wide input;
- the objective is the sum of the runs' mean losses (plus the penalty): the parameters are
  disjoint, so each run's gradient is exactly its own, and SGD and Adam act elementwise, so one
  optimiser over the wide parameters equals N separate ones.
Every run keeps its own best checkpoint, early stop, divergence, stop, events and record. A run
that ended keeps computing in its slice (cheaper than reshaping the model), which nothing reads.
The look-inside data (layer statistics each epoch, the test diagnosis and first-layer filters)
is measured on a solo copy loaded with the run's own slice: the numbers the run has alone.
Dropout masks are independent per run, but not the masks the run would draw alone.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from trainer.config import RunConfig, shared_step_key
from trainer.engine import graphs
from trainer.engine.data import DeviceData
from trainer.engine.loop import (
    PROGRESS_EVERY_S,
    Best,
    Prep,
    autocast,
    batch_bounds,
    cuda_setup,
    epoch_augment,
    epoch_order,
    graph_fallback,
    make_optimizer,
    make_schedule,
    penalty,
    per_sample_loss,
    run_started,
    schedule_step,
)
from trainer.engine.model import build_model, count_params
from trainer.engine.probes import Predictions, Probe, first_filters, probe_size
from trainer.events import (
    EpochEnd,
    Event,
    LayerStats,
    Preparing,
    Progress,
    RunDiverged,
    RunFinished,
    RunRequest,
    RunStopped,
)

State = dict[str, torch.Tensor]


# -- the wide model ----------------------------------------------------------------------------

class StackedLinear(nn.Module):
    """N independent dense layers on [N,B,in] → [N,B,out], as one batched matmul."""

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in layers]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class RunsFlatten(nn.Module):
    """[B, N·C, h, w] → [N, B, C·h·w]: each run's features in the order nn.Flatten gives them."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.n, -1).transpose(0, 1)


def widen(solos: Sequence[nn.Sequential]) -> nn.Sequential:
    """One wide model holding the N solo models (same architecture) side by side, each with
    its own weights. Layer indices, and so state_dict keys, match the solo model's."""
    n = len(solos)
    layers: list[nn.Module] = []
    for same in zip(*solos, strict=True):
        first = same[0]
        wide: nn.Module
        if isinstance(first, nn.Conv2d):
            # The course's convs are square, with int padding (see model.conv_unit).
            padding = first.padding[0] if isinstance(first.padding, tuple) else first.padding
            wide = nn.Conv2d(n * first.in_channels, n * first.out_channels,
                             first.kernel_size[0], stride=first.stride[0], padding=padding,
                             groups=n, bias=first.bias is not None)
        elif isinstance(first, nn.BatchNorm2d):
            wide = nn.BatchNorm2d(n * first.num_features, eps=first.eps, momentum=first.momentum)
        elif isinstance(first, nn.Linear):
            wide = StackedLinear([m for m in same if isinstance(m, nn.Linear)])
        elif isinstance(first, nn.Flatten):
            wide = RunsFlatten(n)
        else:  # activation, pooling, dropout: per element or per channel, without weights
            wide = first
        layers.append(wide)
    model = nn.Sequential(*layers)
    for r, solo in enumerate(solos):
        load_run(model, n, r, solo.state_dict())
    return model


def run_tensors(model: nn.Sequential, n: int, r: int) -> State:
    """Run r's slice of every parameter and buffer (views, keyed like its solo state_dict)."""
    out: State = {}
    for key, t in model.state_dict().items():
        layer = model[int(key.split(".", 1)[0])]
        if isinstance(layer, StackedLinear):
            out[key] = t[r]
        elif t.dim() == 0:  # BatchNorm's num_batches_tracked: the same count for every run
            out[key] = t
        else:  # grouped conv weights/biases and BN vectors: block r of the channels
            c = t.shape[0] // n
            out[key] = t[r * c:(r + 1) * c]
    return out


def run_state(model: nn.Sequential, n: int, r: int) -> State:
    """A copy of run r's weights: exactly what its solo model's state_dict would hold."""
    return {k: v.clone() for k, v in run_tensors(model, n, r).items()}


@torch.no_grad()
def load_run(model: nn.Sequential, n: int, r: int, state: State) -> None:
    for key, view in run_tensors(model, n, r).items():
        view.copy_(state[key])


def wide_kernels(model: nn.Module) -> list[torch.Tensor]:
    """The penalised kernels (conv and dense weights) of every run: Σ over runs of each run's
    penalty is the penalty of all of them, since the wide weights hold only the runs' own."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | StackedLinear)]


def side_by_side(x: torch.Tensor, n: int, memory_format: torch.memory_format) -> torch.Tensor:
    """[N·B, C, H, W] (run-major) → [B, N·C, H, W]: run r's image b in channel block r."""
    nb, c, h, w = x.shape
    wide = x.view(n, nb // n, c, h, w).transpose(0, 1).reshape(nb // n, n * c, h, w)
    return wide.contiguous(memory_format=memory_format)


def run_losses(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Each run's mean loss [N] from logits [N,B,K] and labels [N,B]."""
    n, _, k = logits.shape
    return per_sample_loss(logits.reshape(-1, k), y.reshape(-1), kind).view(n, -1).mean(1)


class AllEnded(Exception):
    """Every run of the group has reported its end: nothing left to compute."""


@torch.no_grad()
def evaluate_group(model: nn.Module, x: torch.Tensor, y: torch.Tensor, prep: Prep, n: int,
                   memory_format: torch.memory_format, loss_kind: str, cuda: bool,
                   keep_going: Callable[[], bool],
                   keep: Sequence[Predictions] = ()) -> list[tuple[float, float]]:
    """(mean loss, accuracy) of each run over a split; every run sees the same images.
    `keep[r]` collects run r's predictions (the test diagnosis)."""
    model.eval()
    batch = 2048 if cuda else 500
    loss_sum = torch.zeros(n, device=x.device)
    correct = torch.zeros(n, device=x.device, dtype=torch.long)
    for lo in range(0, len(y), batch):
        if not keep_going():
            raise AllEnded
        yb = y[lo:lo + batch]
        xb = prep(x[lo:lo + batch]).repeat(1, n, 1, 1).contiguous(memory_format=memory_format)
        with autocast(cuda):
            logits = model(xb)
        k = logits.shape[-1]
        per_sample = per_sample_loss(logits.reshape(-1, k), yb.repeat(n), loss_kind)
        loss_sum += per_sample.view(n, -1).sum(1)
        correct += (logits.argmax(-1) == yb).sum(1)
        for r, predictions in enumerate(keep):
            predictions.add(logits[r])
    count = max(len(y), 1)
    return [(loss / count, hits / count)
            for loss, hits in zip(loss_sum.tolist(), correct.tolist(), strict=True)]


# -- the grouped loop --------------------------------------------------------------------------

@dataclass
class Member:
    """One run of the group: where its events go, and what it has done so far."""

    request: RunRequest
    cfg: RunConfig
    emit: Callable[[Event], None]
    should_stop: Callable[[], bool]
    best: Best = field(default_factory=Best)
    training: bool = True  # still in its epochs
    ended: bool = False  # its terminal event went out
    early_stopped: bool = False
    final: State | None = None  # its weights when it stopped early (its slice trains on)
    epochs_done: int = 0
    train_images: int = 0
    train_time: float = 0.0
    total_time: float = 0.0

    @property
    def run_id(self) -> str:
        return self.request.run_id

    def end(self, event: Event) -> None:
        self.training, self.ended = False, True
        self.emit(event)

    def diverged(self, epoch: int, loss: float) -> None:
        self.end(RunDiverged(run_id=self.run_id, epoch=epoch, epochs_done=self.epochs_done,
                             loss=loss))


def can_group(requests: Sequence[RunRequest]) -> bool:
    """Whether these runs can share one training step (same config but for the seed)."""
    keys = {shared_step_key(r.config) for r in requests}
    return len(keys) == 1 and None not in keys


def train_group(requests: Sequence[RunRequest], source: DeviceData, device: torch.device,
                emits: Sequence[Callable[[Event], None]],
                stops: Sequence[Callable[[], bool]], cuda_graphs: bool = True,
                probes: bool = True) -> None:
    """Train the runs together; each gets the events `loop.train` would send it, on its own
    `emits[i]`, and ends on its own when `stops[i]()` says so. `cuda_graphs` and `probes` as
    in `loop.train`: the wide step is captured the same way."""
    if not can_group(requests):
        raise ValueError("these runs differ in more than their seed: they train alone")
    members = [Member(req, RunConfig.from_dict(req.config), emit, stop)
               for req, emit, stop in zip(requests, emits, stops, strict=True)]
    cfg, n = members[0].cfg, len(members)  # every key but the seed is the same
    cuda = device.type == "cuda"
    if cuda:
        cuda_setup()
    data = source.splits(cfg)
    for m in members:
        m.emit(Preparing(m.run_id, "building the model"))
    solos = []
    for m in members:
        torch.manual_seed(m.cfg.seed)  # each run's own init, exactly as when it trains alone
        solos.append(build_model(m.cfg))
    model = widen(solos).to(device)
    torch.manual_seed(cfg.seed)  # the dropout masks: one stream, independent per run
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = model.to(memory_format=fmt)
    n_train = len(data.train_y)
    bounds = batch_bounds(n_train, cfg.batch_size)
    seen = bounds[-1][1]
    graphed = graphs.wanted(device, cuda_graphs, bounds, cfg.batch_size)
    opt = make_optimizer(cfg, model, cuda, capturable=graphed)
    schedule = make_schedule(cfg, opt)
    penalised = wide_kernels(model)

    def forward(x: torch.Tensor, y: torch.Tensor) -> graphs.Out3:
        """(objective, each run's mean loss [N], logits [N,B,K]) of the wide batch."""
        with autocast(cuda):
            logits = model(x)
            losses = run_losses(logits, y, cfg.loss)
        return losses.sum() + penalty(penalised, cfg.l2, cfg.l1), losses, logits

    def fell_back(why: str) -> None:
        for m in members:
            if not m.ended:
                m.emit(graph_fallback(m.run_id, why))

    step_on = graphs.make_step(forward, opt, graphed, fell_back)
    for m in members:
        m.emit(run_started(m.request, m.cfg, source, data, device, count_params(solos[0]),
                           len(bounds), together=n, cuda_graph=graphed))
        m.emit(Preparing(m.run_id, "warming up" + (" (cuDNN picks its kernels)" if cuda else "")))
    prep = Prep(data, cfg, cuda=False)  # NCHW: side_by_side lays the wide input out after
    # The solo copy the look-inside data is measured on, loaded with one run's slice at a time.
    solo = solos[0].to(device)
    k = probe_size(n_train)
    probe = Probe(solo, prep(data.val_x[:k]), data.val_y[:k],
                  lambda out, y: per_sample_loss(out, y, cfg.loss).mean()) if probes else None

    def measure(r: int) -> tuple[LayerStats, ...]:
        if probe is None:
            return ()
        solo.load_state_dict(run_tensors(model, n, r))
        return probe.measure()

    def keep_going() -> bool:
        """End each run asked to stop (RunStopped); False once none is left."""
        for m in members:
            if not m.ended and m.should_stop():
                m.end(RunStopped(run_id=m.run_id, epochs_done=m.epochs_done))
        return not all(m.ended for m in members)

    try:
        for epoch in range(1, cfg.epochs + 1):
            if not any(m.training for m in members):
                break
            t0 = time.perf_counter()
            orders = torch.stack([epoch_order(n_train, m.cfg.seed, epoch, cfg.shuffle, device)
                                  for m in members])  # [N, n]: each run's own batches
            if cfg.augment != "none":
                augs = [epoch_augment(n_train, m.cfg.seed, epoch, device) for m in members]
                flips, shifts = torch.stack([a[0] for a in augs]), torch.stack([a[1] for a in augs])
            model.train()
            loss_sum = torch.zeros(n, device=device)
            correct = torch.zeros(n, device=device, dtype=torch.long)
            last_report = t0
            for step, (lo, hi) in enumerate(bounds, 1):
                if not keep_going():
                    raise AllEnded
                if not any(m.training for m in members):
                    break
                idx = orders[:, lo:hi].reshape(-1)
                aug = None if cfg.augment == "none" else (
                    flips[:, lo:hi].reshape(-1), shifts[:, lo:hi].reshape(-1, 2))
                x = side_by_side(prep(data.train_x[idx], aug), n, fmt)
                y = data.train_y[idx].view(n, -1)
                losses, logits = step_on(x, y)  # forward, Σ losses + penalty, backward, step
                loss_sum += losses * (hi - lo)
                correct += (logits.argmax(-1) == y).sum(1)
                now = time.perf_counter()
                if now - last_report >= PROGRESS_EVERY_S:  # the only host sync inside an epoch
                    last_report = now
                    rate = hi / max(now - t0, 1e-9)
                    for m, loss, hits in zip(members, loss_sum.tolist(), correct.tolist(),
                                             strict=True):
                        if not m.training:
                            continue
                        if not math.isfinite(loss / hi):
                            m.diverged(epoch, loss / hi)
                            continue
                        m.emit(Progress(run_id=m.run_id, epoch=epoch, step=step,
                                        steps=len(bounds), loss=loss / hi, acc=hits / hi,
                                        images_per_s=rate))
            if not any(m.training for m in members):
                break
            train = [(loss / seen, hits / seen)
                     for loss, hits in zip(loss_sum.tolist(), correct.tolist(), strict=True)]
            t_train = time.perf_counter() - t0
            val = evaluate_group(model, data.val_x, data.val_y, prep, n, fmt, cfg.loss, cuda,
                                 keep_going)
            lr = opt.param_groups[0]["lr"]
            schedule_step(schedule, math.nan)  # never a plateau schedule: see shared_step_key
            lr_dropped = cfg.lr_schedule == "step" and opt.param_groups[0]["lr"] < lr
            seconds = time.perf_counter() - t0
            for r, m in enumerate(members):
                if m.training:
                    end_epoch(m, epoch, train[r], val[r], lr, lr_dropped, t_train, seconds,
                              seen, functools.partial(run_state, model, n, r),
                              functools.partial(measure, r))

        for r, m in enumerate(members):  # test each run with the weights it would test alone
            state = m.best.state if m.cfg.keep_best and m.best.state is not None else m.final
            if not m.ended and state is not None:
                load_run(model, n, r, state)
        kept = [Predictions() for _ in members] if probes else []
        test = evaluate_group(model, data.test_x, data.test_y, prep, n, fmt, cfg.loss, cuda,
                              keep_going, kept)
    except AllEnded:
        return
    for r, (m, (test_loss, test_acc)) in enumerate(zip(members, test, strict=True)):
        if not m.ended:
            diagnosis = None
            if kept:
                solo.load_state_dict(run_tensors(model, n, r))  # the weights it was tested with
                diagnosis = kept[r].diagnose(data.test_y, source.raw.classes,
                                             test_images=source.raw.key,
                                             filters=first_filters(solo))
            m.end(RunFinished(
                run_id=m.run_id, test_loss=test_loss, test_acc=test_acc,
                best_epoch=m.best.epoch, best_val_acc=m.best.val_acc,
                best_val_loss=m.best.val_loss, epochs_done=m.epochs_done,
                train_seconds=m.total_time,
                images_per_s=m.train_images / max(m.train_time, 1e-9),
                early_stopped=m.early_stopped, diagnosis=diagnosis))


def end_epoch(m: Member, epoch: int, train: tuple[float, float], val: tuple[float, float],
              lr: float, lr_dropped: bool, t_train: float, seconds: float, seen: int,
              weights: Callable[[], State],
              measure: Callable[[], tuple[LayerStats, ...]] = tuple) -> None:
    """One run's end of epoch, as `loop.train` does it: divergence, layer statistics, best
    checkpoint (a copy of its slice), EpochEnd, early stop."""
    (train_loss, train_acc), (val_loss, val_acc) = train, val
    bad = [loss for loss in (train_loss, val_loss) if not math.isfinite(loss)]
    if bad:
        m.diverged(epoch, bad[0])
        return
    layers = measure()
    is_best = m.best.update(epoch, val_loss, val_acc, None)
    if is_best and m.cfg.keep_best:
        m.best.state = weights()
    m.epochs_done, m.train_images = epoch, m.train_images + seen
    m.train_time, m.total_time = m.train_time + t_train, m.total_time + seconds
    m.emit(EpochEnd(run_id=m.run_id, epoch=epoch, train_loss=train_loss, train_acc=train_acc,
                    val_loss=val_loss, val_acc=val_acc, lr=lr, seconds=seconds,
                    is_best=is_best, lr_dropped=lr_dropped, layers=layers))
    if m.cfg.early_stop_patience and epoch - m.best.epoch >= m.cfg.early_stop_patience:
        m.early_stopped, m.training = epoch < m.cfg.epochs, False
        if not m.cfg.keep_best:
            m.final = weights()
