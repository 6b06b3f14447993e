"""Looking inside the network: per-layer statistics each epoch, and where the model is wrong.

Layer statistics are measured once per epoch, on a probe batch fixed for the run (the first
`probe_size` validation images), never during the training steps: forward hooks are registered
for the probe pass only and removed after it, so the ~660 steps of an epoch run unhooked.

The probe pass runs in **eval mode**: dropout is off and BatchNorm uses its running
statistics, so (1) the numbers describe the network as it predicts, the same each time for
the same weights, and (2) the pass draws no random numbers and updates no BN statistics, so a
run trains bit-for-bit the same with probes on or off (CPU). Gradients come from
`torch.autograd.grad` of the probe batch's mean data loss (no penalty term): the parameters'
`.grad` and the optimiser never see them. The pass is fp32 even on CUDA (no autocast): it is
one batch, and the statistics should not carry bf16 rounding.

At the end of a run the test pass (already done for the test accuracy) also collects each
image's predicted class and its probability: `Predictions` turns them into the confusion
matrix, the confidence histograms of right and wrong answers, and the most confident
mistakes, as indices into the test set (never pixels: the UI finds them in the dataset's
test-images file, named by `test_images`). The same weights' first conv layer is kept too,
as numbers (`first_filters`), for the UI to draw as images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from trainer.events import (
    CONFIDENCE_BINS,
    MAX_FILTERS,
    MAX_MISTAKES,
    Filters,
    LayerStats,
    Mistake,
    TestDiagnosis,
)

PROBE_SIZE = 256  # images in the probe batch at most: enough for stable means
PROBE_SHARE = 0.015  # … and at most this share of an epoch's training images (64 at least)


def probe_size(n_train: int) -> int:
    """The probe batch for a training set of `n_train` images: one forward + backward of it
    costs about PROBE_SIZE / n_train of an epoch, so small sets (the synthetic 8,500) probe
    fewer images and the probes stay near 1.5% of training time (CIFAR-10: 256, 0.6%)."""
    return max(64, min(PROBE_SIZE, int(n_train * PROBE_SHARE)))
SATURATED = 0.99  # sigmoid above (or 1 − it below), |tanh| above: the flat ends
DIGITS = 4  # significant digits kept: the numbers are read as heat strips, and records stay small
FILTER_DIGITS = 3  # … of the first layer's weights: they are looked at as images

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, labels) → mean loss


@dataclass
class Unit:
    """A conv/dense layer and the module whose output is "its activation"."""

    name: str
    layer: nn.Conv2d | nn.Linear
    output: nn.Module  # the activation after it (BN in between), else the layer itself
    flat: str | None  # "relu" | "sigmoid" | "tanh": how its flat region is defined


def layer_units(model: nn.Module) -> list[Unit]:
    """The conv and dense layers of a sequential model in order, each paired with the
    activation that follows it (BN, pooling and dropout in between are skipped)."""
    units: list[Unit] = []
    count = {"conv": 0, "dense": 0}
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            kind = "conv" if isinstance(m, nn.Conv2d) else "dense"
            count[kind] += 1
            units.append(Unit(f"{kind}{count[kind]}", m, m, None))
        elif units and units[-1].output is units[-1].layer and isinstance(
                m, nn.ReLU | nn.LeakyReLU | nn.Sigmoid | nn.Tanh):
            flat = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}.get(type(m))
            units[-1].output, units[-1].flat = m, flat
    return units


def off_fraction(out: torch.Tensor, flat: str | None) -> torch.Tensor:
    """Fraction of outputs in the flat region (dead ReLU, saturated sigmoid/tanh); NaN if none."""
    if flat == "relu":
        return (out == 0).float().mean()
    if flat == "sigmoid":
        return ((out < 1 - SATURATED) | (out > SATURATED)).float().mean()
    if flat == "tanh":
        return (out.abs() > SATURATED).float().mean()
    return torch.full((), float("nan"), device=out.device)


def _round(value: float) -> float:
    return float(f"{value:.{DIGITS}g}")


class Probe:
    """The fixed probe batch of one run and the measurement taken on it each epoch."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Loss) -> None:
        self.model, self.x, self.y, self.loss = model, x, y, loss
        self.units = layer_units(model)

    def measure(self) -> tuple[LayerStats, ...]:
        """One eval-mode forward + backward of the probe batch; one host sync."""
        model, units = self.model, self.units
        stats: list[torch.Tensor] = [torch.empty(0)] * len(units)

        def hook(i: int, flat: str | None) -> Callable[..., None]:
            def record(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
                out = output.detach().float()
                stats[i] = torch.stack([out.mean(), out.std(correction=0),
                                        off_fraction(out, flat)])
            return record

        was_training = model.training
        model.eval()
        handles = [u.output.register_forward_hook(hook(i, u.flat)) for i, u in enumerate(units)]
        try:
            with torch.enable_grad():
                loss = self.loss(model(self.x), self.y)
                grads = torch.autograd.grad(loss, [u.layer.weight for u in units])
        finally:
            for h in handles:
                h.remove()
            model.train(was_training)
        norms = torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])
        table = torch.cat([torch.stack(stats), norms[:, None]], 1).tolist()
        return tuple(
            LayerStats(name=u.name, act_mean=_round(mean), act_std=_round(std),
                       off=None if off != off else _round(off), grad_norm=_round(grad))
            for u, (mean, std, off, grad) in zip(units, table, strict=True))


