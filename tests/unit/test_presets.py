"""Lesson presets: the shipped files are valid, bad files explain themselves, requests pair up."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from helpers import SHARED

from presets import BUILTIN_DIR
from trainer import paths
from trainer.config import KEYS, ConfigError, RunConfig, parse_value
from trainer.lessons.metrics import METRICS
from trainer.lessons.planning import build_requests, custom_requests, overrides_shadowed
from trainer.lessons.preset import Preset, PresetProblem
from trainer.lessons.presets import load_preset_file, load_presets, reflow, unknown_preset_message

LESSONS = ("batch_norm", "bn_high_lr", "init", "shuffle", "batch_size", "lr_schedule",
           "gap_vs_flatten", "l2", "pool_vs_stride", "kernel_size", "activation", "optimizer",
           "loss", "input_norm")

GOOD = """\
title = "My lesson"
summary = "one line"
lesson = "why"
expect = "what"
repeats = 2
base = { init = "he_normal" }

[[variants]]
label = "A"
batch_norm = false

[[variants]]
label = "B"
batch_norm = true

[[claims]]
variant = "B"
metric = "test_acc"
expect = "higher"
effect = [0.01, 0.05]
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problem_of(tmp_path: Path, text: str) -> PresetProblem:
    result = load_preset_file(write(tmp_path, "bad", text))
    assert isinstance(result, PresetProblem), result
    return result


# -- the shipped lessons ------------------------------------------------------------------


def test_all_builtin_lessons_load_without_problems():
    presets, problems = load_presets()
    assert problems == []
    assert set(LESSONS) <= set(presets)
    assert all(p.source.parent == BUILTIN_DIR for p in presets.values())


@pytest.mark.parametrize("key", LESSONS)
def test_builtin_lesson_is_complete_and_every_variant_config_is_valid(key):
    p = load_presets()[0][key]
    assert p.title and p.summary and p.lesson and p.expect and p.try_next
    assert "\n" not in p.summary
    assert len(p.variants) >= 2 and p.claims
    assert len(set(p.labels)) == len(p.labels)
    for i in range(len(p.variants)):
        cfg = p.variant_config(i)
        assert isinstance(cfg, RunConfig)
        # Each variant must really differ from the baseline in what the lesson is about.
        if i:
            assert cfg.diff(p.variant_config(0)), f"{p.labels[i]} equals the baseline"
    for claim in p.claims:
        assert claim.variant in p.labels[1:] and claim.metric in METRICS
        if claim.expect == "similar":
            assert claim.tolerance is not None


@pytest.mark.parametrize("key", LESSONS)
def test_try_next_suggestions_use_real_settings_and_no_shadowed_override(key):
    """A suggested `--set k=v` must parse; one the variants would undo must say 'custom run'."""
    p = load_presets()[0][key]
    for text in p.try_next:
        for k, v in re.findall(r"--set (\w+)=([^\s)]+)", text):
            parse_value(k, v.rstrip(",.:;"))
            if k in p.varied_keys():
                assert "custom run" in text, f"{key}: '{text}' is undone by the variants"


def test_batch_norm_lesson_matches_the_course_setup():
    p = load_presets()[0]["batch_norm"]
    assert p.base == {"init": "he_normal"}
    assert p.labels == ["BN off", "BN on"]
    assert p.repeats == 3
    claim = p.claims[0]
    assert (claim.variant, claim.metric, claim.expect, claim.effect) == (
        "BN on", "test_acc", "higher", (0.05, 0.06))
    assert p.variant_config(1).batch_norm and p.variant_config(1).init == "he_normal"
    assert p.variant_config(0).lr == 0.001 and p.variant_config(0).epochs == 30


def test_builtin_lessons_are_not_copied_from_lessons_md():
    """The app's texts are written in its own words: no long verbatim runs from the notes."""
    notes = SHARED / "LESSONS.md"
    if not notes.exists():
        pytest.skip(f"domain notes not present at {notes}")
    source = " ".join(notes.read_text(encoding="utf-8").split())
    for p in load_presets()[0].values():
        words = " ".join([p.lesson, p.expect, *p.try_next]).split()
        for i in range(len(words) - 7):
            assert " ".join(words[i:i + 8]) not in source, f"{p.key} copies the notes"



def test_reflow_joins_wrapped_lines_and_keeps_paragraphs():
    assert reflow("\none\ntwo\n\nthree\n- a\n- b\n") == "one two\n\nthree\n- a\n- b"


