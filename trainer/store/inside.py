"""What the runs did inside, as tables: the mean test accuracy per class and variant (the
`cnn-tui run` summary), and CSV files beside the runs CSV (results.csv → results-layers.csv,
results-confusion.csv, results-class-acc.csv) in long format, one value per row, so pandas
or R can pivot them any way. Runs without the data (older records) have no rows. Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from trainer.store.csvfile import cells, companion_path, write_rows
from trainer.store.record import RunRecord

_RUN = ("run_id", "preset", "launch", "variant", "repeat")  # as in the runs CSV
LAYER_COLUMNS = (*_RUN, "epoch", "layer", "act_mean", "act_std", "off_fraction", "grad_norm")
CONFUSION_COLUMNS = (*_RUN, "true_class", "predicted_class", "count")
CLASS_ACC_COLUMNS = (*_RUN, "class", "test_images", "accuracy")
KINDS = {"layers": LAYER_COLUMNS, "confusion": CONFUSION_COLUMNS, "class-acc": CLASS_ACC_COLUMNS}


def _run(rec: RunRecord) -> dict[str, Any]:
    return {"run_id": rec.run_id, "preset": rec.preset, "launch": rec.group,
            "variant": rec.variant, "repeat": rec.repeat + 1}


def layer_rows(records: Iterable[RunRecord]) -> Iterator[dict[str, str]]:
    for rec in records:
        for probe in rec.probes:
            for s in probe.layers:
                yield cells({**_run(rec), "epoch": probe.epoch, "layer": s.name,
                             "act_mean": s.act_mean, "act_std": s.act_std,
                             "off_fraction": s.off, "grad_norm": s.grad_norm}, LAYER_COLUMNS)


def confusion_rows(records: Iterable[RunRecord]) -> Iterator[dict[str, str]]:
    for rec in records:
        d = rec.diagnosis
        if d is None:
            continue
        for true, row in zip(d.classes, d.confusion, strict=True):
            for predicted, count in zip(d.classes, row, strict=True):
                yield cells({**_run(rec), "true_class": true, "predicted_class": predicted,
                             "count": count}, CONFUSION_COLUMNS)


def class_acc_rows(records: Iterable[RunRecord]) -> Iterator[dict[str, str]]:
    for rec in records:
        d = rec.diagnosis
        if d is None:
            continue
        for name, row, acc in zip(d.classes, d.confusion, d.class_acc, strict=True):
            yield cells({**_run(rec), "class": name, "test_images": sum(row),
                         "accuracy": acc}, CLASS_ACC_COLUMNS)


def write_inside_csvs(records: list[RunRecord], path: str | Path) -> list[Path]:
    """The three companion files of the runs CSV at `path`; returns the paths written
    (none when no run has the data). Raises ExportError like `write_rows`."""
    if not any(r.probes or r.diagnosis is not None for r in records):
        return []
    makers = {"layers": layer_rows, "confusion": confusion_rows, "class-acc": class_acc_rows}
    return [write_rows(makers[kind](records), KINDS[kind], companion_path(path, kind))
            for kind in KINDS]


def class_acc_by_variant(records: Iterable[RunRecord]
                         ) -> tuple[tuple[str, ...], dict[str, list[float | None]]]:
    """(class names, variant → mean test accuracy per class over its diagnosed runs), in the
    order the variants first appear; runs whose classes differ from the first's are left out."""
    classes: tuple[str, ...] = ()
    sums: dict[str, list[list[float]]] = {}
    for rec in records:
        d = rec.diagnosis
        if d is None:
            continue
        classes = classes or d.classes
        if d.classes != classes:
            continue
        per = sums.setdefault(rec.variant, [[] for _ in classes])
        for i, acc in enumerate(d.class_acc):
            if acc is not None:
                per[i].append(acc)
    return classes, {v: [sum(a) / len(a) if a else None for a in per] for v, per in sums.items()}
