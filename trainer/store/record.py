"""RunRecord: the one typed shape of a run, from queued placeholder to stored result.

Every reader — the store, the CSV export, the statistics, the TUI and the CLI — works with
`RunRecord`, never with the JSON dict; `trainer.store.parse.parse_record` is the single door
from a JSON document into it. The JSON layout on disk is schema 1, unchanged since the first
release: `to_json` writes it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from trainer.events import LayerStats, RunRequest, TestDiagnosis
from trainer.text import clean, first_line

SCHEMA_VERSION = 1


MAX_ID_LENGTH = 200


def safe_run_id(run_id: str) -> bool:
    """Whether `run_id` can name a file in the runs folder: non-empty, at most 200 characters,
    no path separator, no leading '.', no control characters."""
    return (0 < len(run_id) <= MAX_ID_LENGTH and not run_id.startswith(".")
            and "/" not in run_id and "\\" not in run_id and clean(run_id) == run_id)


class RunStatus(StrEnum):
    """Where a run stands. `queued` rows exist only in a UI; `cancelled` only in a CLI's
    final table (a queued run dropped by Ctrl-C); the rest are stored."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    DIVERGED = "diverged"  # the loss became NaN/inf: a result (of a too-high lr …), not a success
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """The run has ended and its record will not change again."""
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def cut_short(self) -> bool:
        """Ended early by the user or a dead trainer: no test result to compare."""
        return self in (RunStatus.STOPPED, RunStatus.INTERRUPTED)


class EpochRow(NamedTuple):
    """One finished epoch as the loop reported it.

    A named tuple rather than a dataclass: a store holds tens of thousands of these and a
    tuple is built several times faster, which is most of the time a large store takes to load.
    """

    epoch: int  # 1-based
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    is_best: bool = False  # best val loss so far (the kept checkpoint when keep_best)
    lr_dropped: bool = False  # the schedule lowered the lr after this epoch


class ProbeEpoch(NamedTuple):
    """The layer statistics of one epoch (see trainer.engine.probes), in network order."""

    epoch: int
    layers: tuple[LayerStats, ...]


LAYER_FIELDS = ("act_mean", "act_std", "off", "grad_norm")  # the per-layer series in JSON


@dataclass(frozen=True)
class RunSummary:
    """The run's result numbers; partial (best so far) while it runs or when it was cut."""

    test_loss: float | None = None
    test_acc: float | None = None
    best_epoch: int | None = None
    best_val_acc: float | None = None
    best_val_loss: float | None = None
    epochs_done: int | None = None
    train_seconds: float | None = None
    images_per_s: float | None = None
    early_stopped: bool = False


@dataclass(frozen=True)
class RunError:
    """Why a run failed (or was interrupted); `message` may hold a multi-line fix-it text."""

    kind: str  # "error" | "out_of_memory" | "data" | "config" | "worker_died" | "interrupted"
    # | "diverged"
    message: str
    traceback: str = ""

    @property
    def line(self) -> str:
        """The one-line reason shown in tables."""
        return first_line(self.message)


@dataclass(frozen=True)
class RunEnv:
    """Where the run trained."""

    device: str = ""
    device_name: str = ""
    torch: str = ""
    python: str = ""
    host: str = ""
    worker_pid: int | None = None
    trained_together: int = 1  # runs (this one included) trained as one wide model
    cuda_graph: bool = False  # the training step ran as a captured CUDA graph

    def to_json(self) -> dict[str, Any]:
        """The "env" object; the two "how it trained" keys only when they say something, so a
        run trained alone and eagerly is stored exactly as before they existed."""
        doc = dataclasses.asdict(self)
        for key in ("trained_together", "cuda_graph"):
            if doc[key] == getattr(RunEnv, key):
                del doc[key]
        return doc


