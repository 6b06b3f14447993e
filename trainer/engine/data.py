"""Datasets as whole uint8 tensors, and the train/validation/test split.

CIFAR-10 is decoded once from the official pickles (folder or .tar.gz) into one cached tensor
file, so every later run loads it in a fraction of a second. The training loop then keeps the
whole split on the training device as uint8 and does normalisation and augmentation there with
batched tensor ops: no DataLoader, no per-image Python.

We validate what we decode (shapes, pixel type, label range, counts) instead of refusing files
whose md5 differs from the official archive: a re-encoded copy is still CIFAR-10 for teaching
purposes, so it loads with a warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import math
import os
import pickle
import socket
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from trainer import imagefile, locate, paths
from trainer.config import RunConfig

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
# md5 of the official files (the same values torchvision checks).
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
OFFICIAL_TRAIN, OFFICIAL_TEST = 50_000, 10_000
CACHE_VERSION = 1
DOWNLOAD_TIMEOUT_S = 60  # per socket operation, so a dead network fails instead of hanging
SYNTHETIC_NOTE = "synthetic data (not CIFAR-10): results do not transfer to the course's numbers"
SYNTHETIC_CLASSES = ["disk", "ring", "square", "frame", "triangle",
                     "plus", "striped disk", "two dots", "ellipse", "checkered disk"]

Notify = Callable[[str], None]
Stage = Callable[[str, float], None]  # (what the wait is for, fraction done or -1)


class DataError(Exception):
    """A data problem the user can fix; `message` is shown as is (no traceback needed)."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None


