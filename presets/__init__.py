"""The built-in lesson presets (TOML files shipped as package data)."""

from pathlib import Path

BUILTIN_DIR = Path(__file__).resolve().parent
