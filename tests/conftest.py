"""Shared fixtures: every test runs with its own CNN_TUI_HOME and no network data.

Tests under tests/functional/ start real worker processes, ptys or the CLI as a subprocess;
they are marked `slow` here, so `pytest -m "not slow"` is the quick unit run.
"""

from __future__ import annotations

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
    """Keep runs, caches, data and user presets of tests away from the real user dirs."""
    home = tmp_path_factory.mktemp("cnn_tui_home")
    monkeypatch.setenv("CNN_TUI_HOME", str(home))
    monkeypatch.delenv("CNN_TUI_DATA", raising=False)
    return home


@pytest.fixture
def tiny_config():
    return tiny
