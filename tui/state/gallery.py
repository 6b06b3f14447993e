"""What the Inside view's gallery shows of a run: its most confident mistakes as test images,
and its first layer's filters as small RGB pictures.

Plain Python and NumPy (no Textual, no torch), so the choice of images, the lookup of their
pixels and the filters' colours are tested without a terminal. NumPy is imported here only:
the Inside view imports this module when it first draws a gallery, never at the app's start.

Pixels never come from the record: the record names its dataset (`TestDiagnosis.test_images`)
and this machine's own cache folder holds that dataset's test-images file (trainer.imagefile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer import formats as fmt
from trainer import paths
from trainer.events import Filters, Mistake, TestDiagnosis
from trainer.imagefile import ImagesUnavailable, read_images
from trainer.store.record import RunRecord

NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class Shown:
    """One misclassified test image: its pixels (uint8 [32, 32, 3]) and what the model said."""

    index: int  # into the test set
    true: str  # class names, from the record (plain text: never markup)
    predicted: str
    confidence: float
    pixels: np.ndarray

    @property
    def caption(self) -> str:
        return f"{self.true} → {self.predicted} ({fmt.pct(self.confidence, 0)})"


@dataclass(frozen=True)
class Mistakes:
    """The gallery of one run: the images shown, or why there are none (`why`)."""

    shown: tuple[Shown, ...] = ()
    why: str = ""  # "not recorded", "images not available on this machine: …", "no mistakes"
    total: int = 0  # mistakes the record keeps (the gallery may show fewer)


def _name(d: TestDiagnosis, label: int) -> str:
    return d.classes[label] if 0 <= label < len(d.classes) else str(label)


def mistakes(record: RunRecord, count: int) -> Mistakes:
    """The run's `count` most confident mistakes with their test images, read from the
    dataset's test-images file on this machine; never raises for a bad or missing file."""
    d = record.diagnosis
    if d is None or not d.test_images:
        return Mistakes(why=NOT_RECORDED)
    if not d.mistakes:
        return Mistakes(why="no mistakes on the test set")
    picked: tuple[Mistake, ...] = d.mistakes[:max(0, count)]
    path = paths.test_images_file(d.test_images)
    if path is None:  # the parser refuses such keys; a record made in memory might not
        return Mistakes(why="images not available on this machine: bad dataset key",
                        total=len(d.mistakes))
    try:
        pixels = read_images(path, [m.index for m in picked], expected=record.test_size)
    except ImagesUnavailable as err:
        return Mistakes(why=f"images not available on this machine: {err.message}",
                        total=len(d.mistakes))
    except OSError as err:  # a read error of the disk itself
        return Mistakes(why=f"images not available on this machine: {path}: "
                        f"{err.strerror or err}", total=len(d.mistakes))
    return Mistakes(shown=tuple(Shown(m.index, _name(d, m.true), _name(d, m.predicted),
                                      m.confidence, pixels[m.index]) for m in picked),
                    total=len(d.mistakes))


def filter_images(filters: Filters) -> list[np.ndarray]:
    """Each filter as a uint8 RGB image [k, k, 3], normalised on its own: its smallest weight
    black, its largest full colour (a constant filter is mid-grey). One input channel is grey."""
    n, c, kh, kw = filters.shape
    w = np.asarray(filters.values, dtype=np.float64).reshape(n, c, kh, kw)
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    span = w.max(axis=(1, 2, 3), keepdims=True) - lo
    scaled = np.where(span > 0, (w - lo) / np.where(span > 0, span, 1.0), 0.5)
    rgb = np.rint(scaled * 255).astype(np.uint8).transpose(0, 2, 3, 1)  # [n, k, k, c]
    if c == 1:
        rgb = np.repeat(rgb, 3, axis=3)
    return list(rgb)


def mosaic(images: list[np.ndarray], per_row: int, scale: int, gap: int = 1) -> np.ndarray:
    """The images in rows of `per_row`, each enlarged `scale` times (nearest neighbour, so a
    3×3 filter stays nine clear squares), `gap` dark pixels apart: uint8 [H, W, 3]."""
    if not images:
        return np.zeros((1, 1, 3), dtype=np.uint8)
    kh, kw = images[0].shape[:2]
    th, tw = kh * scale, kw * scale
    per_row = max(1, min(per_row, len(images)))
    rows = -(-len(images) // per_row)
    out = np.full((rows * (th + gap) - gap, per_row * (tw + gap) - gap, 3), 24, dtype=np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, per_row)
        big = img.repeat(scale, axis=0).repeat(scale, axis=1)
        out[r * (th + gap):r * (th + gap) + th, col * (tw + gap):col * (tw + gap) + tw] = big
    return out


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement (for terminal graphics, which scale smoothly)."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def filters_title(record: RunRecord) -> str:
    d = record.diagnosis
    if d is None or d.filters is None:
        return f"First-layer filters: {NOT_RECORDED}"
    n, c, kh, kw = d.filters.shape
    colour = "RGB" if c == 3 else "grey"
    return (f"First-layer filters: {n} of {kh}×{kw} ({colour}), each scaled from its lowest "
            "weight (dark) to its highest")
