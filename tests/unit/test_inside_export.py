"""`cnn-tui export` writes the look-inside CSVs beside the runs CSV; `run` prints per-class
accuracy. Records come from made-up events of the right shape (helpers.inside)."""

from __future__ import annotations

import csv

from helpers.inside import CIFAR, diagnosis, layers
from rich.console import Console

from trainer.cli import main as cli
from trainer.cli.render import class_acc_table
from trainer.events import EpochEnd, RunFinished, RunStarted
from trainer.store.apply import apply_event
from trainer.store.inside import CLASS_ACC_COLUMNS, CONFUSION_COLUMNS, LAYER_COLUMNS
from trainer.store.record import RunRecord
from trainer.store.runstore import RunStore


def run(run_id: str, variant: str, skill: float, recorded: bool = True) -> RunRecord:
    rec = apply_event(None, RunStarted(run_id, {"epochs": 2}, "batch_norm", variant, 0, "g",
                                       "cpu", "cpu", "2", 10, 5, 100, 20, 10_000))
    for e in (1, 2):
        rec = apply_event(rec, EpochEnd(run_id, e, 1.0, 0.5, 1.0, 0.5, 0.001, 1.0, True, False,
                                        layers(e) if recorded else ()))
    return apply_event(rec, RunFinished(run_id, 1.0, skill, 2, skill, 1.0, 2, 2.0, 100.0,
                                        diagnosis=diagnosis(skill=skill) if recorded else None))


def rows(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_export_writes_three_companion_files(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    store.save(run("r1", "=BN off", 0.6))  # a formula-like label stays text
    store.save(run("r2", "BN on", 0.7))
    store.save(run("r3", "old", 0.5, recorded=False))
    out = tmp_path / "all.csv"
    assert cli.main(["export", "--csv", str(out), "--inside",
                     "--runs-dir", str(tmp_path / "runs")]) == 0
    layer = rows(tmp_path / "all-layers.csv")
    assert tuple(layer[0]) == LAYER_COLUMNS
    assert len(layer) == 2 * 2 * 8  # runs × epochs × layers; the old run has none
    first = next(r for r in layer if r["run_id"] == "r1" and r["epoch"] == "2"
                 and r["layer"] == "conv1")
    assert first["variant"] == "'=BN off"
    assert float(first["off_fraction"]) == layers(2)[0].off
    assert next(r for r in layer if r["layer"] == "dense2")["off_fraction"] == ""
    conf = rows(tmp_path / "all-confusion.csv")
    assert tuple(conf[0]) == CONFUSION_COLUMNS and len(conf) == 2 * 100
    cell = next(r for r in conf if r["run_id"] == "r2" and r["true_class"] == "cat"
                and r["predicted_class"] == "cat")
    assert int(cell["count"]) == diagnosis(skill=0.7).confusion[3][3]
    acc = rows(tmp_path / "all-class-acc.csv")
    assert tuple(acc[0]) == CLASS_ACC_COLUMNS and len(acc) == 20
    assert float(next(r for r in acc if r["run_id"] == "r2")["accuracy"]) == 0.7
    assert "all-layers.csv" in capsys.readouterr().out


def test_per_class_accuracy_table_of_the_run_summary():
    table = class_acc_table([run("a", "BN off", 0.6), run("b", "BN on", 0.7),
                             run("c", "BN on", 0.5), run("d", "old", 0.5, recorded=False)])
    assert table is not None
    console = Console(width=100, record=True)
    console.print(table)
    text = console.export_text()
    assert "Test accuracy per class" in text and all(name in text for name in CIFAR)
    airplane = next(line for line in text.splitlines() if "airplane" in line)
    assert "60.0%" in airplane and "60.0%" in airplane.split("60.0%", 1)[1]  # BN on: (.7+.5)/2
    assert class_acc_table([run("d", "old", 0.5, recorded=False)]) is None
