"""The training step, eager or captured as a CUDA graph.

Why graphs: at batch 64 the course CNN's step is a few hundred tiny kernels, and on a GPU the
host's time to launch them exceeds the GPU's time to run them. A CUDA graph records the whole
step (forward, loss, penalty, backward, optimiser) once and replays it with one launch.

This is PyTorch's "whole-network capture" recipe: a few warm-up steps on a side stream
(cuDNN picks its kernels, the optimiser makes its state), then one capture into static input
buffers; each later step copies its batch into them and replays. The warm-up steps and the
captured batch are real training steps, so a graphed run sees every batch exactly once, as an
eager run does. What a graph cannot hold stays outside it: the gather and augmentation make
the batch before it is copied in, and the lr schedule runs on the host between epochs (the
graph reads the lr from a device tensor that follows the optimiser's lr). The short last
batch of an epoch has another shape: it trains eagerly.

If capture fails for any reason the run trains eagerly from there on and says why, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

Out3 = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Forward = Callable[[torch.Tensor, torch.Tensor], Out3]
"""(x, y) → (objective to minimise, reported loss, logits): the part of a step that differs
between the single-run and the grouped loop."""
Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""(x, y) → (reported loss, detached; logits): one optimiser step on a batch."""

WARMUP_STEPS = 3  # eager steps before the capture (the recipe's number)


def available(device: torch.device) -> bool:
    """CUDA graphs exist on CUDA only (a seam for tests of the fallback on a CPU)."""
    return device.type == "cuda"


def wanted(device: torch.device, enabled: bool, bounds: list[tuple[int, int]],
           batch_size: int) -> bool:
    """Whether a run graphs its step: asked for, on CUDA, and with enough full batches in its
    first epoch that the capture happens there (so RunStarted.cuda_graph is not a promise
    that a tiny run never keeps)."""
    full = sum(hi - lo == batch_size for lo, hi in bounds)
    return enabled and available(device) and full > WARMUP_STEPS


def eager_step(forward: Forward, opt: torch.optim.Optimizer) -> Step:
    """The plain step: exactly the ops the loop always ran, in the same order."""

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        objective, loss, logits = forward(x, y)
        opt.zero_grad(set_to_none=True)
        objective.backward()
        opt.step()
        return loss.detach(), logits

    return step


class GraphedStep:
    """A step that warms up eagerly, then captures itself and replays (see the module doc).

    `__call__` returns the graph's static loss and logits: read them before the next call
    (the loop adds them to its sums at once), since the next replay overwrites them.
    `on_fallback(reason)` is called once if the capture fails; every later step is eager.
    """

    def __init__(self, forward: Forward, opt: torch.optim.Optimizer,
                 on_fallback: Callable[[str], None]) -> None:
        self.forward, self.opt, self.on_fallback = forward, opt, on_fallback
        self.eager = eager_step(forward, opt)
        self.warmed = 0  # full-size eager steps run so far
        self.shape: torch.Size | None = None  # the full batch's shape (of the first batch)
        self.failed = False
        self.stream: torch.cuda.Stream | None = None  # the warm-up's side stream
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_x = self.static_y = self.loss = self.logits = torch.empty(0)
        # One lr tensor per param group: the graph reads these; the host fills them.
        self.lrs: list[torch.Tensor] = []
        self.lr_values: list[float] = []

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graph is not None:
            if x.shape != self.static_x.shape or y.shape != self.static_y.shape:
                return self.eager(x, y)  # the short last batch
            self.follow_lr()
            self.static_x.copy_(x)
            self.static_y.copy_(y)
            self.graph.replay()
            return self.loss, self.logits
        if self.shape is None:
            self.shape = x.shape
        if self.failed or x.shape != self.shape:
            return self.eager(x, y)
        if self.warmed < WARMUP_STEPS:
            self.warmed += 1
            with self.side_stream(x.device):
                return self.eager(x, y)
        try:
            graph = self.capture(x, y)
        except Exception as exc:  # whatever the reason: train on, eagerly
            self.graph, self.failed = None, True
            self.static_x = self.static_y = self.loss = self.logits = torch.empty(0)
            self.restore_lr()
            if x.is_cuda:
                torch.cuda.synchronize(x.device)  # nothing of the attempt is still queued
            self.on_fallback(f"{type(exc).__name__}: {exc}".strip().splitlines()[0])
            return self.eager(x, y)
        graph.replay()  # the captured batch's own step (a capture records, it runs nothing)
        return self.loss, self.logits

    def capture(self, x: torch.Tensor, y: torch.Tensor) -> torch.cuda.CUDAGraph:
        """Record one step on static copies of (x, y); sets graph, loss and logits."""
        self.static_x, self.static_y = x.clone(), y.clone()  # clone keeps channels_last
        groups = self.opt.param_groups
        self.lr_values = [float(g["lr"]) for g in groups]
        self.lrs = [torch.tensor(v, device=x.device) for v in self.lr_values]
        graph = torch.cuda.CUDAGraph()
        self.opt.zero_grad(set_to_none=True)  # backward in the graph allocates static grads
        for g, lr in zip(groups, self.lrs, strict=True):
            g["lr"] = lr  # the graph reads the lr from this tensor, not a baked-in float
        try:
            with torch.cuda.graph(graph):
                objective, loss, logits = self.forward(self.static_x, self.static_y)
                objective.backward()
                self.opt.step()
        finally:
            self.restore_lr()  # the schedule and the eager steps keep seeing floats
        self.graph, self.loss, self.logits = graph, loss.detach(), logits.detach()
        return graph

    @contextlib.contextmanager
    def side_stream(self, device: torch.device) -> Iterator[None]:
        """The recipe's warm-up stream on CUDA (the capture then finds the default stream
        idle and the lazy initialisations done); nothing elsewhere."""
        if device.type != "cuda":
            yield
            return
        main = torch.cuda.current_stream(device)
        self.stream = self.stream or torch.cuda.Stream(device)
        self.stream.wait_stream(main)
        with torch.cuda.stream(self.stream):
            yield
        main.wait_stream(self.stream)

    def restore_lr(self) -> None:
        for g, value in zip(self.opt.param_groups, self.lr_values, strict=False):
            g["lr"] = value

    def follow_lr(self) -> None:
        """Copy an lr the schedule changed into the graph's tensor (no re-capture needed)."""
        for i, g in enumerate(self.opt.param_groups):
            value = float(g["lr"])
            if value != self.lr_values[i]:
                self.lr_values[i] = value
                self.lrs[i].fill_(value)


def make_step(forward: Forward, opt: torch.optim.Optimizer, graphed: bool,
              on_fallback: Callable[[str], None]) -> Step:
    """The graphed step when `graphed` (see `wanted`), else the eager one."""
    return GraphedStep(forward, opt, on_fallback) if graphed else eager_step(forward, opt)