class Predictions:
    """Collects the predicted class and its probability batch by batch (evaluate's `keep`)."""

    def __init__(self) -> None:
        self.conf: list[torch.Tensor] = []
        self.pred: list[torch.Tensor] = []

    def add(self, logits: torch.Tensor) -> None:
        conf, pred = logits.float().softmax(1).max(1)
        self.conf.append(conf)
        self.pred.append(pred)

    def diagnose(self, y: torch.Tensor, classes: Sequence[str], n_classes: int = 10,
                 test_images: str = "", filters: Filters | None = None) -> TestDiagnosis:
        """The test set's confusion matrix, confidence histograms and top mistakes."""
        conf = torch.cat(self.conf) if self.conf else torch.empty(0)
        pred = torch.cat(self.pred) if self.pred else torch.empty(0, dtype=torch.long)
        return diagnose(y.to(pred.device), pred, conf, classes, n_classes, test_images, filters)


def first_filters(model: nn.Module) -> Filters | None:
    """The first conv layer's kernels (at most MAX_FILTERS), rounded to FILTER_DIGITS
    significant digits; None without a conv layer or with non-finite weights."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        return None
    w = conv.weight.detach()[:MAX_FILTERS].float().cpu()
    if w.dim() != 4 or not bool(torch.isfinite(w).all()):
        return None
    n, c, kh, kw = (int(d) for d in w.shape)
    return Filters(shape=(n, c, kh, kw),
                   values=tuple(float(f"{v:.{FILTER_DIGITS}g}") for v in w.reshape(-1).tolist()))


def diagnose(y: torch.Tensor, pred: torch.Tensor, conf: torch.Tensor, classes: Sequence[str],
             n_classes: int = 10, test_images: str = "", filters: Filters | None = None
             ) -> TestDiagnosis:
    """Confusion [true][predicted], histograms of the chosen probability (right vs wrong, over
    CONFIDENCE_BINS equal bins of [0, 1]) and the MAX_MISTAKES most confident mistakes (ties:
    lower index first), by index into `y`: the test set in its own order, whose images the
    file named by `test_images` holds. Class names fall back to numbers when the dataset has
    none."""
    k = n_classes
    y, pred = y.long(), pred.long()
    matrix = torch.bincount(y * k + pred, minlength=k * k)[:k * k].view(k, k)
    right = pred == y
    bins = (conf * CONFIDENCE_BINS).long().clamp(0, CONFIDENCE_BINS - 1)
    hist_right = torch.bincount(bins[right], minlength=CONFIDENCE_BINS)
    hist_wrong = torch.bincount(bins[~right], minlength=CONFIDENCE_BINS)
    wrong = (~right).nonzero().squeeze(1)
    order = torch.argsort(-conf[wrong], stable=True)[:MAX_MISTAKES]
    picked = wrong[order]
    rows = zip(picked.tolist(), y[picked].tolist(), pred[picked].tolist(),
               conf[picked].tolist(), strict=True)
    names = tuple(classes) if len(classes) == k else tuple(str(i) for i in range(k))
    return TestDiagnosis(
        classes=names,
        confusion=tuple(tuple(row) for row in matrix.tolist()),
        confident_right=tuple(hist_right.tolist()),
        confident_wrong=tuple(hist_wrong.tolist()),
        mistakes=tuple(Mistake(index=i, true=t, predicted=p, confidence=_round(c))
                       for i, t, p, c in rows),
        test_images=test_images,
        filters=filters,
    )
