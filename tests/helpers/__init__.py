"""Helpers shared by the unit and functional tests (fixtures live in tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from trainer.config import RunConfig

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
"""The repository root (the checkout under test)."""

SHARED = REPO.parent / "shared"
"""The project's shared folder beside the checkout (course notes, real data); may be absent."""


def tiny(**changes: object) -> RunConfig:
    """A config that trains in about a second on CPU: synthetic data, narrow convs."""
    base: dict[str, object] = dict(dataset="synthetic", train_subset=512, widths=(8, 16, 16),
                                   epochs=2, batch_size=64, seed=0)
    base.update(changes)
    return RunConfig.from_dict(base)


async def wait_for(pilot: Any, condition: Callable[[], object], timeout: float = 10.0,
                   what: str = "condition") -> None:
    """In a Pilot test: let the app run until `condition()` holds (fail after `timeout` s).

    A condition that queries a widget not mounted yet (the charts and the toggle form mount
    after the first frame) counts as not holding yet."""
    from textual.css.query import NoMatches

    deadline = time.monotonic() + timeout
    while True:
        missing: NoMatches | None = None
        try:
            if condition():
                return
        except NoMatches as exc:
            missing = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from missing
        await pilot.pause(0.05)


def wait_until(condition: Callable[[], T], timeout: float = 10.0,
               what: str = "condition", step: float = 0.02) -> T:
    """Poll `condition` until it returns something truthy, and return that; fail with `what`
    after `timeout` s (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)
    return value
