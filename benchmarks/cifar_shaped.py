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

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


def write(out: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Write the folder under `out` and return it (an existing complete one is kept)."""
    folder = out / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    if all((folder / n).is_file() for n in names):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_batch = -(-n_train // 5)  # the last batch takes what is left

    def dump(name: str, n: int) -> None:
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(pickle.dumps(batch, protocol=4))
        tmp.replace(folder / name)  # a folder cut off mid-write is never taken as complete

    for i in range(5):
        dump(f"data_batch_{i + 1}", max(0, min(per_batch, n_train - i * per_batch)))
    dump("test_batch", n_test)
    meta = {b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
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
