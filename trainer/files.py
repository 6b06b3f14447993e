"""Reading files that other people made: only regular files, never without a size bound.

Lesson files and run folders are shared and copied between machines, so a path may be a FIFO
(an open would wait for a writer forever), a symlink to /dev/zero (a read would never end) or
simply huge. `read_bounded` refuses all three with a reason a user can act on.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class FileRefused(ValueError):
    """The file is not a regular file, or is larger than allowed; the text says which."""


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (FileRefused otherwise).

    Opened without blocking and checked with fstat after opening, so what is read is what was
    checked (no race between a stat and the open).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("not a regular file")
        if info.st_size > limit:
            raise FileRefused(f"{info.st_size:,} bytes is larger than the {limit:,} allowed")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > limit:  # it grew while we read it
                raise FileRefused(f"larger than the {limit:,} bytes allowed")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
