"""Where CIFAR-10 might already be on this machine, and what to tell the user when it is not.

Torch-free on purpose: the TUI and CLI use it to show where data will come from (and the
fix-it text) without importing PyTorch. Most people who have trained on CIFAR-10 before
already have a copy from Keras or torchvision, so we look in those places before downloading.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainer import paths

FOLDER = "cifar-10-batches-py"  # the official archive's top folder (torchvision and Keras)
ARCHIVES = ("cifar-10-python.tar.gz", "cifar-10-batches-py.tar.gz")  # torchvision, Keras names
MARKER = "data_batch_1"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def usual_dirs() -> list[Path]:
    """Folders where Keras, torchvision tutorials and other tools usually keep CIFAR-10."""
    home = Path.home()
    return [
        home / ".keras" / "datasets",  # keras.datasets.cifar10.load_data()
        Path.cwd() / "data",  # CIFAR10(root="./data") in the PyTorch tutorials
        home / ".cache" / "torch" / "datasets",
        home / ".cache" / "torchvision",
        home / ".cache",
        home / "data",
        home / ".torch" / "datasets",
    ]


def candidate_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """The explicit `data_dir` (else the app's data dir), then the usual places; no repeats."""
    first = Path(data_dir).expanduser() if data_dir else paths.data_dir()
    out: list[Path] = []
    seen: set[str] = set()
    for d in [first, *usual_dirs()]:
        key = os.path.normcase(os.path.abspath(d))
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def check_dir(d: Path) -> Path | None:
    """CIFAR-10 inside one folder: the extracted folder first (no unpacking), then an archive."""
    if d.is_file():  # --data-dir may name the archive itself
        return d if d.name.endswith((".tar.gz", ".tgz")) else None
    for folder in (d, d / FOLDER):
        if (folder / MARKER).is_file():
            return folder
    for name in ARCHIVES:
        if (d / name).is_file():
            return d / name
    return None


def find_cifar10(data_dir: str | Path | None = None) -> Path | None:
    """The first CIFAR-10 folder (one holding data_batch_1) or archive among the candidates."""
    for d in candidate_dirs(data_dir):
        try:
            hit = check_dir(d)
        except OSError:  # unreadable folder: skip it, the message lists where we looked
            continue
        if hit is not None:
            return hit
    return None


def download_dir(data_dir: str | Path | None = None) -> Path:
    """Where a download goes (and where we ask the user to put the archive)."""
    return Path(data_dir).expanduser() if data_dir else paths.data_dir()


def describe_missing(data_dir: str | Path | None, reason: str) -> str:
    """The multi-line fix-it message for "no CIFAR-10 here and the download failed"."""
    target = download_dir(data_dir)
    looked = "\n".join(f"  - {d}" for d in candidate_dirs(data_dir))
    return (
        "CIFAR-10 was not found and could not be downloaded.\n"
        f"Looked for '{FOLDER}/' or '{ARCHIVES[0]}' in:\n{looked}\n"
        f"Download from {URL} failed: {reason}\n"
        "To fix it, either:\n"
        f"  - put {ARCHIVES[0]} (or the extracted {FOLDER}/ folder) into {target}\n"
        "    (or point --data-dir DIR or CNN_TUI_DATA=DIR at the folder that holds it);\n"
        "  - or connect to the internet and try again;\n"
        "  - or train offline on the built-in stand-in data with --dataset synthetic."
    )
