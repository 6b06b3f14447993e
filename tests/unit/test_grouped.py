"""Repeats trained together (trainer.engine.grouped): each run of a group trains as if alone."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny

from trainer.engine import data, grouped, loop
from trainer.events import (
    EpochEnd,
    Preparing,
    RunFinished,
    RunRequest,
    RunStarted,
    RunStopped,
)
from trainer.store.apply import apply_event
from trainer.store.parse import parse_record

CPU = torch.device("cpu")
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def source():
    return data.DeviceData(data.make_synthetic(n_train=600, n_test=200), CPU)


def requests(cfgs):
    return [RunRequest(c.to_dict(), preset="p", variant="v", repeat=i, group="g")
            for i, c in enumerate(cfgs)]


def weights_at_test(monkeypatch, module, name, snapshot):
    """Record the weights each evaluate call sees; the last call is the test."""
    real, calls = getattr(module, name), []

    def spy(model, *args, **kwargs):
        calls.append(snapshot(model))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def alone(cfg, source, should_stop=lambda: False):
    events = []
    loop.train(requests([cfg])[0], source, CPU, events.append, should_stop)
    return [e for e in events if not isinstance(e, Preparing)]


def together(cfgs, source, stops=None, reqs=None):
    reqs = reqs or requests(cfgs)
    events: dict[str, list] = {r.run_id: [] for r in reqs}
    stops = stops or [lambda: False] * len(reqs)
    grouped.train_group(reqs, source, CPU, [events[r.run_id].append for r in reqs], stops)
    return [[e for e in events[r.run_id] if not isinstance(e, Preparing)] for r in reqs]


def epochs(events):
    return [e for e in events if isinstance(e, EpochEnd)]


def test_widen_keeps_each_runs_own_weights_and_outputs():
    cfgs = [tiny(seed=s, batch_norm=True, dropout=False) for s in SEEDS]
    solos = []
    for c in cfgs:
        torch.manual_seed(c.seed)
        solos.append(loop.build_model(c).eval())
    wide = grouped.widen(solos).eval()
    for r, solo in enumerate(solos):
        state = grouped.run_state(wide, len(solos), r)
        assert state.keys() == solo.state_dict().keys()
        assert all(torch.equal(state[k], v) for k, v in solo.state_dict().items())
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        out = wide(x.repeat(1, 3, 1, 1))
        for r, solo in enumerate(solos):
            torch.testing.assert_close(out[r], solo(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("changes", [
    {"optimizer": "sgd", "lr": 0.05},
    {"optimizer": "sgd_momentum", "lr": 0.02, "batch_norm": True, "augment": "flip_crop",
     "l2": 1e-3, "head": "gap"},
])
def test_a_group_of_three_matches_three_separate_runs_with_sgd(source, monkeypatch, changes):
    """Same weights to fp32 round-off. The model is smooth here (tanh, stride-2 convs): with
    ReLU or max-pool a round-off difference can flip a unit at zero or a near tie in a pool
    window, a discrete jump in one gradient entry that any other conv algorithm shows too."""
    cfgs = [tiny(seed=s, train_subset=256, epochs=2, dropout=False, keep_best=False,
                 activation="tanh", downsample="stride2", **changes) for s in SEEDS]
    solo_weights = weights_at_test(monkeypatch, loop, "evaluate",
                                   lambda m: {k: v.clone() for k, v in m.state_dict().items()})
    solo_events = [alone(c, source) for c in cfgs]
    solo_final = solo_weights[2::3]  # val, val, test per run: the test call sees the final weights
    wide_weights = weights_at_test(monkeypatch, grouped, "evaluate_group",
                                   lambda m: [grouped.run_state(m, 3, r) for r in range(3)])
    group_events = together(cfgs, source)
    for r in range(3):
        final = wide_weights[-1][r]
        for key, value in solo_final[r].items():
            torch.testing.assert_close(final[key], value, rtol=0, atol=1e-5, msg=key)
        a, b = solo_events[r][-1], group_events[r][-1]
        assert isinstance(b, RunFinished)
        assert b.test_loss == pytest.approx(a.test_loss, rel=1e-4)
        assert [e.train_loss for e in epochs(group_events[r])] == pytest.approx(
            [e.train_loss for e in epochs(solo_events[r])], rel=1e-4)
    assert epochs(group_events[0])[0].train_loss != epochs(group_events[1])[0].train_loss
    # The look-inside data is each run's own too: its layer statistics every epoch, and its
    # test diagnosis and first-layer filters at the end.
    for r in range(3):
        solo_run, group_run = solo_events[r], group_events[r]
        for a, b in zip(epochs(solo_run), epochs(group_run), strict=True):
            assert [s.name for s in b.layers] == [s.name for s in a.layers] and b.layers
            for sa, sb in zip(a.layers, b.layers, strict=True):
                assert (sb.act_mean, sb.act_std, sb.grad_norm) == pytest.approx(
                    (sa.act_mean, sa.act_std, sa.grad_norm), rel=1e-3, abs=1e-6)
        da, db = solo_run[-1].diagnosis, group_run[-1].diagnosis
        assert da is not None and db is not None and db.test_images == da.test_images
        assert db.confusion == da.confusion and db.classes == da.classes
        assert db.filters is not None and da.filters is not None
        assert db.filters.shape == da.filters.shape
        assert db.filters.values == pytest.approx(da.filters.values, rel=1e-2, abs=1e-4)
    assert group_events[0][-1].diagnosis.filters != group_events[1][-1].diagnosis.filters


def test_adam_group_matches_separate_runs_within_noise(source):
    cfgs = [tiny(seed=s, train_subset=256, epochs=2, dropout=False) for s in SEEDS]
    for solo, group in zip([alone(c, source) for c in cfgs], together(cfgs, source),
                           strict=True):
        assert [e.val_loss for e in epochs(group)] == pytest.approx(
            [e.val_loss for e in epochs(solo)], rel=1e-3)
        assert group[-1].test_acc == pytest.approx(solo[-1].test_acc, abs=0.02)


def test_each_run_has_its_own_complete_events_and_record(source):
    cfgs = [tiny(seed=s, train_subset=256, epochs=2) for s in SEEDS]
    reqs = requests(cfgs)
    per_run = together(cfgs, source, reqs=reqs)
    for req, events in zip(reqs, per_run, strict=True):
        assert {e.run_id for e in events} == {req.run_id}
        started, finished = events[0], events[-1]
        assert isinstance(started, RunStarted) and started.trained_together == 3
        assert started.config["seed"] == req.config["seed"]
        assert [e.epoch for e in epochs(events)] == [1, 2]
        assert isinstance(finished, RunFinished) and finished.epochs_done == 2
        record = None
        for e in events:
            record = apply_event(record, e)
        assert record is not None and record.env.trained_together == 3
        assert record.status.value == "finished"
        assert parse_record(record.to_json()).env.trained_together == 3


def test_early_stop_of_one_run_ends_only_its_record(source, monkeypatch):
    """Run 1's val loss never improves after epoch 1: it stops early at its own epoch 3 and
    is tested with its best weights, while runs 0 and 2 train all 4 epochs."""
    real = grouped.evaluate_group
    scripted = iter([[(1.0, .5), (1.0, .5), (1.0, .5)], [(0.9, .5), (1.1, .5), (0.9, .5)],
                     [(0.8, .5), (1.2, .5), (0.8, .5)], [(0.7, .5), (1.3, .5), (0.7, .5)]])

    def fake(*args, **kwargs):
        result = real(*args, **kwargs)
        return next(scripted, result)

    monkeypatch.setattr(grouped, "evaluate_group", fake)
    cfgs = [tiny(seed=s, train_subset=128, epochs=4, early_stop_patience=2) for s in SEEDS]
    runs = together(cfgs, source)
    assert [len(epochs(r)) for r in runs] == [4, 3, 4]
    assert runs[1][-1].early_stopped and runs[1][-1].best_epoch == 1
    assert not runs[0][-1].early_stopped and runs[0][-1].best_epoch == 4


def test_stopping_one_run_of_a_group_stops_only_that_run(source):
    cfgs = [tiny(seed=s, train_subset=256, epochs=2) for s in SEEDS]
    calls = {"n": 0}

    def stop_second():
        calls["n"] += 1
        return calls["n"] >= 3

    runs = together(cfgs, source, stops=[lambda: False, stop_second, lambda: False])
    assert isinstance(runs[1][-1], RunStopped) and runs[1][-1].epochs_done == 0
    assert isinstance(runs[0][-1], RunFinished) and isinstance(runs[2][-1], RunFinished)
    assert math.isfinite(runs[2][-1].test_loss)


def test_only_runs_that_differ_in_their_seed_are_grouped():
    base = requests([tiny(seed=s) for s in SEEDS])
    assert grouped.can_group(base)
    assert not grouped.can_group(base[:2] + requests([tiny(seed=5, batch_norm=True)]))
    assert not grouped.can_group(requests([tiny(seed=s, lr_schedule="plateau") for s in SEEDS]))
    with pytest.raises(ValueError):
        grouped.train_group(base[:1] + requests([tiny(head="gap")]), None, CPU, [print] * 2,
                            [lambda: False] * 2)
