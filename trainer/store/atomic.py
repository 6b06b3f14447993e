"""Atomic file replacement: readers see the old file or the new one, never a part."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def atomic_write(target: Path, data: bytes) -> None:
    """Replace `target` with `data`: write a temp file in the same folder, fsync, rename over.

    On failure (full disk, permissions) the temp file is removed, the old file stays, and the
    OSError propagates.
    """
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable (power loss); best effort, not every filesystem allows it.
    with contextlib.suppress(OSError):
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
