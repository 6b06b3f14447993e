"""The CUDA-graph step on a CPU: the eager step is the loop's old step, a failed capture falls
back to eager with one Notice (and a record that says so), and "off" is honoured.

The graph itself needs CUDA: see tests/unit/test_cuda.py.
"""

from __future__ import annotations

import pytest
import torch
from helpers import tiny

from trainer.engine import data, graphs, loop
from trainer.engine.model import build_model, kernels
from trainer.events import (
    EAGER_NOTICE,
    EpochEnd,
    Notice,
    Preparing,
    RunFinished,
    RunRequest,
    RunStarted,
    WorkerSettings,
)
from trainer.host.process import graphing
from trainer.store.apply import apply_event

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def small_raw():
    return data.make_synthetic(n_train=600, n_test=200)


def run(cfg, raw, cuda_graphs=True):
    events = []
    loop.train(RunRequest(cfg.to_dict()), data.DeviceData(raw, CPU), CPU, events.append,
               lambda: False, cuda_graphs=cuda_graphs)
    return [e for e in events if not isinstance(e, Preparing)]


def curve(events):
    return [(e.train_loss, e.val_loss, e.train_acc) for e in events if isinstance(e, EpochEnd)]


@pytest.fixture
def pretend_cuda(monkeypatch):
    """The loop believes graphs are available, and the capture itself refuses to start (as
    a CUDA capture does for an op it cannot record); counts the capture attempts."""
    attempts: list[int] = []

    class FakeGraph:
        def replay(self) -> None:
            raise AssertionError("a failed capture is never replayed")

    def refuse(graph):
        attempts.append(1)
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(graphs, "available", lambda device: True)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", refuse)
    return attempts


def test_a_failed_capture_trains_on_eagerly_with_one_notice(small_raw, pretend_cuda):
    cfg = tiny(epochs=2, l2=1e-4, lr_schedule="step")
    events = run(cfg, small_raw)
    assert len(pretend_cuda) == 1  # tried once, after the warm-up, never again
    started, finished = events[0], events[-1]
    assert isinstance(started, RunStarted) and started.cuda_graph  # it meant to graph
    assert isinstance(finished, RunFinished)
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and notices[0].kind == EAGER_NOTICE
    assert notices[0].level == "warning" and notices[0].run_id == started.run_id
    assert "operation not permitted when stream is capturing" in notices[0].message
    record = None
    for event in events:
        record = apply_event(record, event)
    assert record is not None and record.env.cuda_graph is False
    assert "cuda_graph" not in record.env.to_json()  # stored as an eager run
    assert record.notices == (notices[0].message,)  # the user can read why
    # Every batch trained exactly once, as an eager run trains it: the same numbers.
    eager = run(cfg, small_raw, cuda_graphs=False)
    assert curve(events) == curve(eager)
    assert (finished.test_loss, finished.test_acc) == (eager[-1].test_loss, eager[-1].test_acc)


def test_off_attempts_no_capture(small_raw, pretend_cuda):
    events = run(tiny(epochs=1), small_raw, cuda_graphs=False)
    assert not pretend_cuda
    assert not any(isinstance(e, Notice) for e in events)
    started = events[0]
    assert isinstance(started, RunStarted) and not started.cuda_graph
    assert isinstance(events[-1], RunFinished)


def test_a_cpu_run_never_graphs(small_raw):
    events = run(tiny(epochs=1), small_raw)
    assert isinstance(events[0], RunStarted) and not events[0].cuda_graph
    assert not any(isinstance(e, Notice) for e in events)


def test_graphs_only_where_the_first_epoch_has_more_full_batches_than_the_warmup(
        monkeypatch):
    cuda, cpu = torch.device("cuda"), CPU
    many = loop.batch_bounds(435, 64)  # 6 full batches and a short one
    few = loop.batch_bounds(3 * 64 + 10, 64)  # 3 full: the capture would never come
    assert not graphs.wanted(cpu, True, many, 64)
    monkeypatch.setattr(graphs, "available", lambda device: device.type == "cuda")
    assert graphs.wanted(cuda, True, many, 64)
    assert not graphs.wanted(cuda, False, many, 64)
    assert not graphs.wanted(cuda, True, few, 64)


def test_the_setting_then_the_environment_decide(monkeypatch):
    monkeypatch.delenv("CNN_TUI_CUDA_GRAPHS", raising=False)
    assert graphing(WorkerSettings()) == "auto"
    monkeypatch.setenv("CNN_TUI_CUDA_GRAPHS", "OFF")
    assert graphing(WorkerSettings()) == "off"
    assert graphing(WorkerSettings(cuda_graphs="on")) == "on"  # the setting wins
    monkeypatch.setenv("CNN_TUI_CUDA_GRAPHS", "sometimes")
    assert graphing(WorkerSettings()) == "auto"


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum"])
def test_the_eager_step_is_the_loops_old_inline_step(optimizer):
    """The refactor changed nothing: N steps of the old inline code and of eager_step give
    bit-identical weights (dropout, BN, L2+L1 included)."""
    cfg = tiny(optimizer=optimizer, l2=1e-3, l1=1e-4, dropout=True)
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(16, 3, 32, 32, generator=gen), torch.randint(0, 10, (16,),
                                                                          generator=gen))
               for _ in range(5)]

    def fresh():
        torch.manual_seed(0)
        model = build_model(cfg)
        model.train()
        return model, loop.make_optimizer(cfg, model, cuda=False)

    model_a, opt_a = fresh()
    torch.manual_seed(7)
    for x, y in batches:  # the loop's step before graphs.py existed, verbatim
        with loop.autocast(False):
            logits = model_a(x)
            loss = loop.per_sample_loss(logits, y, cfg.loss).mean()
        objective = loss + loop.penalty(kernels(model_a), cfg.l2, cfg.l1)
        opt_a.zero_grad(set_to_none=True)
        objective.backward()
        opt_a.step()

    model_b, opt_b = fresh()
    penalised = kernels(model_b)

    def forward(x, y):
        with loop.autocast(False):
            logits = model_b(x)
            loss = loop.per_sample_loss(logits, y, cfg.loss).mean()
        return loss + loop.penalty(penalised, cfg.l2, cfg.l1), loss, logits

    step = graphs.make_step(forward, opt_b, graphed=False, on_fallback=pytest.fail)
    torch.manual_seed(7)
    for x, y in batches:
        step(x, y)
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_warmup_runs_eagerly_on_a_cpu_without_a_stream():
    """GraphedStep's warm-up needs no CUDA (what the fallback tests above rely on)."""
    w = torch.nn.Parameter(torch.zeros(()))
    opt = torch.optim.SGD([w], lr=1.0)

    def forward(x, y):
        loss = (w - x.mean()) ** 2
        return loss, loss, x

    step = graphs.GraphedStep(forward, opt, on_fallback=pytest.fail)
    for _ in range(graphs.WARMUP_STEPS):
        step(torch.ones(4), torch.zeros(4))
    assert step.graph is None and step.warmed == graphs.WARMUP_STEPS and w.item() != 0.0
