"""Hostile files through the real `cnn-tui` commands, as subprocesses (issue 11).

Exit status, the file and field named in the warning, the good records still exported, and
no terminal escape byte in anything written to stdout or stderr.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from helpers import REPO


def cnn_tui(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """`python -m trainer …` (the headless CLI), bytes in, bytes out: nothing is decoded away."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "trainer", *args], capture_output=True,
                          timeout=timeout, cwd=REPO, env=env)


def good(run_id: str) -> dict:
    return {"schema": 1, "run_id": run_id, "status": "finished", "preset": "p",
            "variant": "v\x1b]2;pwned\x07", "repeat": 0, "group": "g", "config": {"lr": 0.01},
            "history": [], "summary": {"test_acc": 0.5}, "error": None,
            "env": {"device": "cpu"}}


def test_export_skips_every_kind_of_bad_file_and_names_it(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "a.json").write_text(json.dumps(good("a")))
    (runs / "b.json").write_text(json.dumps(good("b")))
    (runs / "summary.json").write_text(json.dumps({**good("c"), "summary": "oops"}))
    (runs / "lr.json").write_text(json.dumps({**good("d"), "config": {"lr": "fast"}}))
    (runs / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (runs / "markup.json").write_text(json.dumps({**good("e"), "status": "[bold red]x[/]"}))
    os.mkfifo(runs / "x.json")
    (runs / "z.json").symlink_to("/dev/zero")
    out = tmp_path / "all.csv"
    proc = cnn_tui("export", "--csv", str(out), "--runs-dir", str(runs))
    assert proc.returncode == 0, proc.stderr
    assert b"\x1b" not in proc.stdout + proc.stderr and b"\x07" not in proc.stderr
    err = proc.stderr.decode()
    for name, field in (("summary.json", "summary"), ("lr.json", "config.lr"),
                        ("deep.json", "nested"), ("x.json", "regular"), ("z.json", "regular"),
                        ("markup.json", "status")):
        assert name in err and field in err, (name, err)
    assert "[bold red]x[/]" in err  # shown as written, not as colour
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted(r["run_id"] for r in rows) == ["a", "b"]
    assert rows[0]["variant"] == "v␛]2;pwned␇"


def test_presets_show_lesson_text_literally(tmp_path):
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (lessons / "evil.toml").write_text(
        'title = "[bold red]Evil[/] \\u001b]2;pwned\\u0007"\nsummary = "[link=http://x]x[/link]"\n'
        'lesson = "l"\nexpect = "e"\n[[variants]]\nlabel = "a \\u001b[2J"\n'
        "[[variants]]\nlabel = \"b\"\nbatch_norm = true\n")
    (lessons / "deep.toml").write_text("order = " + "[" * 5000 + "]" * 5000 + "\n")
    proc = cnn_tui("presets", "--presets-dir", str(lessons))
    assert proc.returncode == 0, proc.stderr
    assert b"\x1b" not in proc.stdout + proc.stderr
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert "[bold red]Evil[/]" in out and "a ␛[2J" in out
    assert "deep.toml" in err and "nested too deeply" in err
    shown = cnn_tui("presets", "evil", "--presets-dir", str(lessons))
    assert shown.returncode == 0 and b"\x1b" not in shown.stdout
    assert "[link=http://x]x[/link]" in shown.stdout.decode()


def test_a_diverging_run_is_diverged_not_finished(tmp_path):
    proc = cnn_tui("run", "--dataset", "synthetic", "--set", "train_subset=256", "--set",
                   "widths=8,8,8", "--epochs", "3", "--device", "cpu", "--set",
                   "optimizer=sgd_momentum", "--set", "lr=10", "--runs-dir", str(tmp_path),
                   "--csv", str(tmp_path / "out.csv"), timeout=300)
    out = proc.stdout.decode()
    assert proc.returncode == 1, out + proc.stderr.decode()
    assert "diverged" in out and "finished" not in out.split("Results", 1)[1]
    (row,) = csv.DictReader((tmp_path / "out.csv").open())
    assert row["status"] == "diverged" and "diverged in epoch" in row["error"]


def test_nothing_saved_is_said_and_exits_1(tmp_path):
    env_fault = {"CNN_TUI_FAULT": "disk_full@1"}
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "run", "--dataset", "synthetic", "--set",
         "train_subset=256", "--set", "widths=8,8,8", "--epochs", "2", "--device", "cpu",
         "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, timeout=300, cwd=REPO, env={**os.environ, **env_fault})
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "not saved" in err and "No space left on device" in err
    assert "(not saved)" in proc.stdout.decode()


