"""Lesson presets: TOML files that describe one controlled experiment each.

A preset names a handful of variants that differ in exactly the setting the lesson is about,
plus the course's finding in human text (`expect`) and in machine-checkable form (`claims`)
so the verdict can compare a user's runs with it. Presets come from the package
(`presets.BUILTIN_DIR`), then the per-user folder, then any `--presets-dir`; a later file with
the same key replaces an earlier one, so an instructor can override a built-in lesson.

Loading never raises for a bad file: each problem becomes a `PresetProblem` naming the file,
the line (when it can be found) and what is allowed, and the other presets still load.
Lesson files are shared between people, so they are read as untrusted: a size bound, only
regular files, nesting and non-finite numbers refused, and every text made safe to show
(`trainer.text.clean`) before it enters the program. Torch-free: the TUI imports this.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from presets import BUILTIN_DIR
from trainer import paths
from trainer.config import KEYS, SCHEMA, ConfigError, RunConfig, allowed
from trainer.files import FileRefused, read_bounded
from trainer.lessons.metrics import METRICS
from trainer.lessons.preset import CUSTOM, EXPECTS, Claim, Preset, PresetProblem, Variant
from trainer.text import clean, reflow

MAX_LESSON_BYTES = 256 * 1024  # the built-in lessons are 2–4 KB each
# Shown in one line (title: the header and the list; summary: the list; label: table cells,
# legends) — the built-in ones are at most 30 / 100 / 27 characters.
MAX_TITLE, MAX_SUMMARY, MAX_LABEL = 80, 200, 40
MAX_VARIANTS = 10  # one colour each on the charts (tui.widgets.legend.PALETTE)

TOP_KEYS = ("title", "summary", "lesson", "expect", "repeats", "base", "try_next", "variants",
            "claims", "order")
CLAIM_KEYS = ("variant", "metric", "expect", "effect", "tolerance")
# A preset's own `repeats` decides how many runs it makes; letting base/variants set it too
# would give two sources of truth.
_NOT_IN_CONFIG = ("repeats",)


# -- loading ------------------------------------------------------------------------------------


class _Bad(Exception):
    """Internal: one validation failure, turned into a PresetProblem by the loader."""

    def __init__(self, message: str, line: int | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.key = key


def _suggest(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.5)
    return f" — did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(known)})"


class _Lines:
    """Finds the line of a key in the source text; tomllib does not report positions for
    values that parse fine but are wrong, and a line number saves the user a hunt."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self._tables: dict[str, list[int]] = {}  # header → its lines, found in one pass

    def table(self, header: str, index: int) -> int | None:
        """1-based line of the `index`-th `[[header]]` (0-based index)."""
        if header not in self._tables:
            pattern = re.compile(r"^\s*\[\[\s*" + re.escape(header) + r"\s*\]\]")
            self._tables[header] = [i + 1 for i, line in enumerate(self.lines)
                                    if pattern.match(line)]
        hits = self._tables[header]
        return hits[index] if index < len(hits) else None

    def base(self) -> int | None:
        """Line of `base = {...}` or of a `[base]` table."""
        for i, line in enumerate(self.lines):
            if re.match(r"^\s*(base\s*=|\[\s*base\s*\])", line):
                return i + 1
        return None

    def key(self, key: str, start: int | None = 1, stop: str | None = r"^\s*\[") -> int | None:
        """First line at or after `start` that assigns `key` (stopping at the next table)."""
        if start is None:
            return None
        pattern = re.compile(r"(^|[\s{,])" + re.escape(key) + r"\s*=")
        end = re.compile(stop) if stop else None
        for i in range(start - 1, len(self.lines)):
            line = self.lines[i]
            if i > start - 1 and end and end.match(line):
                break
            if pattern.search(line.split("#", 1)[0]):
                return i + 1
        return None


