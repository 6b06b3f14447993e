"""Per-user default locations (runs, data, cache, user presets).

`CNN_TUI_HOME` puts all of them under one folder, which keeps tests and CI runs isolated
from a user's real data; otherwise platformdirs picks the OS-appropriate places.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from platformdirs import user_cache_path, user_config_path, user_data_path, user_state_path

APP = "cnn-tui"


def _home() -> Path | None:
    value = os.environ.get("CNN_TUI_HOME")
    return Path(value).expanduser() if value else None


def runs_dir() -> Path:
    """Where the run store lives unless `--runs-dir` says otherwise."""
    home = _home()
    return (home / "runs") if home else user_data_path(APP) / "runs"


def cache_dir() -> Path:
    """Decoded-dataset tensor caches (safe to delete)."""
    home = _home()
    return (home / "cache") if home else user_cache_path(APP)


DATASET_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a plain file-name part


def test_images_file(key: str) -> Path | None:
    """The test images of dataset `key` (uint8 [N,32,32,3] .npy, written by the worker beside
    the dataset cache, read by the Inside view), or None when `key` is not a plain name.

    The key comes from a run record, which may have been copied from elsewhere or edited, so
    it only ever names a file in this machine's own cache folder: never a path."""
    if not DATASET_KEY.fullmatch(key):
        return None
    return cache_dir() / f"{key}-test.npy"


def data_dir() -> Path:
    """Dataset folder: `CNN_TUI_DATA`, else a per-user cache folder."""
    env = os.environ.get("CNN_TUI_DATA")
    if env:
        return Path(env).expanduser()
    home = _home()
    return (home / "data") if home else user_cache_path(APP) / "data"


def user_presets_dir() -> Path:
    """Lesson files a user or instructor adds; loaded after the built-in ones."""
    home = _home()
    return (home / "presets") if home else user_config_path(APP) / "presets"


def state_dir() -> Path:
    """Per-user state that is neither data nor cache (the lab's socket, key and queue)."""
    home = _home()
    return (home / "state") if home else user_state_path(APP)


def settings_file() -> Path:
    """The user's remembered preferences (toggle edits, theme, view choices)."""
    home = _home()
    return (home / "settings.json") if home else user_config_path(APP) / "settings.json"
