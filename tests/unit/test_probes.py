"""Probes: layer statistics and the test diagnosis, checked against hand-computed numbers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from helpers import tiny
from torch import nn

from trainer.engine import data, loop, probes
from trainer.engine.model import build_model
from trainer.events import EpochEnd, RunFinished, RunRequest
from trainer.store.apply import apply_event

CPU = torch.device("cpu")


def ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return loop.per_sample_loss(logits, y, "cross_entropy").mean()


def one_conv(weights: list[float], act: nn.Module) -> nn.Sequential:
    """A 1×1 conv from 1 to len(weights) channels, no bias, then `act`, flattened to logits."""
    conv = nn.Conv2d(1, len(weights), 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights).view(-1, 1, 1, 1))
    return nn.Sequential(conv, act, nn.Flatten())


def test_relu_layer_by_hand():
    # x = 2, w = (0.5, -1): conv (1, -2), ReLU (1, 0) = the logits; label 0.
    model = one_conv([0.5, -1.0], nn.ReLU())
    probe = probes.Probe(model, torch.full((1, 1, 1, 1), 2.0), torch.tensor([0]), ce)
    (conv,) = probe.measure()
    assert conv.name == "conv1"
    assert conv.act_mean == pytest.approx(0.5) and conv.act_std == pytest.approx(0.5)
    assert conv.off == pytest.approx(0.5)  # one of two units is dead
    # dL/dz0 = p0 - 1 with p0 = e/(e+1); dz0/dw0 = x = 2; the dead unit passes no gradient.
    assert conv.grad_norm == pytest.approx(2 / (math.e + 1), rel=1e-3)


def test_saturation_of_sigmoid_and_tanh():
    x = torch.full((1, 1, 1, 1), 1.0)
    sig = probes.Probe(one_conv([10.0, 0.0, -10.0, 1.0], nn.Sigmoid()), x, torch.tensor([0]), ce)
    assert sig.measure()[0].off == pytest.approx(0.5)  # σ(10) > .99 and σ(-10) < .01
    tanh = probes.Probe(one_conv([3.0, 0.5, -3.0, 0.1], nn.Tanh()), x, torch.tensor([0]), ce)
    assert tanh.measure()[0].off == pytest.approx(0.5)  # |tanh(±3)| = .995


def test_layers_of_the_course_cnn_and_no_side_effects():
    cfg = tiny(batch_norm=True)
    model = build_model(cfg)
    names = [u.name for u in probes.layer_units(model)]
    assert names == ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "dense1", "dense2"]
    units = probes.layer_units(model)
    assert all(u.flat == "relu" for u in units[:-1]) and units[-1].flat is None
    x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 10, (16,))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = probes.Probe(model, x, y, ce).measure()
    assert model.training  # mode restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN stats too
    assert all(p.grad is None for p in model.parameters())  # the optimiser sees nothing
    assert stats[-1].off is None and all(0 <= s.off <= 1 for s in stats[:-1] if s.off is not None)
    assert not model._forward_hooks and not any(m._forward_hooks for m in model.modules())


def test_diagnosis_by_hand():
    y = torch.tensor([0, 0, 1, 1, 2])
    pred = torch.tensor([0, 1, 1, 1, 0])
    conf = torch.tensor([0.95, 0.55, 0.35, 1.0, 0.9])
    d = probes.diagnose(y, pred, conf, ["a", "b", "c"], n_classes=3)
    assert d.confusion == ((1, 1, 0), (0, 2, 0), (1, 0, 0))
    assert d.class_acc == (0.5, 1.0, 0.0)
    assert d.confident_right == (0, 0, 0, 1, 0, 0, 0, 0, 0, 2)  # 0.35, 0.95, 1.0 (last bin)
    assert d.confident_wrong == (0, 0, 0, 0, 0, 1, 0, 0, 0, 1)
    assert [(m.index, m.true, m.predicted) for m in d.mistakes] == [(4, 2, 0), (1, 0, 1)]
    assert probes.diagnose(y, pred, conf, [], n_classes=3).classes == ("0", "1", "2")


@pytest.fixture(scope="module")
def small_raw():
    return data.make_synthetic(n_train=600, n_test=200)


def train(raw, probes_on: bool, **changes):
    events: list = []
    cfg = tiny(epochs=2, **changes)
    loop.train(RunRequest(cfg.to_dict()), data.DeviceData(raw, CPU), CPU, events.append,
               lambda: False, probes=probes_on)
    return events


def test_probes_in_events_and_training_unchanged(small_raw):
    on, off = train(small_raw, True), train(small_raw, False)
    epochs_on = [e for e in on if isinstance(e, EpochEnd)]
    epochs_off = [e for e in off if isinstance(e, EpochEnd)]
    assert [len(e.layers) for e in epochs_on] == [8, 8] and all(not e.layers for e in epochs_off)
    # Eval mode, no RNG, no .grad: the same run bit for bit with or without probes.
    assert [(e.train_loss, e.val_loss) for e in epochs_on] == \
        [(e.train_loss, e.val_loss) for e in epochs_off]
    end_on, end_off = on[-1], off[-1]
    assert isinstance(end_on, RunFinished) and isinstance(end_off, RunFinished)
    assert end_off.diagnosis is None and end_on.test_acc == end_off.test_acc
    d = end_on.diagnosis
    assert d is not None and d.classes == tuple(data.SYNTHETIC_CLASSES)
    assert sum(map(sum, d.confusion)) == 200 == sum(d.confident_right) + sum(d.confident_wrong)
    assert sum(d.confusion[i][i] for i in range(10)) / 200 == pytest.approx(end_on.test_acc)
    assert len(d.mistakes) == min(32, sum(d.confident_wrong))
    assert all(d.mistakes[i].confidence >= d.mistakes[i + 1].confidence
               for i in range(len(d.mistakes) - 1))


def test_first_filters_by_hand_bounded_and_rounded():
    conv = nn.Conv2d(3, 70, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(70 * 27, dtype=torch.float32).view(70, 3, 3, 3) / 7)
    f = probes.first_filters(nn.Sequential(conv, nn.ReLU(), nn.Conv2d(70, 2, 1)))
    assert f is not None and f.shape == (64, 3, 3, 3) and len(f.values) == 64 * 27
    assert f.values[:3] == (0.0, 0.143, 0.286) and f.values[-1] == round(1727 / 7)  # 3 digits
    assert probes.first_filters(nn.Sequential(nn.Linear(2, 2))) is None
    with torch.no_grad():
        conv.weight[5, 1, 1, 1] = float("nan")
    assert probes.first_filters(nn.Sequential(conv)) is None


def test_a_run_records_its_test_images_key_and_filters_and_the_images_are_its_own(small_raw):
    """The worker side of the gallery: the dataset's test images go to a file beside its cache
    (once), the record names it by key and keeps the first layer's filters, and the image the
    gallery shows for a mistake is the test image at that mistake's index."""
    from tui.state.gallery import mistakes

    notes: list[str] = []
    raw = data.with_test_images(dataclasses.replace(small_raw), "synthetic-small", notes.append)
    path = data.paths.test_images_file("synthetic-small")
    assert path is not None and path.is_file() and notes == []
    stamp = path.stat().st_mtime_ns
    data.with_test_images(raw, "synthetic-small", notes.append)
    assert path.stat().st_mtime_ns == stamp  # written once per dataset

    record = None
    for event in train(raw, True):
        record = apply_event(record, event)
    assert record is not None and record.test_size == 200
    d = record.diagnosis
    assert d is not None and d.test_images == "synthetic-small"
    assert d.filters is not None and d.filters.shape == (8, 3, 3, 3)  # tiny(): widths 8, 16, 16
    assert all(v == float(f"{v:.3g}") for v in d.filters.values)
    shown = mistakes(record, 32)
    assert shown.why == "" and len(shown.shown) == len(d.mistakes) > 0
    for s in shown.shown:
        assert np.array_equal(s.pixels, raw.test_x[s.index].permute(1, 2, 0).numpy())
        assert s.true == raw.classes[int(raw.test_y[s.index])]


def test_the_probe_batch_stays_a_small_share_of_an_epoch(small_raw, monkeypatch):
    """256 images for CIFAR-10's 42,500 (0.6%), fewer for smaller sets (≈1.5%), 64 at least;
    the run probes exactly that many validation images."""
    assert probes.probe_size(42_500) == 256 and probes.probe_size(8_500) == 127
    assert probes.probe_size(500) == 64 and probes.probe_size(10**7) == 256
    sizes = []
    real = probes.Probe.__init__

    def spy(self, model, x, y, loss):
        sizes.append((len(x), len(y)))
        real(self, model, x, y, loss)

    monkeypatch.setattr(probes.Probe, "__init__", spy)
    train(small_raw, True)
    assert len(sizes) == 1 and sizes[0][0] == sizes[0][1] == 64