@dataclass
class RawData:
    """A whole dataset decoded once: uint8 images [N,3,32,32] and int64 labels, on the CPU."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    name: str  # "cifar10" | "synthetic"
    note: str = ""  # warnings the results should carry (synthetic, non-official bytes, counts)
    # Names this exact data (its cache file's stem) and so its test-images file, which the
    # Inside view reads (paths.test_images_file); "" for data made in memory (tests).
    key: str = ""


def load_raw(dataset: str, data_dir: str | Path | None = None,
             notify: Notify | None = None, stage: Stage | None = None) -> RawData:
    """Load `dataset` ("cifar10" | "synthetic"); raises DataError with a fix-it message.
    `stage(what, fraction)` hears what the wait is for (decoding: the fraction done)."""
    say = notify or (lambda _msg: None)
    step = stage or (lambda _what, _fraction: None)
    if dataset == "synthetic":
        return load_synthetic(say, step)
    if dataset == "cifar10":
        return load_cifar10(data_dir, say, step)
    raise DataError(f"unknown dataset '{dataset}' (use cifar10 or synthetic)")


# -- CIFAR-10 -------------------------------------------------------------------------------

def load_cifar10(data_dir: str | Path | None, notify: Notify,
                 stage: Stage | None = None) -> RawData:
    """Find (or download) CIFAR-10, then read the decoded-tensor cache or build it."""
    src = locate.find_cifar10(data_dir)
    if src is None:
        src = download_cifar10(data_dir, notify)
    step = stage or (lambda _what, _fraction: None)
    key = f"cifar10-{source_key(src)}"
    cache = paths.cache_dir() / f"{key}.pt"
    if cache.is_file():
        try:
            step("loading CIFAR-10 from its cache", -1.0)
            cached = read_cache(cache)
        except Exception as exc:  # stale or damaged cache: rebuild it, it is only a cache
            notify(f"ignoring unreadable dataset cache {cache} ({one_line(exc)}); rebuilding")
        else:
            return with_test_images(cached, key, notify)
    notify(f"decoding CIFAR-10 from {src} (first use only; cached in {cache.parent})")
    raw = decode_cifar10(src, step)
    if raw.note:
        notify(f"CIFAR-10 at {src}: {raw.note}")
    write_cache(raw, cache, notify)
    return with_test_images(raw, key, notify)


def download_cifar10(data_dir: str | Path | None, notify: Notify) -> Path:
    """Download and extract the official archive through torchvision (md5 + progress bar)."""
    root = locate.download_dir(data_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(locate.describe_missing(data_dir, f"cannot create {root}: {exc}"),
                        path=root) from exc
    notify(f"CIFAR-10 not found; downloading {locate.URL} (about 163 MB) into {root}")
    from torchvision.datasets import utils as tv_utils  # heavy import, only when needed

    archive = root / locate.ARCHIVES[0]
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        tv_utils.download_and_extract_archive(locate.URL, download_root=str(root),
                                              filename=archive.name, md5=ARCHIVE_MD5)
    except Exception as exc:
        # A partial or corrupt archive would be "found" next time: remove what we wrote.
        with contextlib.suppress(OSError):
            archive.unlink(missing_ok=True)
        raise DataError(locate.describe_missing(data_dir, one_line(exc)), path=root) from exc
    finally:
        socket.setdefaulttimeout(old_timeout)
    folder = root / locate.FOLDER
    if not (folder / locate.MARKER).is_file():
        raise DataError(locate.describe_missing(
            data_dir, f"the archive did not contain {locate.FOLDER}/{locate.MARKER}"), path=root)
    return folder


def source_key(src: Path) -> str:
    """Cache key ``<where>-<what>``: a hash of the resolved source path, then one of its files'
    sizes and mtimes, so the key changes when the data does and old entries can be pruned."""
    files = [src] if src.is_file() else [src / n for n in [*TRAIN_FILES, TEST_FILE, META_FILE]]
    parts: list[str] = [f"v{CACHE_VERSION}"]
    for f in files:
        try:
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{f.name}:missing")
    where = hashlib.sha1(str(src.resolve()).encode()).hexdigest()[:8]
    return f"{where}-{hashlib.sha1('|'.join(parts).encode()).hexdigest()[:8]}"


def read_source_files(src: Path) -> dict[str, tuple[bytes, str]]:
    """name → (file bytes, where to point the user) for a CIFAR-10 folder or .tar.gz."""
    wanted = [*TRAIN_FILES, TEST_FILE, META_FILE]
    out: dict[str, tuple[bytes, str]] = {}
    if src.is_dir():
        for name in wanted:
            f = src / name
            if f.is_file():
                try:
                    out[name] = (f.read_bytes(), str(f))
                except OSError as exc:
                    raise DataError(f"cannot read {f}: {exc}", path=f) from exc
        return out
    try:
        with tarfile.open(src, "r:*") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in wanted and name not in out:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        out[name] = (handle.read(), f"{src} (member {member.name})")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{src} is truncated or corrupt ({one_line(exc)}). Delete it and "
                        "download CIFAR-10 again, or use --dataset synthetic.", path=src) from exc
    return out


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle CIFAR batches without running arbitrary code from a user-supplied file."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")
        if module.startswith("numpy.") and name in ("_reconstruct", "scalar"):
            core = getattr(np, "_core", None) or np.core
            return getattr(core.multiarray, name)
        return super().find_class(module, name)


def unpickle(blob: bytes, where: str) -> dict[str, Any]:
    """One CIFAR pickle (Python-2 str keys) as a dict with str keys."""
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:  # EOFError, UnpicklingError, ValueError... all mean "bad file"
        raise DataError(f"{where} is truncated or corrupt ({one_line(exc)}). Delete it and "
                        "download CIFAR-10 again, or use --dataset synthetic.",
                        path=where.split(" (member")[0]) from exc
    if not isinstance(obj, dict):
        raise DataError(f"{where} is not a CIFAR-10 batch (expected a dict, got "
                        f"{type(obj).__name__})", path=where.split(" (member")[0])
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def parse_batch(blob: bytes, where: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """(images uint8 [n,3,32,32], labels int64 [n], converted_dtype) with clear errors."""
    path = where.split(" (member")[0]
    d = unpickle(blob, where)
    if "data" not in d or "labels" not in d:
        hint = " — this looks like CIFAR-100, not CIFAR-10" if "fine_labels" in d else ""
        raise DataError(f"{where} lacks the 'data'/'labels' entries of a CIFAR-10 batch{hint}",
                        path=path)
    x = np.asarray(d["data"])
    if x.ndim == 2 and x.shape[1] == 3 * 32 * 32:
        x = x.reshape(-1, 3, 32, 32)
    if x.ndim != 4 or x.shape[1:] != (3, 32, 32):
        raise DataError(f"{where}: images have shape {tuple(x.shape)}, expected [N, 3072] "
                        "(32×32 RGB, channel-first)", path=path)
    converted = False
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.integer) or (x.size and (x.min() < 0 or x.max() > 255)):
            raise DataError(f"{where}: pixels are {x.dtype}, expected 8-bit integers 0–255",
                            path=path)
        x, converted = x.astype(np.uint8), True
    try:
        y = np.asarray(d["labels"], dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: labels are not integers ({one_line(exc)})", path=path) from exc
    if len(y) != len(x):
        raise DataError(f"{where}: {len(x)} images but {len(y)} labels", path=path)
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{where}: labels range {y.min()}..{y.max()}, expected 0..9", path=path)
    return np.ascontiguousarray(x), y, converted


def decode_cifar10(src: Path, stage: Stage | None = None) -> RawData:
    """Decode and validate all batches of a folder or archive into uint8 tensors."""
    files = read_source_files(src)
    for name in [*TRAIN_FILES, TEST_FILE]:
        if name not in files:
            where = src / name if src.is_dir() else src
            raise DataError(f"{where} is missing ({name} is part of CIFAR-10); the copy at "
                            f"{src} is incomplete — download it again or use "
                            "--dataset synthetic.", path=where)
    notes: list[str] = []
    names = [*TRAIN_FILES, TEST_FILE]
    parsed = {}
    for i, name in enumerate(names):
        if stage is not None:
            stage("decoding CIFAR-10", i / len(names))
        parsed[name] = parse_batch(*files[name])
    train_x = np.concatenate([parsed[n][0] for n in TRAIN_FILES])
    train_y = np.concatenate([parsed[n][1] for n in TRAIN_FILES])
    test_x, test_y, _ = parsed[TEST_FILE]
    if any(p[2] for p in parsed.values()):
        notes.append("pixels were stored as wider integers and converted to uint8")
    if any(hashlib.md5(files[n][0]).hexdigest() != OFFICIAL_MD5[n] for n in parsed):
        notes.append("files differ from the official archive (md5 not matching, e.g. "
                     "re-encoded); loaded after checking shapes, pixel type, labels and counts")
    if len(train_y) != OFFICIAL_TRAIN or len(test_y) != OFFICIAL_TEST:
        notes.append(f"{len(train_y):,} train / {len(test_y):,} test images "
                     f"(the official set has {OFFICIAL_TRAIN:,} / {OFFICIAL_TEST:,})")
    if len(train_y) < 2 or len(test_y) < 1:
        raise DataError(f"{src} holds too few images to train on "
                        f"({len(train_y)} train, {len(test_y)} test)", path=src)
    classes = list(CIFAR10_CLASSES)
    if META_FILE in files:
        try:
            meta = unpickle(*files[META_FILE])
            names = [n.decode() if isinstance(n, bytes) else str(n)
                     for n in meta.get("label_names", [])]
            if len(names) == 10:
                classes = names
        except DataError:
            notes.append("batches.meta unreadable; using the standard class names")
    return RawData(
        train_x=torch.from_numpy(train_x), train_y=torch.from_numpy(train_y),
        test_x=torch.from_numpy(np.ascontiguousarray(test_x)), test_y=torch.from_numpy(test_y),
        classes=classes, name="cifar10", note="; ".join(notes),
    )


def read_cache(path: Path, name: str = "cifar10") -> RawData:
    blob = torch.load(path, weights_only=True)
    if blob.get("version") != CACHE_VERSION:
        raise ValueError("cache from another version")
    return RawData(train_x=blob["train_x"], train_y=blob["train_y"], test_x=blob["test_x"],
                   test_y=blob["test_y"], classes=list(blob["classes"]), name=name,
                   note=str(blob["note"]))


def write_cache(raw: RawData, path: Path, notify: Notify) -> None:
    """Atomic write (temp file + rename) so a crash never leaves a half cache behind."""
    blob = {"version": CACHE_VERSION, "train_x": raw.train_x, "train_y": raw.train_y,
            "test_x": raw.test_x, "test_y": raw.test_y, "classes": raw.classes, "note": raw.note}
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(blob, f)
        os.replace(tmp, path)
        # Drop caches of earlier versions of the same source (same <where> prefix).
        where = path.name.rsplit("-", 1)[0]
        for old in path.parent.glob(f"{where}-*.pt"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:  # no cache is slower, not wrong
        notify(f"could not write the dataset cache {path} ({one_line(exc)}); "
               "the next run will decode CIFAR-10 again")
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def with_test_images(raw: RawData, key: str, notify: Notify) -> RawData:
    """`raw` named `key`, its test images written beside the cache (once per dataset) as the
    file the Inside view shows the mistakes from: uint8 [N,32,32,3], rows × columns × RGB
    (see trainer.imagefile). No file is slower to nothing and wrong in nothing: a failure to
    write it is a notice, and the view then says that the images are not there."""
    raw.key = key
    path = paths.test_images_file(key)
    if path is None or imagefile.holds(path, len(raw.test_y)):
        return raw
    try:
        imagefile.write_images(path, raw.test_x.permute(0, 2, 3, 1).contiguous().numpy())
        where = key.rsplit("-", 1)[0]  # earlier versions of the same source: as write_cache
        for old in path.parent.glob(f"{where}-*-test.npy"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        notify(f"could not write the test images {path} ({one_line(exc)}); the Inside view "
               "will show the mistakes without their images")
    return raw


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


# -- synthetic data ---------------------------------------------------------------------------

SYNTHETIC_VERSION = 1  # bump when the images change: the cached copy is then rebuilt


def load_synthetic(notify: Notify, stage: Stage | None = None) -> RawData:
    """The synthetic set from its cache file, or drawn (seconds of work) and cached."""
    key = f"synthetic-v{CACHE_VERSION}.{SYNTHETIC_VERSION}"
    cache = paths.cache_dir() / f"{key}.pt"
    if cache.is_file():
        try:
            if stage is not None:
                stage("loading the synthetic dataset from its cache", -1.0)
            cached = read_cache(cache, name="synthetic")
        except Exception as exc:  # stale or damaged: draw it again, it is only a cache
            notify(f"ignoring unreadable dataset cache {cache} ({one_line(exc)}); rebuilding")
        else:
            return with_test_images(cached, key, notify)
    notify("drawing the synthetic dataset (first use only; cached)")
    raw = make_synthetic(stage=stage)
    write_cache(raw, cache, notify)
    return with_test_images(raw, key, notify)


def make_synthetic(n_train: int = 10_000, n_test: int = 2_000, seed: int = 1234,
                   stage: Stage | None = None) -> RawData:
    """Ten classes of 32×32 shapes: learnable by a CNN, but not from colour or one pixel.

    Each class is a shape (disk, ring, square, frame, triangle, plus, striped disk, two dots,
    ellipse, checkered disk) at a jittered position, size and rotation, on a random gradient
    background, with a small random distractor blob and pixel noise. The shape's colour leans
    towards a class hue, as CIFAR-10's colours lean (sky, grass): that cue gets the plain
    course CNN (Glorot init, no BN) off the ground in its first epoch, as on CIFAR-10; with a
    weaker cue it sat at chance for 5+ epochs. Shape and texture are needed for the rest.
    Deterministic for a given seed.
    """
    gen = torch.Generator().manual_seed(seed)
    x, y = _synthetic_images(n_train + n_test, gen, stage)
    return RawData(train_x=x[:n_train].contiguous(), train_y=y[:n_train].contiguous(),
                   test_x=x[n_train:].contiguous(), test_y=y[n_train:].contiguous(),
                   classes=list(SYNTHETIC_CLASSES), name="synthetic", note=SYNTHETIC_NOTE)


def _synthetic_images(n: int, gen: torch.Generator,
                      stage: Stage | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw every image's parameters up front, then render in cache-sized chunks (fast)."""

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen)

    y = torch.randint(0, 10, (n,), generator=gen)
    palette = torch.rand(10, 3, generator=torch.Generator().manual_seed(7))
    params = {
        "y": y,
        "cx": 16 + (rand(n) - 0.5) * 12, "cy": 16 + (rand(n) - 0.5) * 12,  # centre jitter
        "r": 8 + rand(n) * 4,  # size
        "th": (rand(n) - 0.5) * 1.2,  # rotation: ±35°
        "freq": (2.5 + rand(n) * 1.5) * math.pi,  # stripe / checker frequency
        # Colours: a class-preferred hue mixed with a random colour per image, on a
        # mid-range background (extremes would swamp the early gradients).
        "fg": (0.85 * palette[y] + 0.15 * rand(n, 3)) * (0.6 + 0.4 * rand(n, 1)),
        "bg_a": 0.2 + 0.6 * rand(n, 3), "bg_b": 0.2 + 0.6 * rand(n, 3),
        # Distractor: a small blob of random colour somewhere, in every class alike.
        "bx": 4 + rand(n) * 24, "by": 4 + rand(n) * 24, "br": 1.5 + rand(n) * 2,
        "bc": rand(n, 3),
    }
    out = torch.empty(n, 3, 32, 32, dtype=torch.uint8)
    for lo in range(0, n, 500):
        if stage is not None:
            stage("drawing the synthetic dataset", lo / n)
        p = {k: v[lo:lo + 500] for k, v in params.items()}
        img = _render(p)
        img = img + 0.08 * torch.randn(img.shape, generator=gen)  # pixel noise
        out[lo:lo + 500] = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    return out, y