@dataclass(frozen=True)
class RunRecord:
    """One run: identity, settings, progress through epochs, result or reason."""

    run_id: str
    config: Mapping[str, Any]  # RunConfig.to_dict() of the run (read-only by convention)
    preset: str = ""
    variant: str = ""
    repeat: int = 0  # 0-based index of the repeat (paired seed) within the launch
    group: str = ""  # the launch: every variant × repeat of one `r` shares it
    status: RunStatus = RunStatus.QUEUED
    created: str = ""
    updated: str = ""
    env: RunEnv = field(default_factory=RunEnv)
    params: int | None = None
    steps_per_epoch: int | None = None
    train_size: int | None = None
    val_size: int | None = None
    test_size: int | None = None
    dataset_note: str = ""
    history: tuple[EpochRow, ...] = ()
    summary: RunSummary = field(default_factory=RunSummary)
    error: RunError | None = None
    notices: tuple[str, ...] = ()  # warnings met during the run (store I/O, data)
    probes: tuple[ProbeEpoch, ...] = ()  # per-epoch layer statistics; () = not recorded
    diagnosis: TestDiagnosis | None = None  # where the final model is wrong; None = not recorded
    label: str = ""  # the user's own name for the run (set after it ended)
    note: str = ""  # the user's note about the run
    # Why the run's file on disk is behind what a client saw (never itself written to disk).
    save_error: str = ""

    # -- derived -------------------------------------------------------------------------
    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def epochs(self) -> int:
        """Epochs the run was configured for."""
        value = self.config.get("epochs")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def epochs_done(self) -> int:
        done = self.summary.epochs_done
        return done if done is not None else len(self.history)

    @functools.cached_property
    def seconds_per_epoch(self) -> float | None:
        """Mean wall time of the finished epochs (validation included); computed once, as
        the record never changes (tables sort and show it for thousands of runs)."""
        secs = [h.seconds for h in self.history if math.isfinite(h.seconds) and h.seconds > 0]
        return sum(secs) / len(secs) if secs else None

    @property
    def best_epoch(self) -> int | None:
        """The best-val epoch: the result's, else the latest epoch flagged best so far."""
        if self.summary.best_epoch:
            return self.summary.best_epoch
        flagged = [h.epoch for h in self.history if h.is_best]
        return flagged[-1] if flagged else None

    @property
    def error_line(self) -> str:
        return self.error.line if self.error is not None else ""

    def name(self, of_all: bool = False) -> str:
        """'BN on #2' (with `of_all`: 'BN on #2/3'); the repeat only when the launch has
        several."""
        n = self.config.get("repeats", 1)
        if not isinstance(n, int) or n <= 1:
            return self.variant
        return f"{self.variant} #{self.repeat + 1}" + (f"/{n}" if of_all else "")

    def with_changes(self, **changes: Any) -> RunRecord:
        return dataclasses.replace(self, **changes)

    # -- JSON ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The schema-1 document the store writes (keys in the order people read them)."""
        doc: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "run_id": self.run_id,
            "group": self.group,
            "preset": self.preset,
            "variant": self.variant,
            "repeat": self.repeat,
            "config": dict(self.config),
            "status": self.status.value,
            "created": self.created,
            "updated": self.updated,
            "env": self.env.to_json() if self.env != RunEnv() else {},
            "params": self.params,
            "steps_per_epoch": self.steps_per_epoch,
            "train_size": self.train_size,
            "val_size": self.val_size,
            "test_size": self.test_size,
            "dataset_note": self.dataset_note,
            "history": [h._asdict() for h in self.history],
            "summary": {k: v for k, v in dataclasses.asdict(self.summary).items()
                        if v is not None and v is not False},
            "error": dataclasses.asdict(self.error) if self.error is not None else None,
        }
        if self.notices:
            doc["notices"] = list(self.notices)
        if self.probes:
            doc["probes"] = probes_json(self.probes)
        if self.diagnosis is not None:
            doc["test_diagnosis"] = diagnosis_json(self.diagnosis)
        for key in ("label", "note"):  # only when set: older readers never see them
            if getattr(self, key):
                doc[key] = getattr(self, key)
        return doc

    @classmethod
    def from_request(cls, request: RunRequest, status: RunStatus = RunStatus.QUEUED,
                     created: str = "") -> RunRecord:
        """A record for a run known only by its request: queued in a UI, or failed before
        it started (bad config, missing data, worker died while loading)."""
        return cls(run_id=request.run_id, config=dict(request.config), preset=request.preset,
                   variant=request.variant, repeat=request.repeat, group=request.group,
                   status=status, created=created, updated=created)


def probes_json(probes: tuple[ProbeEpoch, ...]) -> dict[str, Any]:
    """Columns, not rows: one series per layer and statistic (a third of the size of one
    object per layer and epoch). Epochs whose layers differ from the first's are left out."""
    names = [layer.name for layer in probes[0].layers]
    kept = [p for p in probes if [layer.name for layer in p.layers] == names]
    return {
        "epochs": [p.epoch for p in kept],
        "layers": [{"name": name, **{f: [getattr(p.layers[i], f) for p in kept]
                                     for f in LAYER_FIELDS}}
                   for i, name in enumerate(names)],
    }


def diagnosis_json(d: TestDiagnosis) -> dict[str, Any]:
    """The test diagnosis; `class_acc` is written for people reading the file (the parser
    recomputes it from the matrix). The test-images key and the first layer's filters only
    when known, so a diagnosis without them is stored exactly as before they existed."""
    doc: dict[str, Any] = {
        "classes": list(d.classes),
        "confusion": [list(row) for row in d.confusion],
        "class_acc": list(d.class_acc),
        "confident_right": list(d.confident_right),
        "confident_wrong": list(d.confident_wrong),
        "mistakes": [dataclasses.asdict(m) for m in d.mistakes],
    }
    if d.test_images:
        doc["test_images"] = d.test_images
    if d.filters is not None:
        doc["filters"] = {"shape": list(d.filters.shape), "values": list(d.filters.values)}
    return doc
