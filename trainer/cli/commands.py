"""`cnn-tui presets` and `cnn-tui export`: read the lessons and the run store, no training."""

from __future__ import annotations

import argparse

from rich.text import Text

from trainer.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    check_output,
    console_err,
    console_out,
    export_failed,
    load_lessons,
    runs_dir,
)
from trainer.cli.parser import UsageError
from trainer.cli.render import describe_preset, presets_table
from trainer.lessons.presets import unknown_preset_message
from trainer.lessons.summary_csv import lessons_tables, write_tables
from trainer.store.csvfile import ExportError, default_export_path, write_rows
from trainer.store.export import CSV_COLUMNS, record_row, write_history_csv
from trainer.store.inside import write_inside_csvs
from trainer.store.record import RunRecord
from trainer.store.rowcache import export_rows
from trainer.store.runstore import RunStore


def cmd_presets(args: argparse.Namespace) -> int:
    """List lessons; print load problems; exit 0 when at least one lesson loaded."""
    console, err = console_out(), console_err()
    presets, problems = load_lessons(args)
    if args.key:
        if args.key not in presets:
            raise UsageError(unknown_preset_message(args.key, presets))
        console.print(describe_preset(presets[args.key]))
        return EXIT_OK
    if presets:
        console.print(presets_table(presets.values()))
    for problem in problems:
        err.print(Text.assemble(("could not load", "yellow"), " " + str(problem)))
    if not presets:
        err.print("cnn-tui: no lesson presets could be loaded")
        return EXIT_FAILED
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Every stored run → one CSV (and optionally per-lesson summaries).

    The rows of runs that have ended are remembered between exports (`store.rowcache`), so
    only new or changed files are parsed; summaries need every record and read them all.
    """
    console, err = console_out(), console_err()
    check_output(args.csv, "--csv")
    check_output(args.history_csv, "--history-csv")
    check_output(args.summary_csv, "--summary-csv")
    folder = runs_dir(args)
    store = RunStore(folder)
    records: list[RunRecord] = []
    if args.summary_csv or args.history_csv or args.inside:  # these need whole records
        records, warnings = store.load()
        rows = [record_row(rec) for rec in records]
    else:
        rows, warnings = export_rows(store)
    for warning in warnings:
        err.print(Text.assemble(("warning:", "yellow"), " " + warning))
    if not rows:
        err.print(Text(f"cnn-tui: no runs in {folder}; nothing exported (train some with "
                       "'cnn-tui run' or the app first)"))
        return EXIT_FAILED
    target = args.csv or default_export_path()
    try:
        path = write_rows(rows, CSV_COLUMNS, target)
    except ExportError as e:
        return export_failed(err, e)
    n = len(rows)
    console.print(Text(f"wrote {n} run{'s' * (n != 1)} from {folder} to {path}"))
    code = EXIT_OK
    if args.history_csv:
        try:
            history = write_history_csv(records, args.history_csv)
            console.print(Text(f"wrote the epochs of {n} run{'s' * (n != 1)} to {history}"))
        except ExportError as e:
            code = export_failed(err, e)
    if args.inside:
        try:
            inside = write_inside_csvs(records, path)
        except ExportError as e:
            return export_failed(err, e)
        if inside:
            console.print(Text("wrote layer statistics, confusion matrices and per-class "
                               "accuracy to " + ", ".join(p.name for p in inside)))
    if args.summary_csv:
        code = max(code, _export_summaries(args, records))
    return code


def _export_summaries(args: argparse.Namespace, records: list[RunRecord]) -> int:
    """The statistics and verdicts of every lesson launch in the store."""
    console, err = console_out(), console_err()
    presets, _ = load_lessons(args)
    tables = lessons_tables(presets, records)
    if not tables.summary:
        err.print("cnn-tui: no lesson runs in the store; no summary written")
        return EXIT_FAILED
    try:
        summary, verdict = write_tables(tables, args.summary_csv)
    except ExportError as e:
        return export_failed(err, e)
    launches = len({(r["preset"], r["launch"]) for r in tables.verdict})
    console.print(Text(f"wrote the statistics of {launches} lesson launch"
                       f"{'es' * (launches != 1)} to {summary} and the verdicts to {verdict}"))
    return EXIT_OK
