"""The `cnn-tui` command line: exit codes, one-line errors, listing, headless runs, export.

Most tests call `main()` in-process; the event-handling paths (data error, Ctrl-C) use the
shared scripted FakeTrainer so they are fast and exact, and two tests train for real
through the spawned worker (`python -m trainer run ...`) to prove the whole path works.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from helpers import REPO, tiny
from helpers.fake_trainer import FakeTrainer, Script

from trainer.cli import main as cli
from trainer.cli import parser
from trainer.events import (
    EpochEnd,
    Preparing,
    RunFinished,
    RunRequest,
    RunStarted,
)

TINY = ["--dataset", "synthetic", "--set", "train_subset=256", "--set", "widths=8,8,8",
        "--epochs", "1", "--device", "cpu"]
REQUIRED_CSV = ["run_id", "preset", "launch", "variant", "repeat", "seed", "dataset",
                "batch_norm", "init", "shuffle", "batch_size", "head", "l2", "lr", "optimizer",
                "epochs", "status",
                "epochs_done", "best_epoch", "best_val_acc", "best_val_loss", "test_acc",
                "test_loss", "params", "train_seconds", "images_per_s", "device"]

LESSON = """\
title = "Tiny lesson"
summary = "two variants"
lesson = "x"
expect = "y"
repeats = 1
[[variants]]
label = "BN off"
batch_norm = false
[[variants]]
label = "BN on"
batch_norm = true
[[claims]]
variant = "BN on"
metric = "test_acc"
expect = "higher"
"""


def run_cli(*args: str, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainer", *args], capture_output=True,
                          text=True, cwd=cwd or REPO, timeout=timeout)


# -- usage errors: exit 2, one line, no traceback -----------------------------------------


@pytest.mark.parametrize(("argv", "needle"), [
    (["run", "--set", "batch_size=0"], "batch_size must be an integer from 1 to"),
    (["run", "--set", "init=foo"], "init must be one of glorot_uniform"),
    (["run", "--set", "lrr=0.1"], "did you mean 'lr'"),
    (["run", "--set", "lr"], "KEY=VALUE"),
    (["run", "--preset", "batchnorm"], "did you mean 'batch_norm'"),
    (["run", "--epochs", "0"], "epochs must be"),
    (["run", "--device", "tpu"], "use auto, cpu, cuda or cuda:N"),
    (["run", "--bogus"], "unrecognized arguments"),
    (["run", "--summary-csv", "x.csv"], "needs --preset"),
    (["run", "--csv", "/nonexistent-dir/x.csv"], "does not exist"),
    (["presets", "nope"], "unknown preset"),
])
def test_bad_usage_exits_2_with_one_line(capsys, argv, needle):
    assert cli.main(argv) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("cnn-tui")
    assert "Traceback" not in out.err + out.out


def test_subprocess_bad_set_has_no_traceback():
    proc = run_cli("run", "--set", "init=foo")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "cnn-tui 0.1.0"


def test_help_returns_0(capsys):
    assert cli.main(["run", "--help"]) == 0
    assert "--preset" in capsys.readouterr().out


# -- presets command --------------------------------------------------------------------------


def test_presets_lists_builtin_lessons(capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    for key in ("batch_norm", "gap_vs_flatten", "input_norm"):
        assert key in out
    assert "BN off | BN on" in out


def test_presets_reports_bad_file_and_still_lists(tmp_path, capsys):
    (tmp_path / "broken.toml").write_text('title = "x"\n[[variants]]\nlabel = "A"\nlr = \n')
    (tmp_path / "tiny.toml").write_text(LESSON)
    assert cli.main(["presets", "--presets-dir", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "tiny" in out.out and "Tiny lesson" in out.out
    assert "broken.toml, line 4" in out.err and "TOML syntax error" in out.err


def test_presets_show_one(capsys):
    assert cli.main(["presets", "batch_norm"]) == 0
    out = capsys.readouterr().out
    assert "Batch normalization" in out and "BN on" in out and "init he_normal" in out


def test_no_command_calls_launch_tui_with_parsed_options():
    seen = {}

    def launch(args):
        seen["args"] = args
        return 7

    assert cli.main(["--epochs", "3", "--set", "lr=0.01"], launch_tui=launch) == 7
    assert parser.resolve_overrides(seen["args"]) == {"lr": 0.01, "epochs": 3}
    assert cli.main(["--set", "lr=-1"], launch_tui=launch) == 2  # checked before the TUI


def test_no_command_without_tui_says_so(capsys):
    assert cli.main([]) == 2
    assert "run" in capsys.readouterr().err


def test_resolve_overrides_order_and_options_anywhere():
    args = parser.build_parser().parse_args(
        ["--set", "lr=0.1", "run", "--set", "lr=0.2", "--set", "batch_norm=on", "--repeats", "2"])
    # Both levels count, the later one wins for the same key.
    assert parser.resolve_overrides(args) == {"lr": 0.2, "batch_norm": True, "repeats": 2}
    args = parser.build_parser().parse_args(["--set", "lr=0.1", "--presets-dir", "a", "run",
                                          "--set", "seed=3", "--presets-dir", "b"])
    assert parser.resolve_overrides(args) == {"lr": 0.1, "seed": 3}
    assert parser.presets_dirs(args) == ["a", "b"]
    args = parser.build_parser().parse_args(["--dataset", "synthetic", "run", "--epochs", "4"])
    assert parser.resolve_overrides(args) == {"epochs": 4, "dataset": "synthetic"}


# -- run with a scripted trainer process --------------------------------------------------------


@pytest.fixture
def fake(tmp_path):
    """The shared scripted trainer (tests/helpers/fake_trainer.py) behind `cnn-tui run`:
    `fake.script` sets outcomes per variant, `fake.made` holds the trainers the CLI made."""
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (lessons / "tiny.toml").write_text(LESSON)

    class Fake:
        script = Script(steps=4, steps_per_poll=4, delay=0.001)
        made: ClassVar[list[FakeTrainer]] = []
        args: ClassVar[list[str]] = ["--presets-dir", str(lessons), "--runs-dir",
                                     str(tmp_path / "runs")]

        @classmethod
        def make(cls, settings):
            trainer = FakeTrainer(cls.script)
            trainer.settings = settings
            cls.made.append(trainer)
            return trainer

        @classmethod
        def main(cls, argv):
            return cli.main(argv, make_trainer=cls.make)

    return Fake


def test_run_preset_all_finished_prints_table_verdict_and_csvs(fake, tmp_path, capsys):
    out_csv, sum_csv = tmp_path / "runs.csv", tmp_path / "summary.csv"
    code = fake.main(["run", "--preset", "tiny", "--repeats", "2", *fake.args, "--csv",
                      str(out_csv), "--summary-csv", str(sum_csv)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Results" in out and "BN on" in out and "Verdict" in out
    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["variant"], r["repeat"]) for r in rows] == [
        ("BN off", "1"), ("BN off", "2"), ("BN on", "1"), ("BN on", "2")]  # as shown: #1, #2
    assert {r["status"] for r in rows} == {"finished"} and len({r["launch"] for r in rows}) == 1
    stats = list(csv.DictReader(sum_csv.open()))
    assert {(r["variant"], r["metric"], r["n"]) for r in stats} >= {
        ("BN off", "test_acc", "2"), ("BN on", "test_acc", "2")}
    assert {r["launch"] for r in stats} == {rows[0]["launch"]}
    verdict = list(csv.DictReader((tmp_path / "summary-verdict.csv").open()))
    assert verdict and all(r["verdict"] and r["headline"] for r in verdict)
    proc = fake.made[0]
    assert proc.closed and proc.settings.device == "auto"


def test_run_failed_run_exits_1_and_shows_reason(fake, capsys):
    fake.script.fail = {"BN on": ("out_of_memory", "out of memory — try a smaller batch_size")}
    assert fake.main(["run", "--preset", "tiny", *fake.args]) == 1
    out = capsys.readouterr().out
    assert "failed: out of memory — try a smaller batch_size" in out


def test_data_error_prints_fix_once_and_cancels_the_rest(fake, capsys):
    fake.script.fail = {"BN off": ("data", "CIFAR-10 not found\nput it in DIR")}
    assert fake.main(["run", "--preset", "tiny", "--repeats", "3", *fake.args]) == 1
    out = capsys.readouterr()
    assert out.err.count("put it in DIR") == 1
    assert out.out.count("cancelled") == 5  # the five queued runs never ran
    assert fake.made[0].pending() == []


def test_ctrl_c_stops_current_keeps_finished_and_exits_130(fake, tmp_path, capsys):
    fake.script.interrupt = "BN on"
    out_csv = tmp_path / "partial.csv"
    code = fake.main(["run", "--preset", "tiny", "--repeats", "2", *fake.args, "--csv",
                      str(out_csv)])
    out = capsys.readouterr().out
    assert code == 130
    proc = fake.made[0]
    assert proc.stop_requests and proc.closed and not proc.pending()
    rows = list(csv.DictReader(out_csv.open()))
    assert [(r["variant"], r["status"]) for r in rows] == [("BN off", "finished"),
                                                          ("BN on", "stopped")]
    assert "cancelled" in out  # the second repeat never started


def test_custom_run_uses_overrides(fake, capsys):
    assert fake.main(["run", "--set", "lr=0.01", "--set", "batch_norm=true", *fake.args]) == 0
    out = capsys.readouterr().out
    assert "custom run" in out and "BN on · lr 0.01" in out


def test_shadowed_override_is_warned(fake, capsys):
    assert fake.main(["run", "--preset", "tiny", "--set", "batch_norm=true", *fake.args]) == 0
    assert "batch_norm" in capsys.readouterr().err



# -- real runs through the spawned worker ----------------------------------------------------


def test_real_preset_run_csvs_then_export(tmp_path):
    """One spawned worker trains both variants of a tiny lesson; then export reads the store."""
    lessons, runs = tmp_path / "lessons", tmp_path / "runs"
    lessons.mkdir()
    (lessons / "tiny.toml").write_text(LESSON)
    out_csv, summary = tmp_path / "run.csv", tmp_path / "summary.csv"
    proc = run_cli("run", "--preset", "tiny", *TINY, "--presets-dir", str(lessons),
                   "--runs-dir", str(runs), "--csv", str(out_csv), "--summary-csv", str(summary))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "finished" in proc.stdout and "Verdict" in proc.stdout and summary.exists()
    with out_csv.open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        assert reader.fieldnames[:len(REQUIRED_CSV)] == REQUIRED_CSV
    assert [(r["variant"], r["status"], r["dataset"]) for r in rows] == [
        ("BN off", "finished", "synthetic"), ("BN on", "finished", "synthetic")]
    assert all(0.0 <= float(r["test_acc"]) <= 1.0 for r in rows)

    stored = sorted(runs.glob("*.json"))
    assert len(stored) == 2 and json.loads(stored[0].read_text())["status"] == "finished"
    (runs / "garbage.json").write_text("{not json")
    export = tmp_path / "all.csv"
    assert cli.main(["export", "--csv", str(export), "--runs-dir", str(runs)]) == 0
    assert len(list(csv.DictReader(export.open()))) == 2


def test_export_reports_count_and_skipped_files(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "garbage.json").write_text("{not json")
    export = tmp_path / "all.csv"
    # Nothing readable: say so and exit 1, rather than a header-only file and success.
    assert cli.main(["export", "--csv", str(export), "--runs-dir", str(runs)]) == 1
    out = capsys.readouterr()
    assert "nothing exported" in out.err and "garbage.json" in out.err
    assert not export.exists()
    assert cli.main(["export", "--csv", str(tmp_path / "no" / "x.csv"),
                     "--runs-dir", str(runs)]) == 2


def _store_run(runs: Path, preset: str, variant: str, repeat: int, acc: float) -> None:
    from trainer.events import RunRequest
    from trainer.store.apply import apply_event
    from trainer.store.runstore import RunStore

    req = RunRequest({"batch_norm": variant == "BN on", "epochs": 1, "repeats": 2}, preset,
                     variant, repeat, "g-1")
    rec = None
    for ev in (RunStarted(req.run_id, req.config, preset, variant, repeat, "g-1", "cpu", "cpu",
                          "2", 10, 1, 10, 2, 2),
               EpochEnd(req.run_id, 1, 2.0, 0.2, 1.9, acc, 0.001, 0.5, True, False),
               RunFinished(req.run_id, 1.8, acc, 1, acc, 1.9, 1, 0.5, 100.0)):
        rec = apply_event(rec, ev)
    RunStore(runs).save(rec)


def test_export_summary_of_several_lessons(tmp_path, capsys):
    lessons, runs = tmp_path / "lessons", tmp_path / "runs"
    lessons.mkdir()
    (lessons / "tiny.toml").write_text(LESSON)
    (lessons / "tiny2.toml").write_text(LESSON.replace("Tiny lesson", "Tiny two"))
    for preset in ("tiny", "tiny2"):
        for r in range(2):
            _store_run(runs, preset, "BN off", r, 0.4 + r / 100)
            _store_run(runs, preset, "BN on", r, 0.5 + r / 50)
    summary = tmp_path / "s.csv"
    args = ["export", "--csv", str(tmp_path / "all.csv"), "--summary-csv", str(summary),
            "--runs-dir", str(runs), "--presets-dir", str(lessons)]
    assert cli.main(args) == 0, capsys.readouterr()
    rows = list(csv.DictReader(summary.open()))
    assert {r["preset"] for r in rows} == {"tiny", "tiny2"}
    assert {r["variant"] for r in rows} == {"BN off", "BN on"}
    verdicts = list(csv.DictReader((tmp_path / "s-verdict.csv").open()))
    assert {r["preset"] for r in verdicts} == {"tiny", "tiny2"}
    assert "wrote 8 runs" in capsys.readouterr().out


# -- what a waiting run says ---------------------------------------------------------------------


def waiting_view(trainer: FakeTrainer, ids: list[str]):
    """A launch's live display over a terminal, and what each of its lines says."""
    from rich.console import Console

    from trainer.cli.live import LiveView
    from trainer.host.session import RunSession

    session = RunSession(trainer, keep_cancelled=True)
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    live = LiveView(session, ids, console)

    def lines(events=()) -> dict[str, str]:
        session.apply(list(events))
        live.show(list(events))
        return {t.description: t.fields["info"] for t in live.progress.tasks}

    return session, lines


