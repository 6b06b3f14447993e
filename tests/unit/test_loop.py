"""The training loop: events, stop, determinism, paired batch order, learnability, callbacks."""

from __future__ import annotations

import itertools
import math
import time

import pytest
import torch
from helpers import tiny

from trainer.engine import data, loop
from trainer.events import (
    EpochEnd,
    Preparing,
    Progress,
    RunFinished,
    RunRequest,
    RunStarted,
    RunStopped,
)

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def small_raw():
    """A small synthetic set: most tests only need a few hundred images."""
    return data.make_synthetic(n_train=600, n_test=200)


def run(cfg, raw, should_stop=lambda: False, stamps=None, stages=None):
    """The run's events; its Preparing statuses go to `stages` (they come before training)."""
    events = []

    def emit(event):
        if isinstance(event, Preparing):
            assert not any(isinstance(e, Progress) for e in events)
            if stages is not None:
                stages.append(event.stage)
            return
        events.append(event)
        if stamps is not None:
            stamps.append(time.perf_counter())

    loop.train(RunRequest(cfg.to_dict(), preset="p", variant="v", repeat=1, group="g"),
               data.DeviceData(raw, CPU), CPU, emit, should_stop)
    return events


def epochs_of(events):
    return [e for e in events if isinstance(e, EpochEnd)]


def scripted_val_losses(monkeypatch, losses):
    """Replace validation results by `losses` (one per epoch); record the weights at each
    evaluate() call so tests can see which weights the final test used."""
    real, calls = loop.evaluate, []

    def fake(model, x, y, *args):
        calls.append({k: v.clone() for k, v in model.state_dict().items()})
        result = real(model, x, y, *args)
        i = len(calls) - 1
        return (losses[i], result[1]) if i < len(losses) else result

    monkeypatch.setattr(loop, "evaluate", fake)
    return calls


def test_event_sequence_and_fields(small_raw):
    stamps: list[float] = []
    stages: list[str] = []
    events = run(tiny(train_subset=512, epochs=2), small_raw, stamps=stamps, stages=stages)
    assert stages == ["building the model", "warming up"]  # no wait without a status
    started, finished = events[0], events[-1]
    assert isinstance(started, RunStarted) and isinstance(finished, RunFinished)
    assert (started.preset, started.variant, started.repeat, started.group) == ("p", "v", 1, "g")
    assert started.device == "cpu" and "threads" in started.device_name
    assert (started.train_size, started.val_size, started.test_size) == (435, 77, 200)
    assert started.steps_per_epoch == 7 and started.params > 0
    assert "synthetic" in started.dataset_note
    assert [e.epoch for e in epochs_of(events)] == [1, 2]
    assert finished.epochs_done == 2 and 1 <= finished.best_epoch <= 2
    assert 0 <= finished.test_acc <= 1 and math.isfinite(finished.test_loss)
    assert finished.images_per_s > 0 and finished.train_seconds > 0
    e1 = epochs_of(events)[0]
    assert 2.0 < e1.train_loss < 2.6  # untrained cross-entropy starts near ln 10
    progress_times = [t for e, t in zip(events, stamps, strict=True) if isinstance(e, Progress)]
    gaps = [b - a for a, b in itertools.pairwise(progress_times)]
    assert all(g >= loop.PROGRESS_EVERY_S * 0.9 for g in gaps)  # throttled to ≤ 10/s


def test_same_seed_same_numbers_on_cpu(small_raw):
    cfg = tiny(train_subset=256, epochs=2, augment="flip_crop")
    a, b = run(cfg, small_raw), run(cfg, small_raw)
    assert [(e.train_loss, e.val_loss, e.val_acc) for e in epochs_of(a)] == \
           [(e.train_loss, e.val_loss, e.val_acc) for e in epochs_of(b)]
    assert a[-1].test_loss == b[-1].test_loss
    c = run(cfg.replace(seed=1), small_raw)
    assert epochs_of(c)[0].train_loss != epochs_of(a)[0].train_loss


