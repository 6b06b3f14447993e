"""RunConfig: the one typed source of truth for a training run.

The same key names are used in presets, `--set KEY=VALUE`, CSV columns and the
run store, so this module is the only place that knows which keys exist, what
they default to (the course setup from LESSONS.md) and which values are legal.
It must stay free of torch so the TUI can import it.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from trainer.formats import short_float

DATASETS = ("cifar10", "synthetic")
INITS = (
    "glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "torch_default", "normal_0.01",
)
ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh")
HEADS = ("flatten", "gap")
DOWNSAMPLES = ("maxpool", "stride2")
KERNEL_SIZES = (3, 5)
OPTIMIZERS = ("adam", "sgd", "sgd_momentum")
LR_SCHEDULES = ("none", "plateau", "cosine", "step")
LOSSES = ("cross_entropy", "mse")
INPUT_NORMS = ("unit", "standardize")
AUGMENTS = ("none", "flip_crop")

MAX_TRAIN = 50_000
MAX_SEED = 2**31 - 1


class ConfigError(ValueError):
    """A bad config value or key; `key` names the field so UIs can mark it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Field:
    """How one key is typed, checked, parsed from text and shown in labels."""

    kind: str  # "bool" | "int" | "float" | "choice" | "int_choice" | "widths"
    help: str
    choices: tuple[Any, ...] = ()
    lo: float | None = None
    hi: float | None = None
    short: str = ""  # name used in short labels, e.g. "lr"


@dataclass(frozen=True)
class RunConfig:
    """One training run; defaults reproduce the course's Keras setup."""

    dataset: str = "cifar10"
    train_subset: int = 0
    val_split: float = 0.15
    split_seed: int = 42
    batch_norm: bool = False
    init: str = "glorot_uniform"
    activation: str = "relu"
    head: str = "flatten"
    downsample: str = "maxpool"
    kernel_size: int = 3
    widths: tuple[int, ...] = (32, 64, 128)
    dropout: bool = True
    optimizer: str = "adam"
    lr: float = 0.001
    lr_schedule: str = "none"
    batch_size: int = 64
    shuffle: bool = True
    epochs: int = 30
    l2: float = 0.0
    l1: float = 0.0
    loss: str = "cross_entropy"
    input_norm: str = "unit"
    augment: str = "none"
    early_stop_patience: int = 0
    keep_best: bool = True
    seed: int = 0
    repeats: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = normalize(f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, value)

    # -- conversions -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON/TOML-friendly dict (widths as a list)."""
        out: dict[str, Any] = {}
        for key in KEYS:
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: RunConfig | None = None) -> RunConfig:
        """Build from a (possibly partial) mapping, on top of `base` or the defaults."""
        check_keys(data)
        return dataclasses.replace(base or DEFAULT, **{k: data[k] for k in data})

    def replace(self, **changes: Any) -> RunConfig:
        """A validated copy with `changes` applied."""
        check_keys(changes)
        return dataclasses.replace(self, **changes)

    def to_toml(self) -> str:
        return "".join(f"{k} = {toml_value(v)}\n" for k, v in self.to_dict().items())

    # -- describing itself ---------------------------------------------------
    def diff(self, base: RunConfig | None = None) -> dict[str, Any]:
        """Keys whose value differs from `base` (default: the course defaults)."""
        ref = base or DEFAULT
        return {k: v for k, v in self.to_dict().items() if v != ref.to_dict()[k]}

    def label(self, base: RunConfig | None = None, skip: Iterable[str] = ("repeats",)) -> str:
        """Short human label of what differs, e.g. ``BN on · lr 0.01``."""
        parts = [describe(k, v) for k, v in self.diff(base).items() if k not in set(skip)]
        return " · ".join(parts) if parts else "defaults"


# -- the schema ----------------------------------------------------------------

