"""Unit tests of the TUI's plain state classes, bridge and table columns (no terminal)."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import wait_until
from helpers.fake_trainer import FakeTrainer, Script

from trainer import formats as fmt
from trainer.config import ConfigError
from trainer.events import (
    EpochEnd,
    Notice,
    Progress,
    RunFailed,
    RunFinished,
    RunRequest,
    RunStarted,
    RunStopped,
)
from trainer.host.session import RunSession
from trainer.lessons.presets import load_presets
from trainer.store.apply import apply_event
from trainer.store.record import RunRecord, RunStatus
from tui.bridge import Bridge, squash_progress
from tui.state.columns import (
    BY_KEY,
    columns_for,
    sorted_ids,
    status_text,
    table_rows,
    variant_key,
)
from tui.state.runs import RunsView, differing_keys
from tui.state.toggles import GROUPS, ToggleState


@pytest.fixture(scope="module")
def presets():
    found, problems = load_presets()
    assert not problems
    return found


def started(req: RunRequest, **kw) -> RunStarted:
    base = dict(run_id=req.run_id, config=req.config, preset=req.preset, variant=req.variant,
                repeat=req.repeat, group=req.group, device="cpu", device_name="cpu",
                torch_version="2", params=1000, steps_per_epoch=10, train_size=640,
                val_size=64, test_size=64)
    base.update(kw)
    return RunStarted(**base)


def epoch(run_id: str, n: int, val_loss: float = 1.0, **kw) -> EpochEnd:
    base = dict(run_id=run_id, epoch=n, train_loss=val_loss - 0.1, train_acc=0.5,
                val_loss=val_loss, val_acc=0.6, lr=0.001, seconds=2.0, is_best=True,
                lr_dropped=False)
    base.update(kw)
    return EpochEnd(**base)


def finished(run_id: str, test_acc: float = 0.7, epochs: int = 2) -> RunFinished:
    return RunFinished(run_id, test_loss=0.9, test_acc=test_acc, best_epoch=epochs,
                       best_val_acc=0.6, best_val_loss=1.0, epochs_done=epochs,
                       train_seconds=4.0, images_per_s=500.0)


# -- ToggleState ----------------------------------------------------------------------------


def test_every_key_has_one_section():
    keys = [k for _, ks in GROUPS for k in ks]
    assert len(keys) == len(set(keys))


def test_toggles_start_from_lesson_base_plus_options(presets):
    t = ToggleState(presets, {"epochs": 1, "dataset": "synthetic"})
    assert t.lesson == "batch_norm"
    cfg = t.config()
    assert cfg.init == "he_normal"  # the lesson's base
    assert cfg.epochs == 1 and cfg.dataset == "synthetic"  # start options
    assert cfg.repeats == presets["batch_norm"].repeats
    assert t.source("init") == "lesson"
    assert t.source("epochs") == "option"
    assert t.source("lr") == "default"
    assert t.changes() == {"epochs": 1, "dataset": "synthetic"}
    assert t.varied_keys() == ["batch_norm"]


def test_invalid_text_is_kept_with_reason_and_blocks(presets):
    t = ToggleState(presets)
    assert t.set_text("lr", "0.01") is None
    assert t.source("lr") == "edited" and t.config().lr == 0.01
    why = t.set_text("lr", "fast")
    assert why and "lr must be" in why
    assert t.errors["lr"] == ("fast", why)
    # An invalid text is no edit (no summary lists it); it blocks every start until fixed.
    assert "lr" not in t.edits and t.blocking_error() == ("lr", why)
    assert t.set_text("lr", "0.001") is None  # back to the base value: no longer an edit
    assert t.blocking_error() is None and "lr" not in t.edits


def test_edits_are_per_lesson_and_reset(presets):
    t = ToggleState(presets)
    t.set_value("batch_size", 32)
    t.set_text("epochs", "0")  # out of range
    t.select("init")
    assert t.edits == {} and t.errors == {}
    t.select("batch_norm")
    assert t.edits == {"batch_size": 32} and "epochs" in t.errors
    t.reset()
    assert t.edits == {} and t.errors == {}


def test_custom_starts_from_defaults(presets):
    t = ToggleState(presets, {"dataset": "synthetic"})
    t.select("custom")
    assert t.preset is None and t.title == "Custom run"
    assert t.config().init == "glorot_uniform"
    reqs = t.lesson_requests()
    assert len(reqs) == 1 and reqs[0].preset == "custom"


def test_lesson_requests_apply_options_and_edits(presets):
    t = ToggleState(presets, {"epochs": 1, "dataset": "synthetic", "repeats": 2})
    t.set_value("batch_size", 32)
    t.set_value("batch_norm", True)  # the lesson's own key: variants win
    reqs = t.lesson_requests()
    assert len(reqs) == 2 * 2
    assert {r.config["batch_size"] for r in reqs} == {32}
    assert {r.config["epochs"] for r in reqs} == {1}
    assert [r.config["batch_norm"] for r in reqs[:2]] == [False, True]
    assert len({r.group for r in reqs}) == 1


def test_toggle_requests_label_names_the_edits(presets):
    t = ToggleState(presets, {"dataset": "synthetic"})
    assert t.toggle_requests()[0].variant == "lesson base"
    t.set_text("lr", "0.01")
    t.set_value("batch_norm", True)
    reqs = t.toggle_requests()
    assert reqs[0].variant == "BN on · lr 0.01"
    assert reqs[0].config["init"] == "he_normal" and reqs[0].config["lr"] == 0.01
    assert len(reqs) == presets["batch_norm"].repeats


def test_set_override_switches_dataset_everywhere(presets):
    t = ToggleState(presets)
    t.set_value("dataset", "synthetic")
    t.set_override("dataset", "synthetic")
    assert t.source("dataset") == "option" and "dataset" not in t.edits
    t.select("init")
    assert t.config().dataset == "synthetic"
    with pytest.raises(ConfigError):
        t.set_override("dataset", "imagenet")


# -- RunsView over a RunSession -------------------------------------------------------------


def view(presets) -> tuple[RunsView, FakeTrainer]:
    """A view over a trainer that never trains on its own: the test moves its queue."""
    q = FakeTrainer(Script(hold=True))
    return RunsView(RunSession(q), presets), q


def lesson_requests(presets, n=1):
    t = ToggleState(presets, {"epochs": 2, "dataset": "synthetic", "repeats": n})
    return t.lesson_requests()


def test_queue_start_epoch_finish(presets):
    s, q = view(presets)
    runs = s.session
    a, b = lesson_requests(presets)
    s.submit([a, b])
    assert [runs.status_label(r) for r in runs.records] == ["queued", "queued"]
    assert s.chart_group == a.group and s.order_changed
    q.hand_over()
    up = s.apply([started(a), Progress(a.run_id, 1, 5, 10, 1.5, 0.4, 900.0)])
    assert up.started == [a.run_id] and runs.status_label(a.run_id) == "running"
    assert runs.progress[a.run_id].step == 5
    assert s.epoch_text(a.run_id) == "1/2"
    assert s.eta(a.run_id) == pytest.approx(1.5 * 10 * 64 / 900.0)
    s.apply([Progress(a.run_id, 1, 9, 10, 1.4, 0.4, 900.0)])
    assert runs.progress[a.run_id].step == 9  # only the newest is kept
    q.release()
    up = s.apply([epoch(a.run_id, 1), epoch(a.run_id, 2, 0.8), finished(a.run_id)])
    assert up.epochs and up.ended == [(a.run_id, RunStatus.FINISHED)]
    assert a.run_id not in runs.progress
    rec = runs.records[a.run_id]
    assert rec.summary.test_acc == 0.7 and len(rec.history) == 2
    assert runs.active()  # b still pending
    s.cancel_queue()
    assert b.run_id not in runs.records and not runs.active()
    assert [r.run_id for r in runs.exportable()] == [a.run_id]


def test_failure_stop_and_notice(presets):
    s, q = view(presets)
    runs = s.session
    a, b = lesson_requests(presets)
    s.submit([a, b])
    up = s.apply([started(a), RunFailed(a.run_id, "error", "boom\nmore lines", "tb"),
                  RunFailed(b.run_id, "worker_died", "died before starting"),
                  Notice("disk nearly full", "warning")])
    assert runs.status_label(a.run_id) == "failed" and runs.status_label(b.run_id) == "failed"
    assert [f.kind for f in up.failures] == ["error", "worker_died"]
    assert up.notices[0].message == "disk nearly full"
    assert "boom" in status_text(runs.records[a.run_id], s).plain
    assert "more lines" not in status_text(runs.records[a.run_id], s).plain

    c, _ = lesson_requests(presets)
    q.cancel_queued()
    s.submit([c])
    q.hand_over()
    s.apply([started(c), epoch(c.run_id, 1)])
    assert s.stop() == c and q.stop_requests == 1
    assert runs.status_label(c.run_id) == "stopping"
    s.apply([RunStopped(c.run_id, 1)])
    assert runs.status_label(c.run_id) == "stopped"
    assert runs.records[c.run_id].summary.epochs_done == 1
    # Events of runs this app never saw are ignored, not crashes.
    assert s.apply([epoch("nope", 1)]).runs == set()


def test_series_colours_follow_lesson_order_and_live_point(presets):
    s, _ = view(presets)
    reqs = lesson_requests(presets, n=2)  # BN off #1, BN on #1, BN off #2, BN on #2
    s.submit(reqs)
    on = reqs[1]
    s.apply([started(on), epoch(on.run_id, 1), Progress(on.run_id, 2, 5, 10, 1.0, 0.5, 1.0)])
    series = {x.run_id: x for x in s.series()}
    assert series[on.run_id].color == 1 and series[reqs[0].run_id].color == 0
    assert series[on.run_id].epochs == [1]
    assert series[on.run_id].live == pytest.approx((1.5, 1.0, 0.5))
    assert s.variant_order(on.group) == ["BN off", "BN on"]
    s.select(on.run_id)
    assert [x.selected for x in s.series()] == [False, True, False, False]


def test_load_history_orders_and_sets_chart_group(presets):
    s, _ = view(presets)
    recs = []
    for i, req in enumerate(lesson_requests(presets)):
        rec = apply_event(RunRecord.from_request(req, RunStatus.RUNNING), epoch(req.run_id, 1))
        rec = apply_event(rec, finished(req.run_id, epochs=1))
        recs.append(rec.with_changes(created=f"2026-01-0{2 - i}T00:00:00"))
    s.load(recs)
    assert list(s.session.records) == [recs[1].run_id, recs[0].run_id]
    assert s.chart_group == recs[0].group
    assert all(x.epochs == [1] for x in s.series())


def test_sorting_puts_unknown_last(presets):
    s, _ = view(presets)
    reqs = lesson_requests(presets, n=2)
    s.submit(reqs)
    for req, acc in zip(reqs[:2], (0.6, 0.8), strict=True):
        s.apply([started(req), epoch(req.run_id, 1), finished(req.run_id, acc)])
    best_first = sorted_ids(s, "test_acc", reverse=True)
    assert best_first[:2] == [reqs[1].run_id, reqs[0].run_id]
    assert sorted_ids(s, "test_acc", reverse=False)[:2] == [reqs[0].run_id, reqs[1].run_id]
    assert set(best_first[2:]) == {reqs[2].run_id, reqs[3].run_id}
    assert str(BY_KEY["best_val"].cell(s.session.records[reqs[0].run_id], s)) == "60.0% @2"


def test_grouped_rows_and_differing_columns(presets):
    s, _ = view(presets)
    records = s.session.records
    reqs = lesson_requests(presets, n=2)  # BN off #1, BN on #1, BN off #2, BN on #2
    s.submit(reqs)
    for req, acc in zip(reqs, (0.60, 0.70, 0.62, 0.74), strict=True):
        s.apply([started(req), epoch(req.run_id, 1), finished(req.run_id, acc, epochs=1)])
    assert differing_keys(list(records.values())) == ["batch_norm"]  # seeds don't count
    cols = columns_for(s, diff_only=True)
    keys = [c.key for c in cols]
    assert "bn" in keys and "init" not in keys and "lr" not in keys
    rows = table_rows(s, cols, "test_acc", True, grouped=True)
    group = reqs[0].group
    assert [r.key for r in rows] == [variant_key(group, "BN on"), variant_key(group, "BN off")]
    test_acc = keys.index("test_acc")
    assert str(rows[0].cells[test_acc]) == "72.0 ± 2.8%"
    assert rows[0].runs == [reqs[1].run_id, reqs[3].run_id]
    status = rows[0].cells[keys.index("status")].plain
    assert "2 finished" in status
    expanded = table_rows(s, cols, "n", False, grouped=True,
                          expanded={variant_key(group, "BN off")})
    assert [r.key for r in expanded] == [variant_key(group, "BN off"), reqs[0].run_id,
                                         reqs[2].run_id, variant_key(group, "BN on")]
    assert expanded[1].cells[keys.index("variant")].plain.strip() == "rep 1"
    # Mixed values in a variant show as "mixed".
    full = columns_for(s, diff_only=False)
    changed = records[reqs[2].run_id]
    records[reqs[2].run_id] = changed.with_changes(config={**changed.config, "lr": 0.01})
    rows = table_rows(s, full, "n", False, grouped=True)
    assert str(rows[0].cells[[c.key for c in full].index("lr")]) == "mixed"


def test_queue_eta_uses_finished_runs(presets):
    s, q = view(presets)
    a, b = lesson_requests(presets)
    s.submit([a, b])
    q.hand_over()
    s.apply([started(a), epoch(a.run_id, 1), epoch(a.run_id, 2), finished(a.run_id)])
    q.release()
    assert s.queue_eta() == pytest.approx(4.0)


def test_formatters():
    assert fmt.pct(0.7123) == "71.2%" and fmt.pct(None) == "–"
    assert fmt.duration(62) == "1:02" and fmt.duration(7380) == "2h03m"
    assert fmt.params(912_000) == "912k" and fmt.params(1_200_000) == "1.20M"
    assert fmt.short_float(1e-5) == "1e-5" and fmt.short_float(0.001) == "0.001"
    assert fmt.num(float("nan")) == "nan" and fmt.rate(4210.4) == "4,210"


# -- Bridge -----------------------------------------------------------------------------------


def test_squash_progress_keeps_latest_per_run_in_order():
    p = [Progress("a", 1, i, 10, 1.0, 0.1, 1.0) for i in range(5)]
    q = Progress("b", 1, 1, 10, 1.0, 0.1, 1.0)
    e = epoch("a", 1)
    out = squash_progress([p[0], q, p[1], e, p[2], p[3]])
    assert out == [q, e, p[3]]


def test_bridge_batches_a_flood_and_stops_fast(presets):
    fake = FakeTrainer(Script(steps=50, steps_per_poll=50, progress_per_step=40, delay=0.005))
    batches: list[int] = []
    done = threading.Event()

    def deliver(events):
        batches.append(len(events))
        # The UI is slow: ack later, so the bridge must accumulate meanwhile.
        threading.Timer(0.05, bridge.ack).start()
        if any(isinstance(ev, RunFinished) for ev in events):
            done.set()

    bridge = Bridge(fake, deliver)
    bridge.start()
    fake.submit(lesson_requests(presets)[:1])
    assert done.wait(10)
    t0 = time.monotonic()
    bridge.stop()
    assert time.monotonic() - t0 < 1.0 and not bridge.alive
    # 2 epochs × 50 steps × 40 progress events = 4000 progress events, squashed to few.
    assert sum(batches) < 200
    assert len(batches) < 60


def test_bridge_reports_poll_errors_and_keeps_going():
    class Broken:
        calls = 0

        def poll(self, timeout=0.1, max_events=1000):
            Broken.calls += 1
            raise OSError("pipe closed")

        def pending(self):
            return []

        def current(self):
            return None

    errors: list[str] = []
    bridge = Bridge(Broken(), lambda *a: None, on_error=errors.append)
    bridge.start()
    wait_until(lambda: Broken.calls >= 2, what="a second poll after the error")
    bridge.stop()
    assert errors and "pipe closed" in errors[0] and len(errors) == 1
    assert Broken.calls >= 2


def test_epoch_ticks_are_whole_epochs_from_one():
    from tui.widgets.charts import epoch_ticks

    assert epoch_ticks(3, 80) == [1, 2, 3]
    ticks = epoch_ticks(30, 40)
    assert ticks[0] == 1 and all(isinstance(t, int) for t in ticks) and ticks[-1] <= 30
    assert len(ticks) <= (40 - 8) // 6 + 1