def _render(p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Float images [m,3,32,32] in 0–1 for one chunk of drawn parameters."""
    m = len(p["y"])

    def col(t: torch.Tensor) -> torch.Tensor:  # per-image scalar → broadcastable [m,1,1]
        return t.view(m, 1, 1)

    coords = torch.arange(32, dtype=torch.float32) + 0.5
    yy, xx = coords.view(1, 32, 1), coords.view(1, 1, 32)
    th, r, freq = col(p["th"]), col(p["r"]), col(p["freq"])
    dx, dy = xx - col(p["cx"]), yy - col(p["cy"])
    cos, sin = torch.cos(th), torch.sin(th)
    u = (dx * cos + dy * sin) / r  # rotated coordinates in units of the shape's size
    v = (dy * cos - dx * sin) / r
    rho = torch.sqrt(u * u + v * v)
    box = torch.maximum(u.abs(), v.abs())
    masks = [
        rho < 1.0,  # disk
        (rho > 0.55) & (rho < 1.0),  # ring
        box < 0.8,  # square
        (box > 0.5) & (box < 0.85),  # frame
        (v > -0.6) & (v < 0.9) & (u.abs() < (v + 0.6) * 0.6),  # triangle
        ((u.abs() < 0.28) & (v.abs() < 1.0)) | ((v.abs() < 0.28) & (u.abs() < 1.0)),  # plus
        (rho < 1.0) & (torch.sin(v * freq) > 0),  # striped disk
        ((u - 0.55) ** 2 + v * v < 0.16) | ((u + 0.55) ** 2 + v * v < 0.16),  # two dots
        (u * u + (v / 0.45) ** 2) < 1.0,  # ellipse
        (rho < 1.0) & (torch.sin(u * freq) * torch.sin(v * freq) > 0),  # checkered disk
    ]
    mask = torch.stack(masks, 1)[torch.arange(m), p["y"]].unsqueeze(1).float()  # [m,1,32,32]

    ramp = ((xx * cos + yy * sin) / 45 + 0.15).unsqueeze(1)  # background gradient [m,1,32,32]
    bg = p["bg_a"].view(m, 3, 1, 1) * (1 - ramp) + p["bg_b"].view(m, 3, 1, 1) * ramp
    fg = p["fg"].view(m, 3, 1, 1)
    # Keep the shape visible: invert a foreground colour too close to the mean background.
    close = (fg - bg.mean((2, 3), keepdim=True)).abs().mean(1, keepdim=True) < 0.3
    fg = torch.where(close, 1 - fg, fg)
    img = bg * (1 - mask) + fg * mask
    blob = ((xx - col(p["bx"])) ** 2 + (yy - col(p["by"])) ** 2) < col(p["br"]) ** 2
    blob = blob.unsqueeze(1).float()
    return img * (1 - blob) + p["bc"].view(m, 3, 1, 1) * blob


# -- splits on the training device ------------------------------------------------------------

@dataclass
class Splits:
    """Train/val/test on the training device as uint8 images, plus the train-split statistics."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: torch.Tensor  # [1,3,1,1] float32, of pixels scaled to 0–1
    std: torch.Tensor


def split_indices(n: int, val_split: float, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) indices: a fixed permutation by `split_seed`, each part in dataset order.

    Sorting keeps the train part in the dataset's own order, so shuffle=false means what it
    says (as with Keras' validation_split, which keeps the order of what it trains on).
    """
    n_val = min(max(1, round(n * val_split)), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact per-channel mean/std of uint8 images (scaled to 0–1) from 256-bin histograms."""
    levels = torch.arange(256, dtype=torch.float64) / 255
    mean, std = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1).cpu().long(), minlength=256).double()
        m = (counts * levels).sum() / counts.sum()
        var = (counts * (levels - m) ** 2).sum() / counts.sum()
        mean.append(m)
        std.append(var.sqrt().clamp_min(1e-6))
    return (torch.stack(mean).float().view(1, 3, 1, 1),
            torch.stack(std).float().view(1, 3, 1, 1))


