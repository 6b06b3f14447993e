"""ToggleState: the config the user is about to run, edits and invalid texts included.

The selected lesson, the start-up overrides (`--epochs`, `--set` …) and the user's edits per
lesson, with invalid texts kept next to their reasons so a bad value can be shown at its
field and block a start without ever reaching the trainer. Plain Python, no Textual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.config import DEFAULT, KEYS, ConfigError, RunConfig, describe, parse_value
from trainer.events import RunRequest
from trainer.lessons.planning import build_requests, custom_requests, new_group_id
from trainer.lessons.preset import CUSTOM, Preset

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Data", ("dataset", "train_subset", "val_split", "split_seed", "input_norm", "augment")),
    ("Model", ("batch_norm", "init", "activation", "head", "downsample", "kernel_size",
               "widths", "dropout")),
    ("Training", ("optimizer", "lr", "lr_schedule", "batch_size", "shuffle", "epochs", "l2",
                  "l1", "loss", "early_stop_patience", "keep_best")),
    ("Runs", ("seed", "repeats")),
)
"""The toggles panel's sections, in the order a course student thinks about them."""

assert sorted(k for _, keys in GROUPS for k in keys) == sorted(KEYS), "every key has a section"


class ToggleState:
    """The config the user is about to run: lesson base ← start options ← edits.

    Edits are remembered per lesson (switching lessons and back keeps them) and are compared
    with the lesson's own base, so the panel can say exactly what the user changed.
    """

    def __init__(self, presets: Mapping[str, Preset], overrides: Mapping[str, Any] | None = None):
        self.presets = dict(presets)
        self.overrides: dict[str, Any] = dict(overrides or {})
        self.lesson: str = next(iter(self.presets), CUSTOM)
        self._edits: dict[str, dict[str, Any]] = {}
        self._errors: dict[str, dict[str, tuple[str, str]]] = {}  # key → (text, reason)

    # -- which lesson ---------------------------------------------------------------------------
    @property
    def preset(self) -> Preset | None:
        return self.presets.get(self.lesson)

    def select(self, key: str) -> None:
        self.lesson = key if key in self.presets else CUSTOM

    @property
    def title(self) -> str:
        p = self.preset
        return p.title if p else "Custom run"

    # -- configs --------------------------------------------------------------------------------
    def lesson_base(self) -> RunConfig:
        """The lesson's own base (defaults for custom), before start options and edits."""
        return self._base_of(self.lesson)

    def _base_of(self, key: str) -> RunConfig:
        p = self.presets.get(key)
        return p.base_config().replace(repeats=p.repeats) if p else DEFAULT

    def start_base(self) -> RunConfig:
        """Lesson base with the start-up overrides applied: what an unedited run uses."""
        return self.lesson_config(self.lesson)

    @property
    def edits(self) -> dict[str, Any]:
        return self._edits.setdefault(self.lesson, {})

    @property
    def errors(self) -> dict[str, tuple[str, str]]:
        """key → (the text typed, why it is invalid) for the current lesson."""
        return self._errors.setdefault(self.lesson, {})

    def config(self) -> RunConfig:
        """The valid config the toggles describe (an invalid field counts as not edited)."""
        return self.start_base().replace(**self.edits)

    def value(self, key: str) -> Any:
        return self.config().to_dict()[key]

    def source(self, key: str) -> str:
        """Where the current value comes from: edited | option | lesson | default."""
        if key in self.edits:
            return "edited"
        if key in self.overrides:
            return "option"
        p = self.preset
        if (p and key in p.base) or (p and key == "repeats" and p.repeats != DEFAULT.repeats):
            return "lesson"
        return "default"

    def changes(self) -> dict[str, Any]:
        """What differs from the lesson's base (start options and edits), for the summary."""
        return self.config().diff(self.lesson_base())

    def varied_keys(self) -> list[str]:
        """Keys the lesson's variants set themselves (an edit there does not reach `r` runs)."""
        p = self.preset
        return p.varied_keys() if p else []

    # -- editing --------------------------------------------------------------------------------
    def set_text(self, key: str, text: str) -> str | None:
        """Apply typed text; returns the reason when it is invalid (and remembers it)."""
        try:
            value = parse_value(key, text)
            self.start_base().replace(**{**self.edits, key: value})
        except ConfigError as err:
            self.errors[key] = (text, err.message)
            # A half-typed value ("6" on the way to "6x") is no edit: the summaries list
            # what would run, and nothing runs until the field is valid.
            self.edits.pop(key, None)
            return err.message
        self.errors.pop(key, None)
        self._set(key, value)
        return None

    def set_value(self, key: str, value: Any) -> None:
        """Apply a value from a switch or select (always valid)."""
        self.errors.pop(key, None)
        self._set(key, value)

    def _set(self, key: str, value: Any) -> None:
        base = self.start_base().to_dict()[key]
        canonical = RunConfig.from_dict({key: value}).to_dict()[key]
        if canonical == base:
            self.edits.pop(key, None)
        else:
            self.edits[key] = canonical

    def reset(self) -> None:
        """Forget this lesson's edits and invalid texts."""
        self.edits.clear()
        self.errors.clear()

    def set_override(self, key: str, value: Any) -> None:
        """A session-wide option (e.g. `d` switches the dataset for every lesson)."""
        self.overrides[key] = RunConfig.from_dict({key: value}).to_dict()[key]
        for edits in self._edits.values():
            edits.pop(key, None)

    # -- remembered between launches of the app (tui.state.prefs) ----------------------------
    def remembered(self) -> dict[str, dict[str, Any]]:
        """Every lesson's valid edits (invalid texts are never remembered)."""
        return {lesson: dict(edits) for lesson, edits in self._edits.items() if edits}

    def restore(self, edits: Mapping[str, Mapping[str, Any]], lesson: str = "") -> None:
        """Edits from an earlier launch; a start option (`--epochs` …) wins over an edit of
        the same key, and edits of lessons that are no longer there are dropped."""
        for key, values in edits.items():
            if key in self.presets or key == CUSTOM:
                kept = {k: v for k, v in values.items() if k not in self.overrides}
                try:
                    self.lesson_config(key).replace(**kept)
                except (ConfigError, TypeError, ValueError):
                    continue  # together they no longer make a valid config: start afresh
                self._edits[key] = dict(kept)
        if lesson in self.presets or lesson == CUSTOM:
            self.lesson = lesson

    def lesson_config(self, key: str) -> RunConfig:
        """The start base of lesson `key`: its base with the start-up overrides applied."""
        return self._base_of(key).replace(**self.overrides)

    def blocking_error(self) -> tuple[str, str] | None:
        """(key, reason) of the first invalid field, in panel order; None when all are valid."""
        for _, keys in GROUPS:
            for key in keys:
                if key in self.errors:
                    return key, self.errors[key][1]
        return None

    # -- requests -------------------------------------------------------------------------------
    def run_overrides(self) -> dict[str, Any]:
        """Start options and edits, as overrides on top of every variant of the lesson."""
        return {**self.overrides, **self.edits}

    def lesson_requests(self) -> list[RunRequest]:
        """Every variant × repeat of the selected lesson (custom: the toggles themselves)."""
        p = self.preset
        if p is None:
            return self.toggle_requests()
        overrides = self.run_overrides()
        repeats = overrides.pop("repeats", None)
        return build_requests(p, overrides, repeats=repeats or p.repeats)

    def toggle_requests(self) -> list[RunRequest]:
        """The current toggles as one variant, labelled by what the user changed."""
        cfg = self.config()
        changed = {k: v for k, v in cfg.diff(self.start_base()).items()
                   if k not in ("repeats", "seed")}
        if changed:
            label = " · ".join(describe(k, v) for k, v in changed.items())
        else:
            label = "lesson base" if self.preset else "defaults"
        return custom_requests(cfg, label=label, group=new_group_id())
