"""Images in the terminal, through textual-image: Kitty graphics or Sixel where the terminal
speaks them, coloured half-block characters (▀, two pixels a cell) everywhere else, so a
gallery works over any SSH connection.

Loaded once, when the Inside view first draws a gallery, never at the app's start (it brings
Pillow). textual-image asks the terminal which protocol it speaks when it is imported: it
writes a query and reads the answer from stdin. Once Textual runs, its input thread would
read that answer as key presses (a stray `i` would close the view), so on a real terminal the
import runs while the app is suspended — Textual hands the terminal back for a moment, so the
screen blinks once — and input that arrived meanwhile is dropped. Headless (the tests), or
with no terminal to ask, nothing is asked and half-blocks are used.

`CNN_TUI_IMAGES=halfcell` forces half-blocks: for a terminal (or a tmux) that claims Sixel
but draws it badly.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from textual.app import App, SuspendNotSupported
from textual.widget import Widget

from trainer.text import first_line

LATE_ANSWER_S = 0.05  # a terminal's answer may trail the library's 0.1 s wait (slow links)


@dataclass(frozen=True)
class Renderer:
    """The image widget class to use, or why there is none."""

    widget: Callable[..., Widget] | None  # (PIL image, classes=…) → an image widget
    name: str = ""  # "Kitty graphics", "Sixel", "half-blocks"
    graphics: bool = False  # real pixels: give it enlarged images (it scales them smoothly)
    why: str = ""  # why there are no images (widget None)


_loaded: Renderer | None = None


def renderer(app: App[object]) -> Renderer:
    """The renderer for this terminal, decided on the first call (see the module's text)."""
    global _loaded
    if _loaded is None:
        _loaded = _load(app)
    return _loaded


def _tty() -> bool:
    return all(s is not None and s.isatty() for s in (sys.__stdout__, sys.__stdin__))


def _load(app: App[object]) -> Renderer:
    forced = os.environ.get("CNN_TUI_IMAGES", "").strip().lower() == "halfcell"
    try:
        if _tty() and not app.is_headless:
            with app.suspend():
                import textual_image.widget  # noqa: F401  (asks the terminal, see above)
                _drop_input()
        from textual_image import renderable, widget
    except SuspendNotSupported:
        return Renderer(None, why="this terminal cannot be asked which images it shows")
    except Exception as exc:  # textual-image failed to start: the view shows text only
        return Renderer(None, why=f"textual-image could not start ({first_line(str(exc))})")
    chosen = renderable.Image
    if forced or app.is_headless:
        pass
    elif chosen is renderable.TGPImage:
        return Renderer(widget.TGPImage, "Kitty graphics", graphics=True)
    elif chosen is renderable.SixelImage:
        return Renderer(widget.SixelImage, "Sixel", graphics=True)
    return Renderer(widget.HalfcellImage, "half-blocks")


def _drop_input() -> None:
    """Discard what arrived on stdin during the query (a late answer, keys typed then)."""
    with contextlib.suppress(Exception):
        import termios

        time.sleep(LATE_ANSWER_S)
        stdin = sys.__stdin__
        if stdin is not None:
            termios.tcflush(stdin.fileno(), termios.TCIFLUSH)