SCHEMA: dict[str, Field] = {
    "dataset": Field("choice", "training data (synthetic is the offline demo)", DATASETS),
    "train_subset": Field("int", "use only the first N training images (0 = all)", lo=0,
                          hi=MAX_TRAIN, short="subset"),
    "val_split": Field("float", "fraction of the training set held out for validation",
                       lo=0.01, hi=0.9, short="val"),
    "split_seed": Field("int", "seed of the train/validation split", lo=0, hi=MAX_SEED,
                        short="split seed"),
    "batch_norm": Field("bool", "conv → BatchNorm → activation", short="BN"),
    "init": Field("choice", "weight init of conv and dense kernels", INITS),
    "activation": Field("choice", "hidden-layer activation", ACTIVATIONS),
    "head": Field("choice", "Flatten+Dense300 or GlobalAveragePooling+Dense50", HEADS),
    "downsample": Field("choice", "2×2 max-pool or stride-2 conv", DOWNSAMPLES),
    "kernel_size": Field("int_choice", "conv kernel size", KERNEL_SIZES, short="kernel"),
    "widths": Field("widths", "channels of the three conv blocks", lo=1, hi=1024),
    "dropout": Field("bool", "dropout in the head"),
    "optimizer": Field("choice", "optimizer", OPTIMIZERS, short="opt"),
    "lr": Field("float", "learning rate", lo=1e-7, hi=10.0),
    "lr_schedule": Field("choice", "learning-rate schedule", LR_SCHEDULES, short="sched"),
    "batch_size": Field("int", "images per step", lo=1, hi=MAX_TRAIN, short="batch"),
    "shuffle": Field("bool", "reshuffle the training set every epoch"),
    "epochs": Field("int", "epochs to train", lo=1, hi=1000),
    "l2": Field("float", "Keras-style L2: loss + λ·Σw² over kernels", lo=0.0, hi=1.0),
    "l1": Field("float", "L1: loss + λ·Σ|w| over kernels", lo=0.0, hi=1.0),
    "loss": Field("choice", "training loss", LOSSES),
    "input_norm": Field("choice", "pixels to 0–1, or per-channel mean 0 / std 1", INPUT_NORMS,
                        short="input"),
    "augment": Field("choice", "random horizontal flip + 4-pixel crop", AUGMENTS, short="aug"),
    "early_stop_patience": Field("int", "stop after N epochs without val-loss gain (0 = off)",
                                 lo=0, hi=1000, short="early stop"),
    "keep_best": Field("bool", "test with the best-val-loss weights", short="keep-best"),
    "seed": Field("int", "seed of init, data order and dropout", lo=0, hi=MAX_SEED),
    "repeats": Field("int", "runs per variant, with paired seeds", lo=1, hi=100),
}
KEYS: tuple[str, ...] = tuple(SCHEMA)
MAX_WIDTHS = 5  # 32 px halves five times at most


# Keys that may differ between runs trained together as one wide model (see
# trainer.engine.grouped): the seed, and `repeats`, which only counts the launch's runs.
PER_RUN_KEYS = ("seed", "repeats")


def shared_step_key(config: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """What runs must agree on to share one training step, or None when this run cannot
    share one: every key but the seed, and no plateau schedule (its lr follows each run's own
    validation loss, while a shared step uses one lr)."""
    try:
        cfg = RunConfig.from_dict(config)
    except (ConfigError, TypeError, ValueError):
        return None
    if cfg.lr_schedule == "plateau":
        return None
    return tuple((k, tuple(v) if isinstance(v, list) else v)
                 for k, v in cfg.to_dict().items() if k not in PER_RUN_KEYS)


def check_keys(data: Iterable[str]) -> None:
    """Raise ConfigError for the first unknown key, suggesting the closest one."""
    for key in data:
        if key not in SCHEMA:
            raise ConfigError(str(key), unknown_key_message(str(key)))


def unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.5)
    if not close:
        # Also try ignoring underscores ("batchsize" → "batch_size").
        squashed = {k.replace("_", ""): k for k in KEYS}
        hit = difflib.get_close_matches(key.replace("_", "").lower(), squashed, n=1, cutoff=0.6)
        close = [squashed[hit[0]]] if hit else []
    hint = f" — did you mean '{close[0]}'?" if close else f" (known keys: {', '.join(KEYS)})"
    return f"unknown key '{key}'{hint}"


def _range(f: Field) -> tuple[float, float]:
    """The bounds of a numeric field (every int, float and widths field has both)."""
    assert f.lo is not None and f.hi is not None, f"{f.kind} field without bounds"
    return f.lo, f.hi


def allowed(key: str) -> str:
    """Human text for the allowed values of `key`."""
    f = SCHEMA[key]
    if f.kind == "bool":
        return "true or false"
    if f.kind in ("choice", "int_choice"):
        return "one of " + ", ".join(str(c) for c in f.choices)
    if f.kind == "int":
        lo, hi = _range(f)
        return f"an integer from {int(lo)} to {int(hi)}"
    if f.kind == "float":
        return f"a number from {short_float(f.lo)} to {short_float(f.hi)}"
    lo, hi = _range(f)
    return (f"1 to {MAX_WIDTHS} comma-separated integers from {int(lo)} to {int(hi)}"
            ", e.g. 32,64,128")


