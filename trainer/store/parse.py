"""`parse_record`: the one door from a JSON document into a RunRecord.

Run folders are copied between machines and shared, so a document may have been edited or
forged: every field's type is checked, text from the file is made safe to show
(`trainer.text.clean`), sizes are bounded, and the error names the field that is wrong, so
one bad file is skipped with a clear reason and the others load. Files written by every
earlier version load (a stale `progress` field is ignored).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from trainer.config import KEYS, ConfigError, normalize
from trainer.events import MAX_FILTERS, Filters, LayerStats, Mistake, TestDiagnosis
from trainer.paths import DATASET_KEY
from trainer.store.record import (
    LAYER_FIELDS,
    SCHEMA_VERSION,
    EpochRow,
    ProbeEpoch,
    RunEnv,
    RunError,
    RunRecord,
    RunStatus,
    RunSummary,
    safe_run_id,
)
from trainer.text import clean

MAX_TEXT = 20_000  # longer text fields are cut (a traceback, a fix-it message)
MAX_LABEL = 80  # a run's own name (shown in a table cell)
MAX_NOTE = 2_000  # a run's note (shown in the run detail)
MAX_HISTORY = 100_000  # epochs; a real run has at most a few thousand
MAX_INT = 2**53  # counts, sizes, pids: far above any real one, and exact as a JSON number
# Bounds of the look-inside data: a run has 1–1000 epochs, the course CNN 8 layers and 10
# classes, and the loop keeps 32 mistakes in 10 bins; the limits leave room, never megabytes.
MAX_PROBE_EPOCHS = 1000
MAX_LAYERS = 64
MAX_CLASSES = 100
MAX_BINS = 100
MAX_MISTAKES = 100
MAX_NAME = 100
MAX_KERNEL = 9  # first-layer filters: the course offers 3×3 and 5×5


class RecordError(ValueError):
    """A JSON document is not a valid run record; `field` names the offending field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"'{field_name}' {message}" if field_name else message)
        self.field = field_name
        self.message = str(self)


def _text(doc: Mapping[str, Any], key: str, where: str = "", default: str = "",
          single_line: bool = True) -> str:
    value = doc.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RecordError(where + key, f"must be text, got {_kind(value)}")
    return clean(value[:MAX_TEXT], single_line=single_line)


def _int(doc: Mapping[str, Any], key: str, where: str = "", *, default: int | None = None,
         lo: int = 0) -> int | None:
    value = doc.get(key, default)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(where + key, f"must be a whole number, got {_kind(value)}")
    if not lo <= value <= MAX_INT:
        raise RecordError(where + key, f"must be a whole number from {lo} to {MAX_INT:,}")
    return value


def _float(doc: Mapping[str, Any], key: str, where: str = "") -> float | None:
    """A number or None; NaN and ±inf are kept (a diverged run reports them honestly)."""
    if doc.get(key) is None:
        return None
    return _number(doc, key, where)


def _optional_fraction(doc: Mapping[str, Any], key: str, where: str = "") -> float | None:
    return None if doc.get(key) is None else _fraction(doc, key, where)


