"""The CUDA path: bf16 autocast, channels_last, fused Adam, device-resident data, cuda:N.

Skipped without CUDA (CI has none); `benchmarks/gpu_check.sh` runs them on a GPU machine.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny

from trainer.engine import data, loop
from trainer.events import EpochEnd, Preparing, RunFinished, RunRequest, RunStarted

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def train(cfg, device):
    events = []
    source = data.DeviceData(data.make_synthetic(n_train=1000, n_test=200), device)
    loop.train(RunRequest(cfg.to_dict()), source, device, events.append, lambda: False)
    return [e for e in events if not isinstance(e, Preparing)], source


def test_a_run_trains_on_cuda_with_finite_results():
    device = torch.device("cuda:0")
    events, source = train(tiny(train_subset=1000, epochs=2, l2=1e-4, l1=1e-5), device)
    started, finished = events[0], events[-1]
    assert isinstance(started, RunStarted) and started.device == "cuda:0"
    assert isinstance(finished, RunFinished) and math.isfinite(finished.test_loss)
    assert all(math.isfinite(e.train_loss) for e in events if isinstance(e, EpochEnd))
    assert source.train_x.is_cuda  # the data went to the device once, for every run


def test_cuda_matches_cpu_at_the_start_of_training():
    """Same seed, same first batches: the first epoch's loss agrees within bf16 noise."""
    cfg = tiny(train_subset=1000, epochs=1)
    gpu, _ = train(cfg, torch.device("cuda"))
    cpu, _ = train(cfg, torch.device("cpu"))
    e_gpu = next(e for e in gpu if isinstance(e, EpochEnd))
    e_cpu = next(e for e in cpu if isinstance(e, EpochEnd))
    assert e_gpu.train_loss == pytest.approx(e_cpu.train_loss, rel=0.05)


def test_repeats_trained_together_on_cuda_match_their_solo_runs():
    """Three seeds as one wide model (grouped convs, bf16): each run's first-epoch loss
    agrees with the same seed trained alone within bf16 noise, and each has its own record."""
    from trainer.engine import grouped

    device = torch.device("cuda")
    cfgs = [tiny(train_subset=1000, epochs=1, seed=s) for s in (0, 1, 2)]
    source = data.DeviceData(data.make_synthetic(n_train=1000, n_test=200), device)
    reqs = [RunRequest(c.to_dict()) for c in cfgs]
    events: dict[str, list] = {r.run_id: [] for r in reqs}
    grouped.train_group(reqs, source, device, [events[r.run_id].append for r in reqs],
                        [lambda: False] * 3)
    for cfg, req in zip(cfgs, reqs, strict=True):
        mine = events[req.run_id]
        started = next(e for e in mine if isinstance(e, RunStarted))
        assert started.trained_together == 3 and started.device.startswith("cuda")
        assert isinstance(mine[-1], RunFinished) and math.isfinite(mine[-1].test_loss)
        solo, _ = train(cfg, device)
        e_group = next(e for e in mine if isinstance(e, EpochEnd))
        e_solo = next(e for e in solo if isinstance(e, EpochEnd))
        assert e_group.train_loss == pytest.approx(e_solo.train_loss, rel=0.05)
