"""The gallery of one run in the Inside view: its most confident mistakes as test images with
"true → predicted (confidence)" under each, then its first layer's filters as one picture.

Imported when the view first draws a gallery (it brings NumPy and Pillow; see images.py for
how the image widget is chosen). What is shown is decided in tui.state.gallery; this module
only lays it out. Captions hold class names from run files: plain `Text`, never markup.
"""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage
from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

from trainer.store.record import RunRecord
from tui.state.gallery import enlarge, filter_images, filters_title, mistakes, mosaic
from tui.widgets.images import Renderer

TILE_W, TILE_H = 16, 8  # cells per test image: its 32×32 pixels as 16×16 half-block pixels
PER_ROW = 3  # images per row in a 52-cell column
FILTER_PX = 6  # a filter's side in half-block pixels (3×3 kernels: each weight 2×2)
GALLERY_WIDTH = 52  # the column's inner width (.inside-column is 54 with its padding)
GRAPHICS_ENLARGE = 8  # Sixel / Kitty graphics get nearest-enlarged pictures: crisp squares


def _picture(renderer: Renderer, pixels: np.ndarray, width: int, height: int,
             classes: str) -> Widget:
    """One image widget of `width` × `height` cells (half-blocks: 2 pixel rows a cell)."""
    assert renderer.widget is not None
    if renderer.graphics:
        pixels = enlarge(pixels, GRAPHICS_ENLARGE)
    picture = renderer.widget(PILImage.fromarray(np.ascontiguousarray(pixels), "RGB"),
                              classes=classes)
    picture.styles.width = width
    picture.styles.height = height
    return picture


def mistake_widgets(record: RunRecord, renderer: Renderer, count: int) -> list[Widget]:
    """The title line, then rows of image + caption tiles (or the reason there are none)."""
    shown = mistakes(record, count)
    title = Text("Misclassified test images", style="bold")
    if renderer.widget is None and shown.shown:
        title.append(f": {renderer.why}", style="italic")
        return [Static(title, classes="gallery-title")]
    if not shown.shown:
        title.append(f": {shown.why}", style="italic")
        return [Static(title, classes="gallery-title")]
    title.append(f" · {len(shown.shown)} most confident of {shown.total} kept · true → "
                 "predicted (confidence)", style="dim")
    tiles = [Vertical(_picture(renderer, s.pixels, TILE_W, TILE_H, "gallery-image"),
                      Static(Text(f"#{s.index} ", style="dim") + Text(s.caption),
                             classes="gallery-caption"),
                      classes="gallery-tile")
             for s in shown.shown]
    rows = [Horizontal(*tiles[i:i + PER_ROW], classes="gallery-row")
            for i in range(0, len(tiles), PER_ROW)]
    return [Static(title, classes="gallery-title"), *rows]


def filter_widgets(record: RunRecord, renderer: Renderer) -> list[Widget]:
    """The title line and one picture of every filter side by side."""
    title = Static(Text(filters_title(record), style="bold"), classes="gallery-title")
    d = record.diagnosis
    if d is None or d.filters is None:
        return [title]
    if renderer.widget is None:
        title.update(Text(f"First-layer filters: {renderer.why}", style="italic"))
        return [title]
    images = filter_images(d.filters)
    k = max(images[0].shape[:2])
    scale = max(1, FILTER_PX // k)
    per_row = (GALLERY_WIDTH + 1) // (k * scale + 1)
    picture = mosaic(images, per_row, scale)
    if picture.shape[0] % 2:  # half-blocks draw pixel rows in pairs
        picture = np.concatenate([picture, np.full_like(picture[:1], 24)])
    height, width = picture.shape[:2]
    return [title, _picture(renderer, picture, width, height // 2, "gallery-filters")]


def gallery_widgets(record: RunRecord, renderer: Renderer, count: int) -> list[Widget]:
    """Everything the gallery shows of one run (a diagnosed run; others show no gallery)."""
    return [*mistake_widgets(record, renderer, count), *filter_widgets(record, renderer)]
