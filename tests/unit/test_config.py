"""RunConfig: defaults, every key valid and invalid, text parsing, labels, round-trips."""

from __future__ import annotations

import tomllib

import pytest

from trainer.config import (
    DEFAULT,
    KEYS,
    SCHEMA,
    ConfigError,
    RunConfig,
    format_value,
    parse_assignment,
    parse_value,
)

# One valid and one invalid example per key, as a user would type it.
VALID_TEXT = {
    "dataset": ("synthetic", "synthetic"),
    "train_subset": ("10000", 10000),
    "val_split": ("0.2", 0.2),
    "split_seed": ("7", 7),
    "batch_norm": ("on", True),
    "init": ("he_normal", "he_normal"),
    "activation": ("leaky_relu", "leaky_relu"),
    "head": ("gap", "gap"),
    "downsample": ("stride2", "stride2"),
    "kernel_size": ("5", 5),
    "widths": ("16,32,64", (16, 32, 64)),
    "dropout": ("false", False),
    "optimizer": ("sgd_momentum", "sgd_momentum"),
    "lr": ("1e-2", 0.01),
    "lr_schedule": ("plateau", "plateau"),
    "batch_size": ("32", 32),
    "shuffle": ("no", False),
    "epochs": ("3", 3),
    "l2": ("1e-4", 1e-4),
    "l1": ("1e-5", 1e-5),
    "loss": ("mse", "mse"),
    "input_norm": ("standardize", "standardize"),
    "augment": ("flip_crop", "flip_crop"),
    "early_stop_patience": ("10", 10),
    "keep_best": ("0", False),
    "seed": ("123", 123),
    "repeats": ("3", 3),
}
INVALID_TEXT = {
    "dataset": ("mnist", "one of cifar10, synthetic"),
    "train_subset": ("-1", "an integer from 0 to 50000"),
    "val_split": ("0", "a number from 0.01 to 0.9"),
    "split_seed": ("x", "an integer"),
    "batch_norm": ("maybe", "true or false"),
    "init": ("foo", "one of glorot_uniform"),
    "activation": ("gelu", "one of relu, leaky_relu, sigmoid, tanh"),
    "head": ("dense", "one of flatten, gap"),
    "downsample": ("avgpool", "one of maxpool, stride2"),
    "kernel_size": ("4", "one of 3, 5"),
    "widths": ("32,0,64", "comma-separated integers from 1 to 1024"),
    "dropout": ("2", "true or false"),
    "optimizer": ("rmsprop", "one of adam, sgd, sgd_momentum"),
    "lr": ("0", "a number from 1e-7 to 10"),
    "lr_schedule": ("exp", "one of none, plateau, cosine, step"),
    "batch_size": ("0", "an integer from 1 to 50000"),
    "shuffle": ("sometimes", "true or false"),
    "epochs": ("0", "an integer from 1 to 1000"),
    "l2": ("-1", "a number from 0 to 1"),
    "l1": ("nan", "a number from 0 to 1"),
    "loss": ("hinge", "one of cross_entropy, mse"),
    "input_norm": ("zscore", "one of unit, standardize"),
    "augment": ("mixup", "one of none, flip_crop"),
    "early_stop_patience": ("1.5", "an integer"),
    "keep_best": ("best", "true or false"),
    "seed": ("-5", "an integer from 0"),
    "repeats": ("0", "an integer from 1 to 100"),
}


def test_examples_cover_every_key():
    assert set(VALID_TEXT) == set(KEYS) == set(INVALID_TEXT)


def test_defaults_are_the_course_setup():
    c = RunConfig()
    assert (c.dataset, c.val_split, c.batch_norm, c.init) == ("cifar10", 0.15, False,
                                                              "glorot_uniform")
    assert (c.optimizer, c.lr, c.batch_size, c.epochs) == ("adam", 0.001, 64, 30)
    assert c.widths == (32, 64, 128) and c.head == "flatten" and c.dropout and c.keep_best


@pytest.mark.parametrize("key", KEYS)
def test_valid_text_parses_and_round_trips(key):
    text, expected = VALID_TEXT[key]
    value = parse_value(key, text)
    assert value == expected
    cfg = DEFAULT.replace(**{key: value})
    assert getattr(cfg, key) == expected
    assert parse_value(key, format_value(key, value)) == expected


@pytest.mark.parametrize("key", KEYS)
def test_invalid_text_names_key_allowed_values_and_input(key):
    text, allowed_fragment = INVALID_TEXT[key]
    with pytest.raises(ConfigError) as err:
        parse_value(key, text)
    message = str(err.value)
    assert err.value.key == key
    assert message.startswith(f"{key} must be ")
    assert allowed_fragment in message
    assert text in message


def test_batch_size_message_is_exact():
    with pytest.raises(ConfigError) as err:
        parse_value("batch_size", "0")
    assert str(err.value) == "batch_size must be an integer from 1 to 50000, got 0"


def test_typed_values_are_checked_too():
    with pytest.raises(ConfigError, match="batch_size"):
        RunConfig(batch_size=0)
    with pytest.raises(ConfigError, match="batch_norm must be true or false"):
        RunConfig.from_dict({"batch_norm": "yes"})  # a TOML string is not a bool
    with pytest.raises(ConfigError, match="epochs"):
        RunConfig.from_dict({"epochs": 2.5})
    with pytest.raises(ConfigError, match="lr"):
        RunConfig.from_dict({"lr": True})
    with pytest.raises(ConfigError, match="widths"):
        RunConfig.from_dict({"widths": [32, 64, 128, 256, 512, 1024]})


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"batchsize": 32})
    assert str(err.value) == "unknown key 'batchsize' — did you mean 'batch_size'?"
    assert err.value.key == "batchsize"
    with pytest.raises(ConfigError, match="did you mean 'batch_norm'"):
        parse_assignment("batch_nrom=true")


def test_close_choice_is_suggested():
    with pytest.raises(ConfigError, match="did you mean 'he_normal'"):
        parse_value("init", "he_norml")


def test_set_assignment():
    assert parse_assignment("lr=0.01") == ("lr", 0.01)
    assert parse_assignment("batch-size = 16") == ("batch_size", 16)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignment("lr")


def test_dict_and_toml_round_trip():
    cfg = RunConfig(batch_norm=True, lr=0.0005, widths=(16, 32), init="he_normal")
    as_dict = cfg.to_dict()
    assert as_dict["widths"] == [16, 32]
    assert RunConfig.from_dict(as_dict) == cfg
    assert RunConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg


def test_from_dict_layers_on_a_base():
    base = RunConfig(init="he_normal", epochs=5)
    cfg = RunConfig.from_dict({"batch_norm": True}, base=base)
    assert (cfg.init, cfg.epochs, cfg.batch_norm) == ("he_normal", 5, True)


def test_label_says_what_differs():
    assert RunConfig().label() == "defaults"
    assert RunConfig(batch_norm=True, lr=0.01).label() == "BN on · lr 0.01"
    base = RunConfig(init="he_normal")
    assert RunConfig(init="he_normal", shuffle=False).label(base) == "shuffle off"
    assert RunConfig(head="gap", batch_size=16).label() == "GAP head · batch 16"
    assert RunConfig(repeats=3).label() == "defaults"  # repeats is not a property of a run


def test_every_schema_field_has_help():
    assert all(f.help for f in SCHEMA.values())
