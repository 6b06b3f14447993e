"""The course CNN: parameter counts, layer order, downsampling, heads, inits, activations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainer.config import ACTIVATIONS, INITS, RunConfig
from trainer.engine.model import LEAKY_SLOPE, build_model, count_params, kernels

COURSE = RunConfig()


def conv_macs(model: nn.Module) -> int:
    """Multiply-accumulates of all convs for one 32×32 image (what stride 2 saves)."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        total += out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    model.eval()(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    return total


def test_course_cnn_parameter_counts():
    # conv 287,008 + Dense(2048→300) 614,700 + Dense(300→10) 3,010
    assert count_params(build_model(COURSE)) == 904_718  # "about 0.9 M"
    # conv 287,008 + Dense(128→50) 6,450 + Dense(50→10) 510
    assert count_params(build_model(COURSE.replace(head="gap"))) == 293_968  # "about 0.29 M"


def test_layer_order_and_batchnorm_before_activation():
    model = build_model(COURSE.replace(batch_norm=True))
    kinds = [type(m).__name__ for m in model]
    assert kinds[:7] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU",
                         "MaxPool2d"]
    assert all(m.bias is None for m in model if isinstance(m, nn.Conv2d))
    assert kinds[-6:] == ["Flatten", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [m.p for m in model if isinstance(m, nn.Dropout)] == [0.5, 0.3]
    gap = build_model(COURSE.replace(head="gap"))
    assert [m.p for m in gap if isinstance(m, nn.Dropout)] == [0.5, 0.2]
    assert not any(isinstance(m, nn.Dropout) for m in build_model(COURSE.replace(dropout=False)))


def test_stride2_replaces_maxpool_same_params_less_compute():
    pool, stride = build_model(COURSE), build_model(COURSE.replace(downsample="stride2"))
    assert not any(isinstance(m, nn.MaxPool2d) for m in stride)
    assert count_params(stride) == count_params(pool)
    assert conv_macs(stride) < 0.6 * conv_macs(pool)
    assert stride(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("changes", [
    {"kernel_size": 5}, {"widths": (4, 8, 8, 8, 8)}, {"widths": (16,)},
    {"head": "gap", "downsample": "stride2", "batch_norm": True},
])
def test_shapes_for_other_architectures(changes):
    model = build_model(COURSE.replace(**changes))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("init", INITS)
def test_inits_follow_keras_definitions(init):
    torch.manual_seed(0)
    model = build_model(COURSE.replace(init=init))
    dense = next(m for m in model if isinstance(m, nn.Linear))  # 2048 → 300
    fan_in, fan_out = dense.in_features, dense.out_features
    w = dense.weight
    if init == "torch_default":
        assert dense.bias.abs().sum() > 0  # PyTorch's own init, biases included
        assert w.abs().max() <= 1 / math.sqrt(fan_in) + 1e-6
        return
    assert all(m.bias.abs().sum() == 0 for m in model if isinstance(m, nn.Conv2d | nn.Linear))
    expected_std = {
        "glorot_uniform": math.sqrt(2 / (fan_in + fan_out)),
        "glorot_normal": math.sqrt(2 / (fan_in + fan_out)),
        "he_normal": math.sqrt(2 / fan_in),
        "he_uniform": math.sqrt(2 / fan_in),
        "normal_0.01": 0.01,
    }[init]
    assert w.std().item() == pytest.approx(expected_std, rel=0.03)
    if init.endswith("_normal"):  # truncated at 2σ of the pre-truncation normal
        assert w.abs().max() <= 2 * expected_std / 0.8796 + 1e-6


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations_build_and_run(activation):
    model = build_model(COURSE.replace(activation=activation, widths=(4, 8, 8)))
    assert torch.isfinite(model(torch.rand(2, 3, 32, 32))).all()
    if activation == "leaky_relu":
        act = next(m for m in model if isinstance(m, nn.LeakyReLU))
        assert act.negative_slope == LEAKY_SLOPE == 0.3  # Keras' default


def test_kernels_are_conv_and_dense_weights_only():
    model = build_model(COURSE.replace(batch_norm=True))
    ks = kernels(model)
    assert len(ks) == 8 and all(k.dim() in (2, 4) for k in ks)
    assert sum(k.numel() for k in ks) < count_params(model)  # BN and biases not penalised
