"""The CUDA path: bf16 autocast, channels_last, fused Adam, device-resident data, cuda:N.

Skipped without CUDA (CI has none); `benchmarks/gpu_check.sh` runs them on a GPU machine.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import tiny

from trainer.engine import data, graphs, loop
from trainer.events import EpochEnd, Notice, Preparing, RunFinished, RunRequest, RunStarted

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def train(cfg, device, cuda_graphs=True):
    events = []
    source = data.DeviceData(data.make_synthetic(n_train=1000, n_test=200), device)
    loop.train(RunRequest(cfg.to_dict()), source, device, events.append, lambda: False,
               cuda_graphs=cuda_graphs)
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


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum"])
def test_graphed_and_eager_runs_give_the_same_curve(optimizer):
    """The graphed step is the eager step: per-epoch losses agree within bf16 noise, through
    a step schedule's lr drops (the graph reads the lr tensor) and the short last batches."""
    cfg = tiny(train_subset=1000, epochs=4, lr_schedule="step", optimizer=optimizer,
               l2=1e-4)
    device = torch.device("cuda")
    graphed, _ = train(cfg, device)
    eager, _ = train(cfg, device, cuda_graphs=False)
    assert isinstance(graphed[0], RunStarted) and graphed[0].cuda_graph
    assert not eager[0].cuda_graph
    assert not any(isinstance(e, Notice) for e in graphed)  # the capture worked
    g = [e for e in graphed if isinstance(e, EpochEnd)]
    e = [e for e in eager if isinstance(e, EpochEnd)]
    assert [x.lr for x in g] == [x.lr for x in e] and g[-1].lr < g[0].lr
    for a, b in zip(g, e, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=0.05)
        assert a.val_loss == pytest.approx(b.val_loss, rel=0.05)


def graphed_pair(optimizer: str):
    """A small fp32 model twice (same init), one with a GraphedStep, one eager."""
    def one():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 16),
                                    torch.nn.ReLU(), torch.nn.Linear(16, 3)).cuda()
        params = list(model.parameters())
        opt = (torch.optim.Adam(params, lr=1e-2, fused=True, capturable=True)
               if optimizer == "adam" else torch.optim.SGD(params, lr=0.1, fused=True))

        def forward(x, y):
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            return loss, loss, logits

        return model, opt, forward

    m_g, opt_g, f_g = one()
    m_e, opt_e, f_e = one()
    return (m_g, opt_g, graphs.GraphedStep(f_g, opt_g, pytest.fail),
            m_e, opt_e, graphs.eager_step(f_e, opt_e))


def batch(n: int, seed: int):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    return (torch.randn(n, 12, device="cuda", generator=gen),
            torch.randint(0, 3, (n,), device="cuda", generator=gen))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_graph_replays_follow_lr_changes_and_take_short_batches(optimizer):
    m_g, opt_g, graphed, m_e, opt_e, eager = graphed_pair(optimizer)
    sizes = [8] * (graphs.WARMUP_STEPS + 3) + [5, 8, 8]  # warm-up, capture, replays, short
    for i, n in enumerate(sizes):
        if i == graphs.WARMUP_STEPS + 2:  # the schedule lowers the lr between replays
            for opt in (opt_g, opt_e):
                opt.param_groups[0]["lr"] *= 0.1
        x, y = batch(n, i)
        loss_g, logits_g = graphed(x, y)
        loss_e, logits_e = eager(x, y)
        torch.testing.assert_close(logits_g, logits_e, rtol=1e-4, atol=1e-5)  # static outputs
        assert loss_g.item() == pytest.approx(loss_e.item(), rel=1e-4, abs=1e-6)
    assert graphed.graph is not None  # it captured, and replayed the full batches
    for a, b in zip(m_g.parameters(), m_e.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_zero_lr_freezes_the_graphed_weights():
    """The lr the graph uses is the optimiser's current one, not the one at capture."""
    m_g, opt_g, graphed, *_ = graphed_pair("adam")
    for i in range(graphs.WARMUP_STEPS + 1):
        graphed(*batch(8, i))
    opt_g.param_groups[0]["lr"] = 0.0
    before = [p.detach().clone() for p in m_g.parameters()]
    graphed(*batch(8, 99))
    assert all(torch.equal(a, b) for a, b in zip(before, m_g.parameters(), strict=True))
