"""A CIFAR-10-shaped stand-in for timing lessons where CIFAR-10 cannot be fetched (a GPU box
without internet): the official folder layout (data_batch_1..5, test_batch, batches.meta),
50,000 train and 10,000 test images of 3×32×32 uint8, seeded random pixels and labels.

A lesson trained on it costs what the same lesson costs on CIFAR-10 (same image count, shape,
batches, model and epochs, and no early stop unless asked for), so its wall time and s/epoch
stand for the real ones. Its accuracies mean nothing: the pixels carry no class.

    python benchmarks/cifar_shaped.py OUT_DIR [--train 50000] [--test 10000]
    cnn-tui run --preset batch_norm --data-dir OUT_DIR/cifar-10-batches-py
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

# The layout the loader reads, from the loader itself (so the two cannot drift apart).
from trainer.engine.data import CIFAR10_CLASSES, META_FILE, TEST_FILE, TRAIN_FILES
from trainer.locate import FOLDER


def write(out: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Write the folder under `out` and return it (an existing complete one is kept)."""
    folder = out / FOLDER
    if all((folder / n).is_file() for n in [*TRAIN_FILES, TEST_FILE, META_FILE]):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_batch = -(-n_train // len(TRAIN_FILES))  # the last batch takes what is left

    def dump(name: str, n: int) -> None:
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(pickle.dumps(batch, protocol=4))
        tmp.replace(folder / name)  # a folder cut off mid-write is never taken as complete

    for i, name in enumerate(TRAIN_FILES):
        dump(name, max(0, min(per_batch, n_train - i * per_batch)))
    dump(TEST_FILE, n_test)
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}
    (folder / META_FILE).write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--train", type=int, default=50_000)
    ap.add_argument("--test", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(write(Path(args.out_dir), args.train, args.test, args.seed))


if __name__ == "__main__":
    main()
