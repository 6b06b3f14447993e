"""The lesson summary CSV: per-variant statistics, each checked claim, and the verdict.

Written beside the run CSV by `cnn-tui run --summary-csv`, `cnn-tui export --summary-csv` and
the TUI's export.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trainer.lessons.metrics import METRICS
from trainer.lessons.stats import Paired
from trainer.lessons.verdict import make_verdict
from trainer.store.csvfile import cells, write_rows
from trainer.store.record import RunRecord

SUMMARY_COLUMNS: tuple[str, ...] = (
    "row", "preset", "variant", "baseline", "runs_finished", "runs_running", "runs_failed",
    *(f"{m}_{s}" for m in METRICS for s in ("mean", "std", "ci_low", "ci_high")),
    "diff_metric", "diff_n", "diff_mean", "diff_std", "diff_ci_low", "diff_ci_high",
    "diff_p_value", "expect", "effect_low", "effect_high", "tolerance", "status", "headline",
    "text", "suggestions",
)
"""Columns of the summary CSV. `row` tells the kinds apart: "variant" (statistics of one
variant, diff_* = its test accuracy vs the baseline), "claim" (one checked claim) and "verdict"
(the card). Accuracies are fractions 0–1, as in the per-run CSV."""


def _diff_cells(metric: str, d: Paired | None) -> dict[str, Any]:
    if d is None:
        return {}
    return {"diff_metric": metric, "diff_n": d.n, "diff_mean": d.mean_diff, "diff_std": d.std,
            "diff_ci_low": d.ci_low, "diff_ci_high": d.ci_high, "diff_p_value": d.p_value}


def summary_rows(preset: Any, records: Iterable[RunRecord],
                 pending_runs: int = 0) -> list[dict[str, Any]]:
    """Rows of the summary CSV: one per variant, one per claim, then the verdict row.

    Values stay Python numbers/None (every SUMMARY_COLUMNS key present); the writer formats.
    """
    verdict = make_verdict(preset, records, pending_runs)
    stats = verdict.stats
    assert stats is not None
    blank = dict.fromkeys(SUMMARY_COLUMNS)
    rows: list[dict[str, Any]] = []
    for v in stats.variants:
        row = {**blank, "row": "variant", "preset": stats.preset, "variant": v.label,
               "baseline": v.label == stats.baseline, "runs_finished": v.finished,
               "runs_running": v.running + v.queued, "runs_failed": v.failed}
        for m, s in v.metrics.items():
            row.update({f"{m}_mean": s.mean, f"{m}_std": s.std, f"{m}_ci_low": s.ci_low,
                        f"{m}_ci_high": s.ci_high})
        if v.label != stats.baseline:
            row.update(_diff_cells("test_acc", stats.pair(v.label, "test_acc")))
        rows.append(row)
    for r in verdict.claims:
        c = r.claim
        effect = getattr(c, "effect", None)
        row = {**blank, "row": "claim", "preset": stats.preset, "variant": c.variant,
               "expect": c.expect, "effect_low": effect[0] if effect else None,
               "effect_high": effect[1] if effect else None,
               "tolerance": getattr(c, "tolerance", None), "status": r.status,
               "text": r.sentence}
        row.update(_diff_cells(c.metric, r.diff))
        row["diff_metric"] = c.metric
        rows.append(row)
    rows.append({**blank, "row": "verdict", "preset": stats.preset, "variant": stats.baseline,
                 "runs_finished": stats.finished, "runs_running": stats.running + stats.queued,
                 "runs_failed": stats.failed, "diff_n": verdict.n, "status": verdict.status,
                 "headline": verdict.headline, "text": " ".join(verdict.sentences),
                 "suggestions": " | ".join(verdict.suggestions)})
    return rows


def write_summary_csv(preset: Any, records: Iterable[RunRecord], path: str | Path,
                      pending_runs: int = 0) -> Path:
    """Write `summary_rows` as CSV; atomic (temp file + os.replace), returns the absolute path.

    Raises trainer.store.export.ExportError (message names the path) for a missing folder, a path
    that is a folder, or any OS error while writing; no partial file is left behind.
    """
    return write_summary_rows(summary_rows(preset, records, pending_runs), path)


def lessons_summary_rows(presets: Mapping[str, Any],
                         records: Iterable[RunRecord]) -> list[dict[str, Any]]:
    """Summary rows of every lesson that has runs among `records` (in lesson order);
    runs of a lesson that is not loaded, and custom runs, have no summary."""
    by_preset: dict[str, list[RunRecord]] = {}
    for rec in records:
        if rec.preset in presets:
            by_preset.setdefault(rec.preset, []).append(rec)
    return [row for key in presets if key in by_preset
            for row in summary_rows(presets[key], by_preset[key])]


def write_summary_rows(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write summary rows (of one or several lessons) with SUMMARY_COLUMNS; atomic."""
    return write_rows((cells(row, SUMMARY_COLUMNS) for row in rows), SUMMARY_COLUMNS, path)