def _check_settings(data: Any, where: str, lines: _Lines, start: int | None,
                    base: RunConfig | None, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Validate a table of run settings; return it with canonical values."""
    if not isinstance(data, dict):
        raise _Bad(f"{where} must be a table of settings, e.g. {{ init = \"he_normal\" }}",
                   start)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in extra:
            continue
        line = lines.key(key, start) or start
        if key in _NOT_IN_CONFIG:
            raise _Bad(f"{where}: '{key}' is set by the top-level `repeats = N` of the preset",
                       line, key)
        if key not in SCHEMA:
            raise _Bad(f"{where}: unknown setting '{key}'{_suggest(key, KEYS + extra)}", line, key)
        try:
            cfg = RunConfig.from_dict({key: value}, base=base)
        except ConfigError as err:
            raise _Bad(f"{where}: {err.message}", line, key) from None
        canonical = cfg.to_dict()[key]
        out[key] = canonical
    return out


def _text(data: dict[str, Any], key: str, lines: _Lines, required: bool = False) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise _Bad(f"'{key}' must be a string", lines.key(key), key)
    if required and not value.strip():
        raise _Bad(f"missing '{key}' (a non-empty string)", None, key)
    return clean(reflow(value))


def _number(value: Any) -> bool:
    """A finite number (NaN or ±inf in a lesson file is a typo, never a finding)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _parse(path: Path, text: str) -> Preset:
    """Validate one lesson file's text; raise _Bad on the first problem."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise _Bad("values are nested too deeply (a lesson needs at most a list in a "
                   "table)") from None
    except tomllib.TOMLDecodeError as err:
        msg = str(err)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line = int(m.group(1)) if m else None
        if m:
            msg = f"{msg[: m.start()].strip()} (column {m.group(2)})"
        raise _Bad(f"TOML syntax error: {msg}", line) from None
    lines = _Lines(text)
    key = path.stem
    if key == CUSTOM:
        raise _Bad(f"'{CUSTOM}' is reserved for runs made from plain settings; rename the file")
    if key != clean(key, single_line=True):
        # The key is the file's name: shown in `cnn-tui presets`, typed as `--preset KEY`.
        raise _Bad("the file name has control characters: rename the file (its name is the "
                   "lesson's key, as in `--preset KEY`)")

    for name in data:
        if name not in TOP_KEYS:
            if name in SCHEMA:
                hint = (f" — '{name}' is a run setting: put it in `base = {{ ... }}` (all "
                        "variants) or in a [[variants]] table")
            else:
                hint = _suggest(name, TOP_KEYS)
            raise _Bad(f"unknown key '{name}'{hint}", lines.key(name, 1, r"^\s*\["), name)

    title = clean(_text(data, "title", lines, required=True), single_line=True)
    summary = _text(data, "summary", lines)
    if "\n" in summary:
        raise _Bad("'summary' must be one line (it is shown in the lesson list)",
                   lines.key("summary"), "summary")
    for name, value, most in (("title", title, MAX_TITLE), ("summary", summary, MAX_SUMMARY)):
        if len(value) > most:
            raise _Bad(f"'{name}' has {len(value):,} characters (at most {most}: it is shown "
                       "in one line)", lines.key(name), name)

    base = _check_settings(data.get("base", {}), "base", lines, lines.base(), None)
    base_cfg = RunConfig.from_dict(base)

    repeats = data.get("repeats", 1)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or not 1 <= repeats <= 100:
        raise _Bad(f"'repeats' must be {allowed('repeats')}, got {repeats!r}",
                   lines.key("repeats"), "repeats")

    order = data.get("order", 1000)
    if not isinstance(order, int) or isinstance(order, bool):
        raise _Bad(f"'order' must be an integer, got {order!r}", lines.key("order"), "order")

    try_next = data.get("try_next", [])
    if not isinstance(try_next, list) or not all(isinstance(s, str) for s in try_next):
        raise _Bad("'try_next' must be a list of strings", lines.key("try_next"), "try_next")

    raw_variants = data.get("variants")
    if not raw_variants:
        raise _Bad("missing [[variants]]: add at least one table with a `label` and the "
                   "settings it changes (the first is the baseline)", None, "variants")
    if not isinstance(raw_variants, list) or not all(isinstance(v, dict) for v in raw_variants):
        raise _Bad("'variants' must be [[variants]] tables", lines.key("variants"), "variants")
    if len(raw_variants) > MAX_VARIANTS:
        raise _Bad(f"{len(raw_variants):,} [[variants]]: a lesson compares at most "
                   f"{MAX_VARIANTS} (one colour each on the charts)",
                   lines.table("variants", MAX_VARIANTS), "variants")
    variants: list[Variant] = []
    for i, raw in enumerate(raw_variants):
        start = lines.table("variants", i)
        label = raw.get("label")
        where = f"[[variants]] #{i + 1}" + (f" ('{label}')" if isinstance(label, str) else "")
        if not isinstance(label, str) or not label.strip():
            raise _Bad(f"{where}: missing `label = \"...\"` (the name shown for this variant)",
                       start, "label")
        label = clean(label.strip(), single_line=True)
        if len(label) > MAX_LABEL:
            raise _Bad(f"[[variants]] #{i + 1}: the label has {len(label):,} characters (at "
                       f"most {MAX_LABEL}: it names the variant in table cells and legends)",
                       lines.key("label", start), "label")
        if label in {v.label for v in variants}:
            raise _Bad(f"{where}: duplicate label (labels must be unique)",
                       lines.key("label", start), "label")
        changes = _check_settings(raw, where, lines, start, base_cfg, extra=("label",))
        variants.append(Variant(label, changes))

    claims = [_claim(raw, i, variants, lines) for i, raw in enumerate(_claim_list(data, lines))]

    return Preset(
        key=key,
        title=title,
        summary=summary,
        lesson=_text(data, "lesson", lines),
        expect=_text(data, "expect", lines),
        base=base,
        variants=variants,
        repeats=repeats,
        claims=claims,
        try_next=[clean(s.strip(), single_line=True) for s in try_next],
        source=path,
        order=order,
    )


def _claim_list(data: dict[str, Any], lines: _Lines) -> list[dict[str, Any]]:
    raw = data.get("claims", [])
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise _Bad("'claims' must be [[claims]] tables", lines.key("claims"), "claims")
    return raw


def _claim(raw: dict[str, Any], i: int, variants: list[Variant], lines: _Lines) -> Claim:
    start = lines.table("claims", i)
    where = f"[[claims]] #{i + 1}"

    def line(key: str) -> int | None:
        return lines.key(key, start) or start

    for name in raw:
        if name not in CLAIM_KEYS:
            raise _Bad(f"{where}: unknown key '{name}'{_suggest(name, CLAIM_KEYS)}",
                       line(name), name)
    labels = [v.label for v in variants]
    variant = raw.get("variant")
    if isinstance(variant, str):
        variant = clean(variant.strip(), single_line=True)
    if variant not in labels[1:]:
        if variant == labels[0]:
            msg = (f"variant '{variant}' is the baseline; a claim compares another variant "
                   "with it")
        else:
            shown = f"'{variant}'" if isinstance(variant, str) else "missing"
            others = ", ".join(repr(x) for x in labels[1:]) or "none — add a second variant"
            msg = f"variant {shown} is not a variant label of this preset (one of: {others})"
            lowered = {x.lower(): x for x in labels[1:]}
            close = difflib.get_close_matches(str(variant).lower(), lowered, n=1, cutoff=0.6)
            if close:
                msg += f" — did you mean '{lowered[close[0]]}'?"
        raise _Bad(f"{where}: {msg}", line("variant"), "variant")
    metric = raw.get("metric")
    if metric not in METRICS:
        hint = _suggest(str(metric), METRICS) if isinstance(metric, str) else ""
        raise _Bad(f"{where}: metric must be one of {', '.join(METRICS)}, got {metric!r}{hint}",
                   line("metric"), "metric")
    expect = raw.get("expect")
    if expect not in EXPECTS:
        raise _Bad(f"{where}: expect must be one of {', '.join(EXPECTS)}, got {expect!r}",
                   line("expect"), "expect")
    effect = raw.get("effect")
    if effect is not None:
        if (not isinstance(effect, list) or len(effect) != 2 or not all(map(_number, effect))
                or effect[0] > effect[1]):
            raise _Bad(f"{where}: effect must be [low, high] (two finite numbers, low ≤ high),"
                       f" got {effect!r}", line("effect"), "effect")
        effect = (float(effect[0]), float(effect[1]))
        # effect is signed (variant − baseline); catch the common slip of a positive range
        # for a "lower" claim (or the reverse), which would make every verdict disagree.
        if (expect == "higher" and effect[1] <= 0) or (expect == "lower" and effect[0] >= 0):
            sign = "positive" if expect == "higher" else "negative"
            raise _Bad(f"{where}: effect is variant − baseline, so for expect = \"{expect}\" "
                       f"it should be {sign}, got {list(effect)}", line("effect"), "effect")
    tolerance = raw.get("tolerance")
    if tolerance is not None and (not _number(tolerance) or tolerance < 0):
        raise _Bad(f"{where}: tolerance must be a finite number ≥ 0, got {tolerance!r}",
                   line("tolerance"), "tolerance")
    if expect == "similar" and tolerance is None:
        raise _Bad(f"{where}: expect = \"similar\" needs a tolerance (the largest difference "
                   "that still counts as similar, e.g. tolerance = 0.02)", start, "tolerance")
    return Claim(variant, metric, expect, effect,
                 None if tolerance is None else float(tolerance))


def load_preset_file(path: Path) -> Preset | PresetProblem:
    """One lesson file → a Preset, or the problem that keeps it from loading."""
    try:
        # A byte-order mark (some Windows editors write one) is not part of the text.
        text = read_bounded(path, MAX_LESSON_BYTES).decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return PresetProblem(path, "not UTF-8 text")
    except FileRefused as err:
        return PresetProblem(path, f"cannot use it: {err}")
    except OSError as err:
        return PresetProblem(path, f"cannot read: {err.strerror or err}")
    try:
        return _parse(path, text)
    except _Bad as bad:
        return PresetProblem(path, bad.message, bad.line, bad.key)


def _files(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    return sorted(folder.glob("*.toml"))  # each is checked when read (FIFOs, devices …)


def load_presets(
    extra_dirs: Iterable[str | Path] = (),
) -> tuple[dict[str, Preset], list[PresetProblem]]:
    """Built-in, then user, then `extra_dirs` lessons, keyed by file stem (later wins).

    Returns the presets in lesson order (`order`, then key) and every problem found.
    A missing user folder is normal; a missing extra folder (asked for explicitly) is a problem.
    """
    found: dict[str, Preset] = {}
    problems: list[PresetProblem] = []
    folders: list[tuple[Path, bool]] = [(BUILTIN_DIR, False), (paths.user_presets_dir(), False)]
    folders += [(Path(d).expanduser(), True) for d in extra_dirs]
    for folder, explicit in folders:
        if not folder.exists():
            if explicit:
                problems.append(PresetProblem(folder, "presets folder not found"))
            continue
        for file in _files(folder):
            result = load_preset_file(file)
            if isinstance(result, PresetProblem):
                problems.append(result)
            else:
                found[result.key] = result
    ordered = sorted(found.values(), key=lambda p: (p.order, p.key))
    return {p.key: p for p in ordered}, problems


def unknown_preset_message(key: str, known: Iterable[str]) -> str:
    """`unknown preset 'bn'` plus the closest key or the list of keys."""
    known = list(known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    if close:
        return f"unknown preset '{key}' — did you mean '{close[0]}'?"
    return f"unknown preset '{key}' (available: {', '.join(known) or 'none'})"
