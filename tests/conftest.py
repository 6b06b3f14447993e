"""Shared fixtures: every test runs with its own CNN_TUI_HOME and no network data."""

from __future__ import annotations

import pytest

from trainer.config import RunConfig


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Keep runs, caches, data and user presets of tests away from the real user dirs."""
    home = tmp_path_factory.mktemp("cnn_tui_home")
    monkeypatch.setenv("CNN_TUI_HOME", str(home))
    monkeypatch.delenv("CNN_TUI_DATA", raising=False)
    return home


def tiny(**changes) -> RunConfig:
    """A config that trains in about a second on CPU: synthetic data, narrow convs."""
    base = dict(dataset="synthetic", train_subset=512, widths=(8, 16, 16), epochs=2,
                batch_size=64, seed=0)
    base.update(changes)
    return RunConfig.from_dict(base)


@pytest.fixture
def tiny_config():
    return tiny
