"""Shared fixtures: every test runs with its own CNN_TUI_HOME and no network data.

Tests under tests/functional/ start real worker processes, ptys or the CLI as a subprocess;
they are marked `slow` here, so `pytest -m "not slow"` is the quick unit run.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import tiny

FUNCTIONAL = Path(__file__).resolve().parent / "functional"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if FUNCTIONAL in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Keep runs, caches, data and user presets of tests away from the real user dirs.

    Clients train in a worker of their own (CNN_TUI_LAB=off) unless a test turns the lab on
    (tests/functional/test_lab.py); a lab's socket lives in a short private folder (Unix
    socket paths are limited) and it exits soon after its last client.
    """
    home = tmp_path_factory.mktemp("cnn_tui_home")
    monkeypatch.setenv("CNN_TUI_HOME", str(home))
    monkeypatch.delenv("CNN_TUI_DATA", raising=False)
    monkeypatch.setenv("CNN_TUI_LAB", "off")
    monkeypatch.delenv("CNN_TUI_DEVICES", raising=False)
    lab_dir = Path(tempfile.mkdtemp(prefix="cnn-lab-"))  # mode 0700
    monkeypatch.setenv("CNN_TUI_LAB_DIR", str(lab_dir))
    monkeypatch.setenv("CNN_TUI_LAB_IDLE_S", "5")
    yield home
    shutil.rmtree(lab_dir, ignore_errors=True)


@pytest.fixture
def tiny_config():
    return tiny
