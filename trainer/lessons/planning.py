"""A lesson (or plain settings) → the run requests of one launch, with paired seeds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trainer.config import MAX_SEED, RunConfig
from trainer.events import RunRequest, new_run_id
from trainer.lessons.preset import CUSTOM, Preset
from trainer.store.record import RunRecord, RunStatus


def new_group_id() -> str:
    """Shared by every run of one launch, so results of a launch can be told apart."""
    return "g-" + new_run_id()


def _seeded(cfg: RunConfig, repeat: int, repeats: int) -> RunConfig:
    # Repeat r of every variant gets the same seed, so variants see the same init draw and
    # batch order and differences come from the lesson's setting (a paired design).
    return cfg.replace(seed=(cfg.seed + repeat) % (MAX_SEED + 1), repeats=repeats)


def build_requests(
    preset: Preset,
    overrides: Mapping[str, Any] | None = None,
    repeats: int | None = None,
    group: str | None = None,
) -> list[RunRequest]:
    """All variants × repeats, repeat-major: a full comparison exists after the first round.

    Repeat count: `repeats` argument, else `overrides["repeats"]`, else the preset's.
    Raises ConfigError when an override is invalid.
    """
    overrides = dict(overrides or {})
    from_overrides = overrides.pop("repeats", None)
    n = RunConfig().replace(repeats=repeats or from_overrides or preset.repeats).repeats
    group = group or new_group_id()
    configs = [preset.variant_config(i, overrides) for i in range(len(preset.variants))]
    return [
        RunRequest(
            config=_seeded(cfg, r, n).to_dict(),
            preset=preset.key,
            variant=variant.label,
            repeat=r,
            group=group,
        )
        for r in range(n)
        for variant, cfg in zip(preset.variants, configs, strict=True)
    ]


def custom_requests(
    cfg: RunConfig, label: str | None = None, group: str | None = None
) -> list[RunRequest]:
    """`cfg.repeats` paired-seed runs of one plain config (preset "custom")."""
    group = group or new_group_id()
    label = label or cfg.label(skip=("repeats", "seed"))
    return [
        RunRequest(
            config=_seeded(cfg, r, cfg.repeats).to_dict(),
            preset=CUSTOM,
            variant=label,
            repeat=r,
            group=group,
        )
        for r in range(cfg.repeats)
    ]


def overrides_shadowed(preset: Preset, overrides: Mapping[str, Any]) -> list[str]:
    """Override keys that some variant sets itself, so the override has no effect there."""
    varied = set(preset.varied_keys())
    return [k for k in overrides if k in varied]


DONE = (RunStatus.FINISHED, RunStatus.DIVERGED)  # results; the other endings are not


def missing_runs(launch: Iterable[RunRecord]) -> list[RunRequest]:
    """The runs of a lesson launch that gave no result (interrupted, stopped, failed,
    cancelled), as requests with their recorded settings and the same launch, so that
    running them completes the comparison instead of starting a new one."""
    latest: dict[tuple[str, int], RunRecord] = {}
    done: set[tuple[str, int]] = set()
    for rec in launch:
        key = (rec.variant, rec.repeat)
        latest[key] = rec
        if rec.status in DONE:
            done.add(key)
    return [RunRequest(config=dict(rec.config), preset=rec.preset, variant=rec.variant,
                       repeat=rec.repeat, group=rec.group)
            for key, rec in latest.items() if key not in done and rec.terminal and rec.config]
