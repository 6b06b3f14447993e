"""The test-images file: a dataset's test images as uint8 [N, 32, 32, 3] (rows, columns, RGB)
in NumPy's .npy format, one file per dataset beside its cache (`paths.test_images_file`).

The worker writes it once per dataset, so the Inside view can show the images a run got wrong
without torch and without a single pixel in the run record (which keeps only test indices).
Both sides of the format live here. Reading is defensive, as the cache folder may hold
anything by that name: the file is opened without blocking (a FIFO) and must be a regular file
(a symlink to /dev/zero is not), its header must say uint8, C order and (N, 32, 32, 3), its
size must hold the N images the header promises (a truncated file), the indices must be below
N, and each image is read on its own (`os.pread`), so nothing is ever loaded whole or
unpickled. Any problem is an `ImagesUnavailable` that says what is wrong.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.store.atomic import atomic_write

IMAGE_SHAPE = (32, 32, 3)
IMAGE_BYTES = 32 * 32 * 3
MAX_HEADER = 4096  # NumPy writes 128 bytes; a header is never kilobytes


class ImagesUnavailable(Exception):
    """The test images cannot be read; `message` says why, in words for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Header:
    count: int  # N images
    offset: int  # where the first image's bytes start


def write_images(path: Path, images: np.ndarray) -> None:
    """Replace `path` with `images` (uint8 [N, 32, 32, 3]) atomically; OSError on failure."""
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"expected uint8 [N, 32, 32, 3], got {images.dtype} {images.shape}")
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(images), allow_pickle=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buffer.getvalue())


def holds(path: Path, count: int) -> bool:
    """Whether `path` is a readable test-images file of exactly `count` images."""
    try:
        with _opened(path) as fd:
            return _header(fd, path).count == count
    except ImagesUnavailable:
        return False


def read_images(path: Path, indices: Iterable[int], expected: int | None = None
                ) -> dict[int, np.ndarray]:
    """index → image (uint8 [32, 32, 3]) for each of `indices`; `expected`, when known, is
    the size of the test set the indices refer to (a file of another size is another set)."""
    with _opened(path) as fd:
        header = _header(fd, path)
        if expected is not None and header.count != expected:
            raise ImagesUnavailable(f"{path} holds {header.count:,} test images, but the run "
                                    f"was tested on {expected:,}")
        out: dict[int, np.ndarray] = {}
        for i in indices:
            if not 0 <= i < header.count:
                raise ImagesUnavailable(f"test index {i} is out of range ({path} holds "
                                        f"{header.count:,} images)")
            blob = os.pread(fd, IMAGE_BYTES, header.offset + i * IMAGE_BYTES)
            if len(blob) != IMAGE_BYTES:  # it shrank since the header was checked
                raise ImagesUnavailable(f"{path} is truncated")
            out[i] = np.frombuffer(blob, dtype=np.uint8).reshape(IMAGE_SHAPE)
        return out


class _opened:
    """A read-only, non-blocking descriptor of a regular file (closed on exit)."""

    def __init__(self, path: Path) -> None:
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise ImagesUnavailable(f"there is no test-images file {path}") from None
        except OSError as exc:
            raise ImagesUnavailable(f"cannot open {path}: {exc.strerror or exc}") from None
        try:
            if not stat.S_ISREG(os.fstat(self.fd).st_mode):
                raise ImagesUnavailable(f"{path} is not a regular file")
        except BaseException:
            os.close(self.fd)
            raise

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *_exc: object) -> None:
        os.close(self.fd)


def _header(fd: int, path: Path) -> Header:
    head = io.BytesIO(os.pread(fd, MAX_HEADER, 0))
    fmt = np.lib.format
    try:
        version = fmt.read_magic(head)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(head)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(head)
        else:
            raise ValueError(f"version {version}")
    except (ValueError, EOFError, OSError, SyntaxError, TypeError) as exc:
        raise ImagesUnavailable(f"{path} is not a NumPy image file "
                                f"({' '.join(str(exc).split())[:80]})") from None
    if dtype != np.uint8:
        raise ImagesUnavailable(f"{path} holds {dtype} values, not 8-bit pixels")
    if fortran or len(shape) != 4 or tuple(shape[1:]) != IMAGE_SHAPE:
        raise ImagesUnavailable(f"{path} holds an array of shape {tuple(shape)}"
                                f"{' (Fortran order)' if fortran else ''}, not "
                                "(N, 32, 32, 3) images")
    count, offset = int(shape[0]), head.tell()
    size = os.fstat(fd).st_size
    if size < offset + count * IMAGE_BYTES:
        raise ImagesUnavailable(f"{path} is truncated ({size:,} bytes; {count:,} images need "
                                f"{offset + count * IMAGE_BYTES:,})")
    return Header(count, offset)