def make_splits(raw: RawData, cfg: RunConfig, device: torch.device) -> Splits:
    """train_subset (first N training images), then a fixed val split; all on `device`."""
    return DeviceData(raw, device).splits(cfg)


class DeviceData:
    """A decoded dataset on one device, kept by the worker across the runs of a lesson.

    The images go to the device once; each split (train_subset, val_split, split_seed) is cut
    once, and the channel statistics are computed only for runs that standardise their
    inputs (3 s of histogram work on the full training set that `input_norm=unit` never uses).
    """

    MAX_SPLITS = 2  # a lesson uses one split; a second one keeps a toggle run cheap too

    def __init__(self, raw: RawData, device: torch.device) -> None:
        self.raw = raw
        self.device = device
        self.note = raw.note
        on_cpu = device.type == "cpu"
        self.train_x = raw.train_x if on_cpu else raw.train_x.to(device)
        self.train_y = raw.train_y if on_cpu else raw.train_y.to(device)
        self.test_x = raw.test_x if on_cpu else raw.test_x.to(device)
        self.test_y = raw.test_y if on_cpu else raw.test_y.to(device)
        self._splits: dict[tuple[int, float, int], Splits] = {}
        self._stats: dict[tuple[int, float, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def splits(self, cfg: RunConfig) -> Splits:
        n = min(cfg.train_subset or len(self.raw.train_y), len(self.raw.train_y))
        if n < 2:
            raise DataError(f"train_subset={n} leaves nothing to split into train and "
                            "validation")
        key = (n, cfg.val_split, cfg.split_seed)
        split = self._splits.get(key)
        if split is None:
            tr, va = split_indices(n, cfg.val_split, cfg.split_seed)
            tr_d, va_d = tr.to(self.device), va.to(self.device)
            ones = torch.ones(1, 3, 1, 1, device=self.device)
            split = Splits(train_x=self.train_x[tr_d], train_y=self.train_y[tr_d],
                           val_x=self.train_x[va_d], val_y=self.train_y[va_d],
                           test_x=self.test_x, test_y=self.test_y,
                           mean=torch.zeros_like(ones), std=ones)
            while len(self._splits) >= self.MAX_SPLITS:
                self._splits.pop(next(iter(self._splits)))
            self._splits[key] = split
        if cfg.input_norm != "standardize":
            return split
        if key not in self._stats:
            mean, std = channel_stats(split.train_x)
            self._stats[key] = (mean.to(self.device), std.to(self.device))
        mean, std = self._stats[key]
        return dataclasses.replace(split, mean=mean, std=std)