def test_a_run_the_trainer_took_says_what_it_waits_for_before_its_first_event():
    """At a cold start the worker imports PyTorch for seconds before it says anything: the
    run's line is there at once and says so, then follows the worker's stages."""
    trainer = FakeTrainer(Script(hold=True))
    requests = [RunRequest(config=tiny().to_dict(), preset="tiny", variant=v)
                for v in ("BN off", "BN on")]
    session, lines = waiting_view(trainer, [r.run_id for r in requests])
    session.submit(requests)
    assert lines() == {"all runs": "0/2 done"}  # queued, nobody has taken it yet
    trainer.hand_over()
    shown = lines()
    assert shown[session.records[requests[0].run_id].name(of_all=True)] == (
        "starting the trainer (importing PyTorch)…")
    assert len(shown) == 2  # the second run waits behind its own launch: the bar counts it
    shown = lines([Preparing(requests[0].run_id, "decoding CIFAR-10", 0.4)])
    assert shown[session.records[requests[0].run_id].name(of_all=True)] == (
        "decoding CIFAR-10 40%…")


def test_a_launch_queued_behind_other_clients_runs_says_how_many_are_ahead():
    trainer = FakeTrainer(Script(hold=True))
    others = [RunRequest(config=tiny().to_dict(), variant=f"theirs {i}") for i in range(2)]
    ours = [RunRequest(config=tiny().to_dict(), preset="tiny", variant="BN off")]
    trainer.submit(others)  # another client of the lab was first
    session, lines = waiting_view(trainer, [r.run_id for r in ours])
    session.submit(ours)
    name = session.records[ours[0].run_id].name(of_all=True)
    trainer.hand_over()
    assert lines()[name] == "waiting: the trainer has 2 other runs first"
    trainer.release()
    trainer.hand_over()
    assert lines()[name] == "waiting: the trainer has 1 other run first"
    trainer.release()
    trainer.hand_over()  # ours, at last
    assert lines()[name] == "starting the trainer (importing PyTorch)…"