def _bad(key: str, value: Any) -> ConfigError:
    shown = f"'{value}'" if isinstance(value, str) else format_value(key, value)
    return ConfigError(key, f"{key} must be {allowed(key)}, got {shown}")


def normalize(key: str, value: Any) -> Any:
    """Check a typed value (as from TOML/JSON) and return its canonical form."""
    f = SCHEMA[key]
    if f.kind == "bool":
        if isinstance(value, bool):
            return value
        raise _bad(key, value)
    if f.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(key, value)
        if isinstance(value, float) and not value.is_integer():
            raise _bad(key, value)
        lo, hi = _range(f)
        if not lo <= value <= hi:
            raise _bad(key, value)
        return int(value)
    if f.kind == "float":
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or not math.isfinite(value):
            raise _bad(key, value)
        lo, hi = _range(f)
        if not lo <= value <= hi:
            raise _bad(key, value)
        return float(value)
    if f.kind == "choice":
        if value in f.choices:
            return value
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [str(c) for c in f.choices], n=1, cutoff=0.6)
            if close:
                err = _bad(key, value)
                raise ConfigError(key, f"{err.message} — did you mean '{close[0]}'?")
        raise _bad(key, value)
    if f.kind == "int_choice":
        if not isinstance(value, bool) and isinstance(value, int) and value in f.choices:
            return int(value)
        raise _bad(key, value)
    if f.kind == "widths":
        lo, hi = _range(f)
        if isinstance(value, list | tuple) and 1 <= len(value) <= MAX_WIDTHS and all(
            isinstance(w, int) and not isinstance(w, bool) and lo <= w <= hi for w in value
        ):
            return tuple(int(w) for w in value)
        raise _bad(key, value)
    raise AssertionError(f"unhandled kind {f.kind}")


_TRUE = {"true", "on", "yes", "1", "y"}
_FALSE = {"false", "off", "no", "0", "n"}


def parse_value(key: str, text: str) -> Any:
    """Parse user text (CLI `--set`, a TUI input) for `key` into a checked value."""
    if key not in SCHEMA:
        raise ConfigError(key, unknown_key_message(key))
    f = SCHEMA[key]
    raw = text.strip()
    value: Any
    if f.kind == "bool":
        low = raw.lower()
        if low in _TRUE:
            value = True
        elif low in _FALSE:
            value = False
        else:
            raise _bad(key, raw)
    elif f.kind in ("int", "int_choice"):
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            try:
                as_float = float(raw)
            except ValueError:
                raise _bad(key, raw) from None
            if not as_float.is_integer():
                raise _bad(key, raw) from None
            value = int(as_float)
    elif f.kind == "float":
        try:
            value = float(raw)
        except ValueError:
            raise _bad(key, raw) from None
    elif f.kind == "widths":
        inner = raw.strip("[]() ")
        try:
            value = [int(p) for p in inner.replace(" ", ",").split(",") if p]
        except ValueError:
            raise _bad(key, raw) from None
    else:
        value = raw
    return normalize(key, value)


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` (as given to `--set`)."""
    if "=" not in text:
        raise ConfigError(text, f"--set expects KEY=VALUE, got '{text}'")
    key, _, raw = text.partition("=")
    key = key.strip().replace("-", "_")
    return key, parse_value(key, raw)


def format_value(key: str, value: Any) -> str:
    """The text a user would type for `value` (inverse of parse_value)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return short_float(value)
    return str(value)


_LABELS: dict[str, Callable[[Any], str]] = {
    "batch_norm": lambda v: "BN on" if v else "BN off",
    "shuffle": lambda v: "shuffle on" if v else "shuffle off",
    "dropout": lambda v: "dropout on" if v else "dropout off",
    "keep_best": lambda v: "keep-best on" if v else "keep-best off",
    "head": lambda v: "GAP head" if v == "gap" else "Flatten head",
    "downsample": lambda v: "stride-2 conv" if v == "stride2" else "max-pool",
    "kernel_size": lambda v: f"{v}×{v} kernels",
    "widths": lambda v: "widths " + "-".join(str(w) for w in v),
    "dataset": lambda v: str(v),
}


def describe(key: str, value: Any) -> str:
    """One key=value as a short phrase for labels (``lr 0.01``, ``BN on``)."""
    if key in _LABELS:
        return _LABELS[key](value)
    name = SCHEMA[key].short or key
    return f"{name} {format_value(key, value)}"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


DEFAULT = RunConfig()