def _number(doc: Mapping[str, Any], key: str, where: str = "") -> float:
    value = doc.get(key)
    if value is None:
        raise RecordError(where + key, "is missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(where + key, f"must be a number, got {_kind(value)}")
    return float(value)


def _fraction(doc: Mapping[str, Any], key: str, where: str = "") -> float:
    """An accuracy: a fraction from 0 to 1 (NaN kept, as for any measured number). A forged
    5.0 would show as 500% and pull a lesson's mean and verdict with it."""
    value = _number(doc, key, where)
    if not 0.0 <= value <= 1.0 and not math.isnan(value):
        raise RecordError(where + key, f"must be a fraction from 0 to 1, got {_kind(value)}")
    return value


def _bool(doc: Mapping[str, Any], key: str, where: str = "") -> bool:
    value = doc.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RecordError(where + key, f"must be true or false, got {_kind(value)}")
    return value


def _object(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(key, f"must be an object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    """What a wrong JSON value is, in words (never the value itself: it may be huge)."""
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false",
             int: "a number", float: "a number", type(None): "null"}
    shown = names.get(type(value), type(value).__name__)
    if isinstance(value, str | float) or (isinstance(value, int) and not isinstance(value, bool)
                                         and abs(value) < 10**30):
        text = repr(value[:41] if isinstance(value, str) else value)
        if len(text) <= 40:
            shown += f" {clean(text, single_line=True)}"
    return shown


def _run_id(doc: Mapping[str, Any]) -> str:
    value = doc.get("run_id")
    if not isinstance(value, str) or not value:
        raise RecordError("run_id", f"must be non-empty text, got {_kind(value)}")
    if not safe_run_id(value):
        raise RecordError("run_id", "must be a plain file-name-safe id (no '/', no leading '.',"
                          " no control characters)")
    return value


def _config(doc: Mapping[str, Any]) -> dict[str, Any]:
    raw = doc.get("config")
    if not isinstance(raw, dict):
        raise RecordError("config", f"must be an object, got {_kind(raw)}")
    out: dict[str, Any] = {}
    for key in KEYS:  # keys of other versions are dropped: nothing here would use them
        if key not in raw:
            continue
        try:
            value = normalize(key, raw[key])
        except ConfigError as err:
            raise RecordError(f"config.{key}", clean(err.message, single_line=True)) from None
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _history(doc: Mapping[str, Any]) -> tuple[EpochRow, ...]:
    raw = doc.get("history")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RecordError("history", f"must be a list, got {_kind(raw)}")
    if len(raw) > MAX_HISTORY:
        raise RecordError("history", f"has {len(raw)} epochs (at most {MAX_HISTORY})")
    rows: dict[int, EpochRow] = {}
    for i, item in enumerate(raw):
        row = _plain_epoch(item)
        if row is not None:
            rows[row.epoch] = row
            continue
        where = f"history[{i}]."
        if not isinstance(item, dict):
            raise RecordError(f"history[{i}]", f"must be an object, got {_kind(item)}")
        epoch = _int(item, "epoch", where, lo=1)
        if epoch is None:
            raise RecordError(where + "epoch", "is missing")
        rows[epoch] = EpochRow(
            epoch=epoch,
            train_loss=_number(item, "train_loss", where),
            train_acc=_fraction(item, "train_acc", where),
            val_loss=_number(item, "val_loss", where),
            val_acc=_fraction(item, "val_acc", where),
            lr=_float(item, "lr", where) or 0.0,
            seconds=_float(item, "seconds", where) or 0.0,
            is_best=_bool(item, "is_best", where),
            lr_dropped=_bool(item, "lr_dropped", where),
        )
    return tuple(rows[e] for e in sorted(rows))


_FLOATS = (float, int)  # exact types: bool is an int subclass and must not pass as a number


def _plain_epoch(item: Any) -> EpochRow | None:
    """The common case fast (a row as the loop writes it), or None to check it field by field.

    A store of thousands of 30-epoch runs spends most of its load time here, so rows whose
    every value already has the exact type (and whose accuracies are fractions) are built
    without the per-field checks; anything else takes the checked path below, which names
    the bad field.
    """
    if type(item) is not dict:
        return None
    get = item.get
    epoch: Any = get("epoch")
    lr: Any = get("lr")
    seconds: Any = get("seconds")
    values: tuple[Any, ...] = (get("train_loss"), get("train_acc"), get("val_loss"),
                               get("val_acc"))
    best, dropped = get("is_best", False), get("lr_dropped", False)
    if (type(epoch) is not int or not 1 <= epoch <= MAX_INT
            or any(type(v) not in _FLOATS for v in values)
            or not (0.0 <= values[1] <= 1.0 and 0.0 <= values[3] <= 1.0)
            or type(lr) not in _FLOATS or type(seconds) not in _FLOATS
            or type(best) is not bool or type(dropped) is not bool):
        return None
    return EpochRow(epoch, float(values[0]), float(values[1]), float(values[2]),
                    float(values[3]), float(lr), float(seconds), best, dropped)


def _summary(doc: Mapping[str, Any]) -> RunSummary:
    raw = _object(doc, "summary")
    w = "summary."
    return RunSummary(
        test_loss=_float(raw, "test_loss", w),
        test_acc=_optional_fraction(raw, "test_acc", w),
        best_epoch=_int(raw, "best_epoch", w),
        best_val_acc=_optional_fraction(raw, "best_val_acc", w),
        best_val_loss=_float(raw, "best_val_loss", w), epochs_done=_int(raw, "epochs_done", w),
        train_seconds=_float(raw, "train_seconds", w),
        images_per_s=_float(raw, "images_per_s", w),
        early_stopped=_bool(raw, "early_stopped", w),
    )


def _error(doc: Mapping[str, Any]) -> RunError | None:
    if doc.get("error") is None:
        return None
    raw = _object(doc, "error")
    w = "error."
    return RunError(kind=_text(raw, "kind", w, "error"),
                    message=_text(raw, "message", w, single_line=False),
                    traceback=_text(raw, "traceback", w, single_line=False))


def _env(doc: Mapping[str, Any]) -> RunEnv:
    raw = _object(doc, "env")
    w = "env."
    return RunEnv(device=_text(raw, "device", w), device_name=_text(raw, "device_name", w),
                  torch=_text(raw, "torch", w), python=_text(raw, "python", w),
                  host=_text(raw, "host", w), worker_pid=_int(raw, "worker_pid", w),
                  trained_together=_int(raw, "trained_together", w, default=1, lo=1) or 1,
                  cuda_graph=_bool(raw, "cuda_graph", w))


def _notices(doc: Mapping[str, Any]) -> tuple[str, ...]:
    raw = doc.get("notices")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise RecordError("notices", "must be a list of texts")
    return tuple(clean(n[:MAX_TEXT], single_line=True) for n in raw[:100])


def _list(value: Any, where: str, most: int, least: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise RecordError(where, f"must be a list, got {_kind(value)}")
    if not least <= len(value) <= most:
        raise RecordError(where, f"has {len(value)} items (from {least} to {most} allowed)")
    return value


def _numbers(value: Any, where: str, length: int, nullable: bool = False) -> list[float | None]:
    """A list of exactly `length` numbers (or nulls, when `nullable`)."""
    items = _list(value, where, length, length)
    if all(type(v) in _FLOATS for v in items):  # the common case, fast
        return [float(v) for v in items]
    out: list[float | None] = []
    for i, v in enumerate(items):
        if v is None and nullable:
            out.append(None)
        elif isinstance(v, bool) or not isinstance(v, int | float):
            raise RecordError(f"{where}[{i}]", f"must be a number, got {_kind(v)}")
        else:
            out.append(float(v))
    return out


def _counts(value: Any, where: str, length: int | None = None, most: int = MAX_BINS
            ) -> tuple[int, ...]:
    items = _list(value, where, length or most, length or 1)
    box = {f"[{i}]": v for i, v in enumerate(items)}
    return tuple(_int(box, key, where, default=0) or 0 for key in box)


def _probes(doc: Mapping[str, Any]) -> tuple[ProbeEpoch, ...]:
    """The per-layer series (see record.probes_json); absent: not recorded."""
    raw = doc.get("probes")
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise RecordError("probes", f"must be an object, got {_kind(raw)}")
    epochs = _list(raw.get("epochs"), "probes.epochs", MAX_PROBE_EPOCHS)
    numbers = {f"[{i}]": e for i, e in enumerate(epochs)}
    epoch_ids = [_int(numbers, key, "probes.epochs", lo=1) or 1 for key in numbers]
    layers = _list(raw.get("layers"), "probes.layers", MAX_LAYERS)
    series: list[tuple[str, list[list[float | None]]]] = []
    for i, layer in enumerate(layers):
        where = f"probes.layers[{i}]"
        if not isinstance(layer, dict):
            raise RecordError(where, f"must be an object, got {_kind(layer)}")
        name = _text(layer, "name", where + ".")[:MAX_NAME]
        series.append((name, [_numbers(layer.get(f), f"{where}.{f}", len(epoch_ids),
                                       nullable=f == "off") for f in LAYER_FIELDS]))
    out = []
    for j, epoch in enumerate(epoch_ids):
        stats = []
        for name, (mean, std, off, grad) in series:
            stats.append(LayerStats(name=name, act_mean=mean[j] or 0.0, act_std=std[j] or 0.0,
                                    off=off[j], grad_norm=grad[j] or 0.0))
        out.append(ProbeEpoch(epoch, tuple(stats)))
    return tuple(out)


def _diagnosis(doc: Mapping[str, Any]) -> TestDiagnosis | None:
    """The test diagnosis; absent: not recorded. `class_acc` is recomputed, not read."""
    if doc.get("test_diagnosis") is None:
        return None
    raw = _object(doc, "test_diagnosis")
    w = "test_diagnosis."
    names = _list(raw.get("classes"), w + "classes", MAX_CLASSES, 1)
    if not all(isinstance(n, str) for n in names):
        raise RecordError(w + "classes", "must be a list of texts")
    k = len(names)
    rows = _list(raw.get("confusion"), w + "confusion", k, k)
    matrix = tuple(_counts(row, f"{w}confusion[{i}]", k) for i, row in enumerate(rows))
    right = _counts(raw.get("confident_right"), w + "confident_right")
    wrong = _counts(raw.get("confident_wrong"), w + "confident_wrong", len(right))
    mistakes = []
    for i, m in enumerate(_list(raw.get("mistakes", []), w + "mistakes", MAX_MISTAKES)):
        where = f"{w}mistakes[{i}]."
        if not isinstance(m, dict):
            raise RecordError(where[:-1], f"must be an object, got {_kind(m)}")
        true, predicted = _int(m, "true", where, default=0) or 0, \
            _int(m, "predicted", where, default=0) or 0
        if true >= k or predicted >= k:
            raise RecordError(where + ("true" if true >= k else "predicted"),
                              f"must be a class index below {k}")
        mistakes.append(Mistake(index=_int(m, "index", where, default=0) or 0, true=true,
                                predicted=predicted, confidence=_number(m, "confidence", where)))
    key = _text(raw, "test_images", w)
    if key and not DATASET_KEY.fullmatch(key):
        raise RecordError(w + "test_images", "must be a dataset key (letters, digits, '.', "
                          "'_', '-'; at most 100), not a path")
    return TestDiagnosis(classes=tuple(clean(n[:MAX_NAME], single_line=True) for n in names),
                         confusion=matrix, confident_right=right, confident_wrong=wrong,
                         mistakes=tuple(mistakes), test_images=key,
                         filters=_filters(raw.get("filters"), w + "filters"))


def _filters(raw: Any, where: str) -> Filters | None:
    """The first layer's kernels: [filters, channels, k, k] and that many finite numbers;
    absent: not recorded. Bounded: at most MAX_FILTERS × 3 × MAX_KERNEL² numbers."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise RecordError(where, f"must be an object, got {_kind(raw)}")
    n, c, kh, kw = _counts(raw.get("shape"), where + ".shape", 4)
    if not (1 <= n <= MAX_FILTERS and c in (1, 3) and 1 <= kh <= MAX_KERNEL
            and 1 <= kw <= MAX_KERNEL):
        raise RecordError(where + ".shape", f"must be [filters 1–{MAX_FILTERS}, channels 1 "
                          f"or 3, height, width 1–{MAX_KERNEL}], got {[n, c, kh, kw]}")
    values = _numbers(raw.get("values"), where + ".values", n * c * kh * kw)
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            raise RecordError(f"{where}.values[{i}]", "must be a finite number")
    return Filters(shape=(n, c, kh, kw), values=tuple(v or 0.0 for v in values))


def parse_record(doc: Any) -> RunRecord:
    """A checked RunRecord from a JSON document; RecordError names the first bad field."""
    if not isinstance(doc, dict):
        raise RecordError("", f"expected a JSON object, got {_kind(doc)}")
    schema = doc.get("schema", SCHEMA_VERSION)
    if isinstance(schema, bool) or not isinstance(schema, int):
        raise RecordError("schema", f"must be a whole number, got {_kind(schema)}")
    if schema > SCHEMA_VERSION:
        raise RecordError("schema", f"is {schema}: written by a newer cnn-tui")
    status = doc.get("status")
    if status not in tuple(RunStatus):
        allowed = ", ".join(s.value for s in RunStatus)
        raise RecordError("status", f"must be one of {allowed}, got {_kind(status)}")
    return RunRecord(
        run_id=_run_id(doc),
        config=_config(doc),
        preset=_text(doc, "preset"),
        variant=_text(doc, "variant"),
        repeat=_int(doc, "repeat", default=0) or 0,
        group=_text(doc, "group"),
        status=RunStatus(status),
        created=_text(doc, "created"),
        updated=_text(doc, "updated"),
        env=_env(doc),
        params=_int(doc, "params"),
        steps_per_epoch=_int(doc, "steps_per_epoch"),
        train_size=_int(doc, "train_size"),
        val_size=_int(doc, "val_size"),
        test_size=_int(doc, "test_size"),
        dataset_note=_text(doc, "dataset_note"),
        history=_history(doc),
        summary=_summary(doc),
        error=_error(doc),
        notices=_notices(doc),
        probes=_probes(doc),
        diagnosis=_diagnosis(doc),
        label=_text(doc, "label")[:MAX_LABEL],
        note=_text(doc, "note", single_line=False)[:MAX_NOTE],
    )
