"""Made-up look-inside data of the right shape (layer statistics, a test diagnosis) for tests
of the record, the export, the CLI and the TUI; the loop's real numbers are tested in
test_probes."""

from __future__ import annotations

import math

from trainer.events import LayerStats, Mistake, TestDiagnosis

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


def diagnosis(classes: tuple[str, ...] = CIFAR, skill: float = 0.7) -> TestDiagnosis:
    """A 1,000-image test set per class (k classes), `skill` of each class right."""
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
                         confident_wrong=wrong_bins, mistakes=mistakes)
