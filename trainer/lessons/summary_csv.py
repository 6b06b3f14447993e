"""The lesson summary CSVs: statistics in one tidy table, claims and verdicts in another.

Written beside the run CSV by `cnn-tui run --summary-csv`, `cnn-tui export --summary-csv` and
the TUI's export. Both are "tidy" (one observation per row, no mostly-empty columns), so a
spreadsheet filter or `pandas.read_csv` needs no knowledge of row kinds:

- the summary (`SUMMARY_COLUMNS`): one row per launch × variant × metric — mean, std and the
  95% interval over the variant's finished repeats, and its paired difference from the
  lesson's baseline variant;
- the verdict (`VERDICT_COLUMNS`, file `<summary>-verdict.csv`): one row per checked claim of
  a launch, with the launch's verdict repeated on each (a lesson without claims: one row).

A launch is one press of `r` (or one `cnn-tui run`): its runs share settings, and a verdict
is about one launch, never a mix of launches with other settings. Accuracies are fractions
0–1, as in the per-run CSV.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from trainer.lessons.metrics import METRICS
from trainer.lessons.verdict import make_verdict
from trainer.store.csvfile import cells, companion_path, write_rows
from trainer.store.record import RunRecord

SUMMARY_COLUMNS: tuple[str, ...] = (
    "preset", "launch", "variant", "baseline", "metric", "unit", "n", "mean", "std",
    "ci_low", "ci_high", "diff_n", "diff_mean", "diff_ci_low", "diff_ci_high", "diff_p_value",
    "runs_finished", "runs_diverged", "runs_failed", "runs_unfinished",
)
"""Columns of the summary CSV (one row per launch × variant × metric). `diff_*`: the paired
difference variant − baseline over matched repeats (empty on the baseline's own rows)."""

VERDICT_COLUMNS: tuple[str, ...] = (
    "preset", "launch", "verdict", "headline", "claim_variant", "claim_metric", "expect",
    "effect_low", "effect_high", "tolerance", "claim_status", "diff_n", "diff_mean",
    "diff_ci_low", "diff_ci_high", "diff_p_value", "claim_text", "verdict_text", "try_next",
)
"""Columns of the verdict CSV (one row per claim; the launch's verdict on each row)."""


class Tables(NamedTuple):
    summary: list[dict[str, Any]]
    verdict: list[dict[str, Any]]


def _diff(d: Any) -> dict[str, Any]:
    if d is None:
        return {}
    return {"diff_n": d.n, "diff_mean": d.mean_diff, "diff_ci_low": d.ci_low,
            "diff_ci_high": d.ci_high, "diff_p_value": d.p_value}


def lesson_tables(preset: Any, records: Iterable[RunRecord], launch: str = "",
                  pending_runs: int = 0) -> Tables:
    """Both tables for the runs of one launch of a lesson (values stay Python numbers)."""
    verdict = make_verdict(preset, records, pending_runs)
    stats = verdict.stats
    assert stats is not None
    summary: list[dict[str, Any]] = []
    for v in stats.variants:
        counts = {"runs_finished": v.finished, "runs_diverged": v.diverged,
                  "runs_failed": v.failed,
                  "runs_unfinished": v.running + v.queued + v.stopped}
        for metric, s in v.metrics.items():
            row = {"preset": stats.preset, "launch": launch, "variant": v.label,
                   "baseline": v.label == stats.baseline, "metric": metric,
                   "unit": METRICS[metric].unit if metric in METRICS else "",
                   "n": s.n, "mean": s.mean, "std": s.std, "ci_low": s.ci_low,
                   "ci_high": s.ci_high, **counts}
            if v.label != stats.baseline:
                row.update(_diff(stats.pair(v.label, metric)))
            summary.append(row)
    head = {"preset": stats.preset, "launch": launch, "verdict": verdict.status,
            "headline": verdict.headline, "verdict_text": " ".join(verdict.sentences),
            "try_next": " | ".join(verdict.suggestions)}
    rows: list[dict[str, Any]] = []
    for r in verdict.claims:
        c = r.claim
        effect = getattr(c, "effect", None)
        rows.append({**head, "claim_variant": c.variant, "claim_metric": c.metric,
                     "expect": c.expect, "effect_low": effect[0] if effect else None,
                     "effect_high": effect[1] if effect else None,
                     "tolerance": getattr(c, "tolerance", None), "claim_status": r.status,
                     "claim_text": r.sentence, **_diff(r.diff)})
    return Tables(summary, rows or [head])


def launches(records: Iterable[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """The runs of each (lesson, launch), launches in the order they began."""
    out: dict[tuple[str, str], list[RunRecord]] = {}
    for rec in sorted(records, key=lambda r: (r.created, r.run_id)):
        out.setdefault((rec.preset, rec.group), []).append(rec)
    return out


def lessons_tables(presets: Mapping[str, Any], records: Iterable[RunRecord]) -> Tables:
    """Both tables for every launch of a loaded lesson among `records` (custom runs, and runs
    of lessons that are not loaded, have no summary)."""
    out = Tables([], [])
    for (key, launch), runs in launches(records).items():
        if key in presets:
            tables = lesson_tables(presets[key], runs, launch)
            out.summary.extend(tables.summary)
            out.verdict.extend(tables.verdict)
    return out


def verdict_path(summary_path: str | Path) -> Path:
    """Where the verdict CSV goes beside a summary CSV: bn.csv → bn-verdict.csv."""
    return companion_path(summary_path, "verdict")


def write_tables(tables: Tables, path: str | Path,
                 verdict: str | Path | None = None) -> tuple[Path, Path]:
    """Write the summary to `path` and the verdict to `verdict` (default: beside the summary,
    see verdict_path); each atomic; both paths returned.

    Raises trainer.store.csvfile.ExportError (the message names the path) for a missing
    folder, a folder given as the file, or any OS error; no partial file is left behind.
    """
    summary = write_rows((cells(r, SUMMARY_COLUMNS) for r in tables.summary),
                         SUMMARY_COLUMNS, path)
    target = verdict if verdict is not None else verdict_path(summary)
    verdicts = write_rows((cells(r, VERDICT_COLUMNS) for r in tables.verdict),
                          VERDICT_COLUMNS, target)
    return summary, verdicts
