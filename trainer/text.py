"""Plain-text helpers shared by every side: one-line reasons, reflowed paragraphs, safe text.

Text that comes from files (lesson files, run records, typed paths) is untrusted: `clean`
is the one step that makes it safe to keep and show — terminal control characters (ESC,
BEL, CSI, OSC, DEL, NUL, …) and bidi overrides become visible symbols, so a shared file can
neither retitle nor clear the terminal, nor show its text reordered. Rich markup is a
separate, render-time concern: renderers put such text into `rich.text.Text` objects (never
into markup strings).
"""

from __future__ import annotations

import re

_LIST_ITEM = re.compile(r"^([-*•]|\d+[.)])\s")
# C0 controls except tab and newline, DEL, the C1 range (which some terminals obey), and the
# bidirectional embeddings, overrides and isolates: a terminal that does bidi would show a
# run's name reversed or reordered ("Trojan Source"), so they are shown, never obeyed.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SHOWN = {0x1B: "␛", 0x07: "␇", 0x00: "␀", 0x7F: "␡", 0x0D: "␍", 0x08: "␈"}


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code in _SHOWN:
        return _SHOWN[code]
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures" block: ␁ ␂ …
    return "�"  # C1 and bidi controls have no picture


def clean(text: str, *, single_line: bool = False) -> str:
    """`text` with control characters made visible (tabs kept; newlines kept unless
    `single_line`, which turns them into spaces)."""
    if single_line:
        text = text.replace("\r\n", " ").replace("\n", " ")
    return _CONTROL.sub(_visible, text)


def first_line(text: object) -> str:
    """The one-line reason of a (possibly multi-line) message."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def reflow(text: str) -> str:
    """Join the hard-wrapped lines of each paragraph so a UI can wrap them to its own width.

    Blank lines (paragraph breaks) stay, and so do lines that start a list item
    ("- a", "* b", "• c", "1. d"): a list is never run together into one line.
    """
    out = []
    for para in re.split(r"\n\s*\n", text.strip()):
        items: list[list[str]] = []  # joined once at the end: linear in the text's size
        for line in (line.strip() for line in para.splitlines()):
            if not line:
                continue
            if items and not _LIST_ITEM.match(line):
                items[-1].append(line)
            else:
                items.append([line])
        if items:
            out.append("\n".join(" ".join(item) for item in items))
    return "\n\n".join(out)