def test_epoch_order_depends_only_on_seed_and_epoch():
    o = loop.epoch_order(100, seed=3, epoch=1, shuffle=True)
    assert torch.equal(o, loop.epoch_order(100, 3, 1, True))
    assert sorted(o.tolist()) == list(range(100))
    assert not torch.equal(o, loop.epoch_order(100, 3, 2, True))
    assert not torch.equal(o, loop.epoch_order(100, 4, 1, True))
    assert torch.equal(loop.epoch_order(100, 3, 2, False), torch.arange(100))


def test_variants_of_a_repeat_see_the_same_batches(small_raw, monkeypatch):
    """Paired seeding: BN on/off, GAP, other lr... all visit the data in the same order."""
    seen: list[list[list[int]]] = []
    real = loop.epoch_order

    def record(*args, **kwargs):
        order = real(*args, **kwargs)
        seen[-1].append(order.tolist())
        return order

    monkeypatch.setattr(loop, "epoch_order", record)
    for changes in ({}, {"batch_norm": True}, {"head": "gap", "lr": 0.01}):
        seen.append([])
        run(tiny(train_subset=256, seed=5, **changes), small_raw)
    assert seen[0] == seen[1] == seen[2] and seen[0][0] != seen[0][1]


def test_learns_synthetic_well_above_chance():
    raw = data.make_synthetic(n_train=3000, n_test=500)  # same distribution, less to make
    cfg = tiny(train_subset=3000, epochs=4, batch_norm=True, dropout=False, lr=0.003,
               batch_size=32, widths=(8, 16, 32), downsample="stride2")
    finished = run(cfg, raw)[-1]
    assert finished.test_acc > 0.40  # chance is 0.10; seeds 0–2 give 0.53–0.59


def test_stop_is_honoured_within_one_batch(small_raw):
    calls = {"n": 0}

    def stop_on_third_check():
        calls["n"] += 1
        return calls["n"] >= 3

    events = run(tiny(train_subset=512), small_raw, should_stop=stop_on_third_check)
    assert isinstance(events[-1], RunStopped) and events[-1].epochs_done == 0
    assert calls["n"] == 3 and not epochs_of(events)

    state = {"stop": False}

    def emit_stop_after_epoch_1():
        return state["stop"]

    events = []

    def emit(event):
        events.append(event)
        state["stop"] = state["stop"] or isinstance(event, EpochEnd)

    loop.train(RunRequest(tiny(train_subset=256, epochs=5).to_dict()),
               data.DeviceData(small_raw, CPU), CPU, emit,
               emit_stop_after_epoch_1)
    assert isinstance(events[-1], RunStopped) and events[-1].epochs_done == 1
    assert not any(isinstance(e, RunFinished) for e in events)


@pytest.mark.parametrize("keep_best", [True, False])
def test_keep_best_tests_with_best_val_loss_weights(small_raw, monkeypatch, keep_best):
    calls = scripted_val_losses(monkeypatch, [1.0, 0.5, 0.9])
    events = run(tiny(train_subset=256, epochs=3, keep_best=keep_best), small_raw)
    finished = events[-1]
    assert [e.is_best for e in epochs_of(events)] == [True, True, False]
    assert finished.best_epoch == 2 and finished.best_val_loss == 0.5
    assert finished.best_val_acc == epochs_of(events)[1].val_acc
    test_weights, epoch2, epoch3 = calls[3], calls[1], calls[2]
    expected = epoch2 if keep_best else epoch3
    assert all(torch.equal(test_weights[k], expected[k]) for k in expected)
    assert not all(torch.equal(epoch2[k], epoch3[k]) for k in epoch2)


def test_plateau_drops_lr_and_marks_it(small_raw, monkeypatch):
    scripted_val_losses(monkeypatch, [1.0] * 8)
    epochs = epochs_of(run(tiny(train_subset=128, epochs=8, lr_schedule="plateau"), small_raw))
    # Keras ReduceLROnPlateau(patience=5): a best epoch, then the 5th epoch without gain drops.
    assert [e.lr_dropped for e in epochs] == [False] * 5 + [True, False, False]
    assert epochs[5].lr == 0.001 and epochs[6].lr == pytest.approx(0.001 * 0.2)


