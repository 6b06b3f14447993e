"""The headless CLI's tables at the widths people have (80 and 120 columns): nothing is cut
or wrapped inside a number, the paired difference and its interval always stay, a lesson's
label is not said twice, and a custom run's long label goes into the title."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console

from trainer.cli.render import lesson_report, results_table
from trainer.lessons.preset import Claim, Preset, Variant
from trainer.store.parse import parse_record
from trainer.store.record import RunRecord

PRESET = Preset(key="batch_norm", title="Batch normalization", summary="s", lesson="l",
                expect="BN on ends higher.", base={}, repeats=3,
                variants=[Variant("BN off", {"batch_norm": False}),
                          Variant("BN on", {"batch_norm": True})],
                claims=[Claim("BN on", "test_acc", "higher", effect=(0.05, 0.06))],
                try_next=["Raise the learning rate to 0.01 (lesson bn_high_lr): BN should "
                          "still converge, plain should not."], source=Path("bn.toml"))


def record(variant: str, repeat: int, test_acc: float, config: dict | None = None,
           preset: str = "batch_norm") -> RunRecord:
    return parse_record({
        "schema": 1, "run_id": f"{variant}-{repeat}".replace(" ", "_").replace("·", "x"),
        "group": "g1", "preset": preset, "variant": variant, "repeat": repeat,
        "config": {"dataset": "synthetic", "epochs": 3, "repeats": 3,
                   "batch_norm": variant == "BN on", **(config or {})},
        "status": "finished", "created": f"2026-01-01T00:00:0{repeat}",
        "params": 292_010, "env": {"device": "cuda:0"},
        "history": [{"epoch": e, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0,
                     "val_acc": 0.5, "lr": 0.001, "seconds": 12.5, "is_best": e == 3,
                     "lr_dropped": False} for e in (1, 2, 3)],
        "summary": {"test_acc": test_acc, "test_loss": 0.812, "best_epoch": 3,
                    "best_val_acc": test_acc, "best_val_loss": 1.0, "epochs_done": 3,
                    "train_seconds": 37.5, "images_per_s": 45_000.0}})


def render(renderable, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


LESSON = [record("BN off", r, a) for r, a in enumerate((0.715, 0.724, 0.733))] + [
    record("BN on", r, a) for r, a in enumerate((0.775, 0.781, 0.787))]


@pytest.mark.parametrize("width", [80, 120])
def test_lesson_tables_fit_without_cutting_a_number(width):
    table, panel = lesson_report(PRESET, LESSON, width)
    lines = render(table, width) + render(panel, width)
    assert all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    assert not re.search(r"…\s*[│┃]", text)  # no cell cut short with an ellipsis
    on = next(line for line in lines if line.lstrip("│ ").startswith("BN on"))
    assert "78.1 ± 0.6 %" in on  # mean ± std on one line, never split
    assert re.search(r"\+5\.\d points", on) and re.search(r"\+\d\.\d…\+\d\.\d", on)
    assert re.search(r"┃\s+p\s+┃", text)  # the p value's column stays
    results = render(results_table(LESSON, PRESET, width), width)
    assert all(len(line) <= width for line in results)
    assert "settings" not in results[1]  # a lesson's label already names its settings
    rows = [line for line in results if "finished" in line]
    assert len(rows) == 6 and all("%" in line for line in rows)
    if width == 80:
        assert any("left out to fit 80 columns" in line for line in results)


def test_custom_run_label_goes_into_the_title():
    label = "synthetic · subset 500 · widths 8-16-16 · epochs 3"
    recs = [record(label, 0, 0.4, {"train_subset": 500}, preset="")]
    lines = render(results_table(recs, None, 80), 80)
    assert label in lines[0]
    assert sum(label.split(" · ")[1] in line for line in lines) == 1  # said once, not wrapped
    assert any("finished" in line and "40.0%" in line for line in lines)
