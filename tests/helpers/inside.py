"""Made-up look-inside data of the right shape (layer statistics, a test diagnosis, the first
layer's filters, a test-images file) for tests of the record, the export, the CLI and the TUI;
the loop's real numbers are tested in test_probes."""

from __future__ import annotations

import math

import numpy as np

from trainer import imagefile, paths
from trainer.events import Filters, LayerStats, Mistake, TestDiagnosis

IMAGES_KEY = "synthetic-made"  # the dataset key of `write_images_file`
IMAGES = 600  # test images in it: every index the made-up mistakes use (17 × 31 = 527) is one

COURSE_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "dense1", "dense2")
CIFAR = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck")


def layers(epoch: int, names: tuple[str, ...] = COURSE_LAYERS, dead: float = 0.3
           ) -> tuple[LayerStats, ...]:
    """Plausible statistics: std and gradients shrink with depth and epochs; dead units grow."""
    out = []
    for i, name in enumerate(names):
        last = i == len(names) - 1
        out.append(LayerStats(
            name=name, act_mean=round(0.2 + 0.01 * i, 4),
            act_std=round(1.0 / (1 + 0.2 * i) * (1 + 0.01 * epoch), 4),
            off=None if last else round(min(1.0, dead + 0.02 * i + 0.005 * epoch), 4),
            grad_norm=round(0.5 * math.exp(-0.1 * epoch) / (1 + i), 6)))
    return tuple(out)


def filters(n: int = 32, k: int = 3, channels: int = 3) -> Filters:
    """First-layer kernels as the loop keeps them (3 significant digits), all different."""
    values = [float(f"{math.sin(1.7 * i + 0.3) * 0.4:.3g}") for i in range(n * channels * k * k)]
    return Filters(shape=(n, channels, k, k), values=tuple(values))


def made_images(n: int = IMAGES) -> np.ndarray:
    """Test images [n, 32, 32, 3] that tell their index: red = index % 256, green = index //
    256, a blue ramp left to right; a bright square in the middle of every seventh."""
    out = np.zeros((n, 32, 32, 3), dtype=np.uint8)
    idx = np.arange(n)
    out[..., 0] = (idx % 256)[:, None, None]
    out[..., 1] = (idx // 256)[:, None, None]
    out[..., 2] = np.arange(32, dtype=np.uint8)[None, None, :] * 8
    out[::7, 12:20, 12:20] = 250
    return out


def write_images_file(n: int = IMAGES) -> np.ndarray:
    """The test-images file of IMAGES_KEY in this test's cache folder; returns its images."""
    images = made_images(n)
    path = paths.test_images_file(IMAGES_KEY)
    assert path is not None
    imagefile.write_images(path, images)
    return images


def diagnosis(classes: tuple[str, ...] = CIFAR, skill: float = 0.7,
              gallery: bool = False) -> TestDiagnosis:
    """A 1,000-image test set per class (k classes), `skill` of each class right; with
    `gallery`, the test-images key (IMAGES_KEY) and the first layer's filters too."""
    k = len(classes)
    rows = []
    for t in range(k):
        right = round(1000 * skill) - 20 * (t % 3)
        rest = 1000 - right
        row = [rest // (k - 1)] * k
        row[t] = right
        row[(t + 1) % k] += rest - (rest // (k - 1)) * (k - 1)
        rows.append(tuple(row))
    wrong = sum(sum(r) - r[i] for i, r in enumerate(rows))
    correct = k * 1000 - wrong
    right_bins = (0, 0, 0, correct // 20, correct // 10, correct // 10, correct // 10,
                  correct // 5, correct // 5, 0)
    right_bins = (*right_bins[:-1], correct - sum(right_bins))
    wrong_bins = (0, 0, wrong // 4, wrong // 4, wrong // 5, wrong // 10, wrong // 20, 0, 0, 0)
    wrong_bins = (*wrong_bins[:-1], wrong - sum(wrong_bins))
    mistakes = tuple(Mistake(index=17 * i, true=i % k, predicted=(i + 3) % k,
                             confidence=round(0.99 - 0.01 * i, 4)) for i in range(32))
    return TestDiagnosis(classes=classes, confusion=tuple(rows), confident_right=right_bins,
                         confident_wrong=wrong_bins, mistakes=mistakes,
                         test_images=IMAGES_KEY if gallery else "",
                         filters=filters() if gallery else None)