def test_step_and_cosine_schedules(small_raw):
    step = epochs_of(run(tiny(train_subset=128, epochs=4, lr_schedule="step"), small_raw))
    assert [e.lr for e in step] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5])
    assert [e.lr_dropped for e in step] == [False, True, True, False]
    cos = epochs_of(run(tiny(train_subset=128, epochs=3, lr_schedule="cosine"), small_raw))
    assert cos[0].lr > cos[1].lr > cos[2].lr > 0 and not any(e.lr_dropped for e in cos)


def test_early_stopping_stops(small_raw, monkeypatch):
    scripted_val_losses(monkeypatch, [1.0, 1.1, 1.2, 1.3, 1.4, 1.5])
    events = run(tiny(train_subset=128, epochs=6, early_stop_patience=2), small_raw)
    assert len(epochs_of(events)) == 3
    assert events[-1].early_stopped and events[-1].epochs_done == 3
    assert events[-1].best_epoch == 1


def test_mse_loss_trains(small_raw):
    events = run(tiny(train_subset=256, epochs=1, loss="mse"), small_raw)
    e = epochs_of(events)[0]
    assert 0 < e.train_loss < 0.1 and 0 < e.val_loss < 0.1  # softmax vs one-hot: ≈ 0.09 at start


def test_l2_l1_penalty_is_keras_style_and_changes_training(small_raw):
    w = [torch.tensor([1.0, -2.0]), torch.tensor([[3.0]])]
    assert float(loop.penalty(w, l2=0.1, l1=0.0)) == pytest.approx(0.1 * 14)
    assert float(loop.penalty(w, l2=0.0, l1=0.01)) == pytest.approx(0.01 * 6)
    assert loop.penalty(w, 0.0, 0.0) == 0.0
    base = epochs_of(run(tiny(train_subset=256, epochs=2), small_raw))
    for changes in ({"l2": 0.01}, {"l1": 0.001}):
        other = epochs_of(run(tiny(train_subset=256, epochs=2, **changes), small_raw))
        assert other[1].train_loss != base[1].train_loss


@pytest.mark.parametrize("changes", [
    {"downsample": "stride2"}, {"head": "gap"}, {"batch_norm": True},
    {"init": "he_normal"}, {"init": "glorot_normal"}, {"init": "he_uniform"},
    {"init": "torch_default"}, {"init": "normal_0.01"},
    {"activation": "leaky_relu"}, {"activation": "sigmoid"}, {"activation": "tanh"},
    {"optimizer": "sgd"}, {"optimizer": "sgd_momentum"}, {"kernel_size": 5},
    {"input_norm": "standardize"}, {"augment": "flip_crop"}, {"shuffle": False},
    {"dropout": False}, {"batch_size": 100},
    {"batch_size": 108},  # 109 train images: the lone last one is dropped
])
def test_options_build_and_train(small_raw, changes):
    events = run(tiny(train_subset=128, epochs=1, **changes), small_raw)
    assert isinstance(events[-1], RunFinished)
    epoch = epochs_of(events)[0]
    assert math.isfinite(epoch.train_loss) and 0 <= epoch.train_acc <= 1


def test_flip_crop_is_a_batched_flip_and_shift():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.int64).view(2, 3, 32, 32).to(torch.uint8)
    centre = torch.full((2, 2), loop.CROP_PAD)
    no_flip, flip = torch.zeros(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool)
    assert torch.equal(loop.flip_crop(x, no_flip, centre), x)
    assert torch.equal(loop.flip_crop(x, flip, centre), x.flip(3))
    shifted = loop.flip_crop(x, no_flip, torch.tensor([[0, 0], [8, 8]]))
    assert torch.equal(shifted[0, :, 4:, 4:], x[0, :, :28, :28])  # moved down-right, zero pad
    assert shifted[0, :, :4].sum() == 0
    assert torch.equal(shifted[1, :, :28, :28], x[1, :, 4:, 4:])


def test_batch_bounds_keep_partial_batch_but_not_a_lone_image():
    assert loop.batch_bounds(130, 64) == [(0, 64), (64, 128), (128, 130)]
    assert loop.batch_bounds(129, 64) == [(0, 64), (64, 128)]
    assert loop.batch_bounds(5, 1) == [(i, i + 1) for i in range(5)]
