"""A lesson: variants that differ in exactly the setting the lesson is about, plus the
course's finding in words (`expect`) and as machine-checkable claims (for the verdict).

Plain frozen dataclasses; `trainer.lessons.presets` builds them from TOML files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.config import RunConfig, describe
from trainer.text import clean

CUSTOM = "custom"  # the preset name of runs launched from plain settings, not a lesson
EXPECTS = ("higher", "lower", "similar")


@dataclass(frozen=True)
class Variant:
    """One arm of the experiment: a label and the settings it changes."""

    label: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """`variant` vs the baseline on `metric` should come out `expect`ed.

    `effect` is the course's effect-size range as [low, high] of (variant − baseline) in metric
    units, so it is negative for "lower" claims (accuracies are fractions: 0.05 = 5 points).
    `tolerance` is the largest |variant − baseline| that still counts as "similar".
    """

    variant: str
    metric: str
    expect: str  # "higher" | "lower" | "similar"
    effect: tuple[float, float] | None = None
    tolerance: float | None = None


@dataclass(frozen=True)
class PresetProblem:
    """Why one lesson file could not be used; `str()` is the one-line message to show."""

    path: Path
    message: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        path = clean(str(self.path), single_line=True)
        where = f"{path}, line {self.line}" if self.line else path
        return f"{where}: {clean(self.message, single_line=True)}"


@dataclass(frozen=True)
class Preset:
    """A loaded, fully validated lesson."""

    key: str
    title: str
    summary: str
    lesson: str
    expect: str
    base: dict[str, Any]
    variants: list[Variant]
    repeats: int
    claims: list[Claim]
    try_next: list[str]
    source: Path
    order: int = 1000

    @property
    def baseline(self) -> Variant:
        return self.variants[0]

    @property
    def labels(self) -> list[str]:
        return [v.label for v in self.variants]

    def varied_keys(self) -> list[str]:
        """Setting keys some variant changes, in first-seen order: the lesson's 'toggles'."""
        seen: dict[str, None] = {}
        for v in self.variants:
            seen.update(dict.fromkeys(v.changes))
        return list(seen)

    def base_config(self, overrides: Mapping[str, Any] | None = None) -> RunConfig:
        """Defaults ← preset base ← user overrides."""
        return RunConfig.from_dict(dict(overrides or {}), base=RunConfig.from_dict(self.base))

    def variant_config(self, index: int, overrides: Mapping[str, Any] | None = None) -> RunConfig:
        """The base config with variant `index`'s changes on top (the lesson's keys win)."""
        return self.base_config(overrides).replace(**self.variants[index].changes)

    def variant_index(self, label: str) -> int:
        return self.labels.index(label)


def variant_summary(preset: Preset, index: int) -> str:
    """Short text of what variant `index` sets, e.g. 'BN on · init he_normal'."""
    return " · ".join(describe(k, v) for k, v in preset.variants[index].changes.items())
