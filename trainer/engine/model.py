"""The course CNN, built from a RunConfig.

Default (LESSONS.md): three blocks of two 3×3 'same' convs (32, 64, 128 channels), each block
followed by a 2×2 max-pool, then Flatten → Dropout .5 → Dense 300 → Dropout .3 → Dense 10.
About 0.9 M parameters (GAP head: about 0.29 M).

Choices the course leaves open, decided here:
- batch_norm: conv without bias → BatchNorm → activation (BN before the activation).
- downsample=stride2: the *second* conv of each block gets stride 2 and replaces the max-pool.
  Same parameters as the max-pool model, and that conv computes a quarter of the outputs, so
  the network needs less compute (lesson 7: "similar accuracy, less compute").
- leaky_relu uses Keras' default negative slope 0.3 (PyTorch's default would be 0.01), since we
  reproduce the course's Keras setup.
- init applies to conv and dense kernels with zero biases, using Keras' definitions (glorot /
  he *normal* are normals truncated at 2σ, rescaled to keep the variance). torch_default keeps
  PyTorch's own init of weights and biases, for comparison.
The softmax lives in the loss, so the model returns logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainer.config import RunConfig

LEAKY_SLOPE = 0.3  # Keras LeakyReLU default
# std of a unit normal truncated at ±2σ; Keras divides by it so the truncated draw keeps the
# intended variance.
TRUNC_STD = 0.87962566103423978


def activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE, inplace=True)
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}")


def conv_unit(cin: int, cout: int, cfg: RunConfig, stride: int = 1) -> list[nn.Module]:
    """conv → (BN) → activation; 'same' padding (halved output size when stride is 2)."""
    k = cfg.kernel_size
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=not cfg.batch_norm)
    layers: list[nn.Module] = [conv]
    if cfg.batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(activation(cfg.activation))
    return layers


def build_model(cfg: RunConfig) -> nn.Sequential:
    """Course CNN for 32×32 RGB inputs and 10 classes; weights initialised per `cfg.init`."""
    layers: list[nn.Module] = []
    cin, size = 3, 32
    for width in cfg.widths:
        layers += conv_unit(cin, width, cfg)
        if cfg.downsample == "stride2":
            layers += conv_unit(width, width, cfg, stride=2)
        else:
            layers += conv_unit(width, width, cfg)
            layers.append(nn.MaxPool2d(2))
        cin, size = width, size // 2
    drop = cfg.dropout
    if cfg.head == "gap":
        head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                nn.Dropout(0.5) if drop else None, nn.Linear(cin, 50), activation(cfg.activation),
                nn.Dropout(0.2) if drop else None, nn.Linear(50, 10)]
    else:
        head = [nn.Flatten(),
                nn.Dropout(0.5) if drop else None, nn.Linear(cin * size * size, 300),
                activation(cfg.activation),
                nn.Dropout(0.3) if drop else None, nn.Linear(300, 10)]
    model = nn.Sequential(*layers, *[m for m in head if m is not None])
    init_weights(model, cfg.init)
    return model


def init_weights(model: nn.Module, init: str) -> None:
    """Initialise conv/dense kernels with Keras' definitions; biases zero."""
    if init == "torch_default":
        return
    for m in model.modules():
        if not isinstance(m, nn.Conv2d | nn.Linear):
            continue
        w = m.weight
        fan_in = w.shape[1] * w[0, 0].numel()  # in_channels × kernel area (1 for Linear)
        fan_out = w.shape[0] * w[0, 0].numel()
        with torch.no_grad():
            if init == "glorot_uniform":
                limit = math.sqrt(6 / (fan_in + fan_out))
                w.uniform_(-limit, limit)
            elif init == "he_uniform":
                limit = math.sqrt(6 / fan_in)
                w.uniform_(-limit, limit)
            elif init == "glorot_normal":
                _truncated_normal(w, math.sqrt(2 / (fan_in + fan_out)) / TRUNC_STD)
            elif init == "he_normal":
                _truncated_normal(w, math.sqrt(2 / fan_in) / TRUNC_STD)
            elif init == "normal_0.01":
                w.normal_(0.0, 0.01)
            else:
                raise ValueError(f"unknown init {init!r}")
            if m.bias is not None:
                m.bias.zero_()


def _truncated_normal(w: torch.Tensor, std: float) -> None:
    nn.init.trunc_normal_(w, mean=0.0, std=std, a=-2 * std, b=2 * std)


def kernels(model: nn.Module) -> list[torch.Tensor]:
    """Conv and dense weight tensors: what Keras' kernel_regularizer penalises (no biases/BN)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def count_params(model: nn.Module) -> int:
    """Trainable parameters (as Keras' summary counts them, minus BN's running statistics)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