# -- bad files ------------------------------------------------------------------------------


def test_toml_syntax_error_names_file_and_line(tmp_path):
    prob = problem_of(tmp_path, 'title = "x"\n\n[[variants]]\nlabel = "A"\nlr = \n')
    assert prob.line == 5
    assert "TOML syntax error" in prob.message
    assert str(prob).startswith(f"{tmp_path / 'bad.toml'}, line 5:")


def test_unknown_variant_key_suggests_the_closest(tmp_path):
    prob = problem_of(tmp_path, GOOD.replace("batch_norm = true", "batchnorm = true"))
    assert "unknown setting 'batchnorm'" in prob.message
    assert "did you mean 'batch_norm'" in prob.message
    assert prob.line == 14 and prob.key == "batchnorm"


def test_unknown_top_level_key_suggests_the_closest(tmp_path):
    prob = problem_of(tmp_path, GOOD.replace("repeats = 2", "repeat = 2"))
    assert "did you mean 'repeats'" in prob.message and prob.line == 5


def test_run_setting_at_top_level_says_where_it_belongs(tmp_path):
    prob = problem_of(tmp_path, "lr = 0.1\n" + GOOD)
    assert "base" in prob.message and "[[variants]]" in prob.message


def test_bad_value_lists_the_allowed_values(tmp_path):
    prob = problem_of(tmp_path, GOOD.replace('init = "he_normal"', 'init = "kaiming"'))
    assert "init must be one of glorot_uniform" in prob.message
    assert "he_normal" in prob.message and prob.line == 6 and prob.key == "init"
    prob = problem_of(tmp_path, GOOD.replace("batch_norm = true", "batch_norm = 3"))
    assert "true or false" in prob.message


def test_missing_title_and_missing_variants(tmp_path):
    assert "title" in problem_of(tmp_path, GOOD.replace('title = "My lesson"\n', "")).message
    no_variants = GOOD.split("[[variants]]")[0]
    assert "[[variants]]" in problem_of(tmp_path, no_variants).message


def test_claim_problems(tmp_path):
    prob = problem_of(tmp_path, GOOD.replace('variant = "B"', 'variant = "b"'))
    assert "not a variant label" in prob.message and "did you mean 'B'" in prob.message
    assert prob.line == 17
    prob = problem_of(tmp_path, GOOD.replace('variant = "B"', 'variant = "A"'))
    assert "baseline" in prob.message
    prob = problem_of(tmp_path, GOOD.replace('metric = "test_acc"', 'metric = "test_accuracy"'))
    assert "did you mean 'test_acc'" in prob.message
    prob = problem_of(tmp_path, GOOD.replace('expect = "higher"', 'expect = "better"'))
    assert "higher, lower, similar" in prob.message
    prob = problem_of(tmp_path, GOOD.replace("[0.01, 0.05]", "[-0.05, -0.01]"))
    assert "should be positive" in prob.message
    prob = problem_of(tmp_path, GOOD.replace('expect = "higher"', 'expect = "similar"')
                      .replace("effect = [0.01, 0.05]", ""))
    assert "tolerance" in prob.message


def test_duplicate_label_and_repeats_in_a_variant(tmp_path):
    assert "duplicate" in problem_of(tmp_path, GOOD.replace('"B"', '"A"', 1)).message
    prob = problem_of(tmp_path, GOOD.replace("batch_norm = true", "batch_norm = true\nrepeats = 5"))
    assert "top-level" in prob.message


def test_a_bad_file_does_not_stop_the_others(tmp_path):
    extra = tmp_path / "extra"
    write(extra, "good_one", GOOD)
    write(extra, "broken", "title = \n")
    presets, problems = load_presets([extra])
    assert "good_one" in presets and set(LESSONS) <= set(presets)
    assert [p.path.name for p in problems] == ["broken.toml"]


def test_user_dir_and_presets_dir_load_and_later_wins(tmp_path):
    user = paths.user_presets_dir()
    write(user, "mine", GOOD)
    write(user, "batch_norm", GOOD.replace("My lesson", "Instructor's BN"))
    extra = tmp_path / "course"
    write(extra, "mine", GOOD.replace("My lesson", "From --presets-dir"))
    presets, problems = load_presets([extra])
    assert problems == []
    assert presets["batch_norm"].title == "Instructor's BN"
    assert presets["mine"].title == "From --presets-dir"
    assert presets["mine"].source.parent == extra


def test_missing_extra_dir_is_a_problem_but_missing_user_dir_is_not(tmp_path):
    presets, problems = load_presets([tmp_path / "nope"])
    assert presets and [str(p.path) for p in problems] == [str(tmp_path / "nope")]


def test_custom_is_a_reserved_key(tmp_path):
    assert "reserved" in load_preset_file(write(tmp_path, "custom", GOOD)).message


def test_shared_lesson_files_from_other_editors_and_hostile_ones(tmp_path):
    """A byte-order mark (Windows editors) loads; a name with control characters, a title,
    summary or label too long for its one line, or more variants than the charts have
    colours, each says which and what is allowed."""
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert isinstance(load_preset_file(bom), Preset)
    named = load_preset_file(write(tmp_path, "x\x1b]2;pwned\x07", GOOD))
    assert isinstance(named, PresetProblem) and "file name" in named.message
    assert "\x1b" not in str(named)
    for text, key, most in (
        (GOOD.replace('"My lesson"', f'"{"T" * 81}"'), "title", "at most 80"),
        (GOOD.replace('"one line"', f'"{"s" * 201}"'), "summary", "at most 200"),
        (GOOD.replace('label = "A"', f'label = "{"A" * 41}"'), "label", "at most 40"),
        (GOOD + "".join(f'[[variants]]\nlabel = "V{i}"\n' for i in range(9)), "variants",
         "at most 10"),
    ):
        prob = problem_of(tmp_path, text)
        assert prob.key == key and most in prob.message, prob


# -- requests ---------------------------------------------------------------------------


def _preset(tmp_path: Path) -> Preset:
    result = load_preset_file(write(tmp_path, "two", GOOD))
    assert isinstance(result, Preset)
    return result


def test_build_requests_is_repeat_major_with_paired_seeds(tmp_path):
    p = _preset(tmp_path)
    reqs = build_requests(p, {"seed": 10, "epochs": 3})
    assert [(r.variant, r.repeat) for r in reqs] == [("A", 0), ("B", 0), ("A", 1), ("B", 1)]
    assert [r.config["seed"] for r in reqs] == [10, 10, 11, 11]
    assert all(r.config["repeats"] == 2 and r.config["epochs"] == 3 for r in reqs)
    assert len({r.group for r in reqs}) == 1 and reqs[0].group.startswith("g-")
    assert len({r.run_id for r in reqs}) == 4
    assert all(r.preset == "two" for r in reqs)


def test_layering_defaults_base_overrides_variant(tmp_path):
    p = _preset(tmp_path)
    reqs = build_requests(p, {"init": "glorot_normal", "batch_norm": True, "lr": 0.01},
                          group="g-x")
    a, b = reqs[0].config, reqs[1].config
    assert a["init"] == "glorot_normal"  # override beats the preset base
    assert a["batch_norm"] is False and b["batch_norm"] is True  # the variant beats overrides
    assert a["lr"] == b["lr"] == 0.01 and a["optimizer"] == "adam"  # default kept
    assert reqs[0].group == "g-x"
    assert overrides_shadowed(p, {"batch_norm": True, "lr": 0.01}) == ["batch_norm"]


def test_repeat_count_precedence(tmp_path):
    p = _preset(tmp_path)
    assert len(build_requests(p, {})) == 4
    assert len(build_requests(p, {"repeats": 3})) == 6
    assert len(build_requests(p, {"repeats": 3}, repeats=1)) == 2
    with pytest.raises(ConfigError):
        build_requests(p, {}, repeats=1000)
    with pytest.raises(ConfigError):
        build_requests(p, {"optimiser": "sgd"})


def test_custom_requests():
    cfg = RunConfig(seed=5, repeats=3, lr=0.01)
    reqs = custom_requests(cfg)
    assert [r.config["seed"] for r in reqs] == [5, 6, 7]
    assert {r.preset for r in reqs} == {"custom"} and {r.variant for r in reqs} == {"lr 0.01"}
    assert len({r.group for r in reqs}) == 1
    assert custom_requests(RunConfig(), label="mine")[0].variant == "mine"
    assert set(reqs[0].config) == set(KEYS)


def test_unknown_preset_message():
    assert "did you mean 'batch_norm'" in unknown_preset_message("batchnorm", LESSONS)
    assert "available: a, b" in unknown_preset_message("zzz", ["a", "b"])
