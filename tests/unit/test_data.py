"""Dataset loading: CIFAR-10 folder/archive discovery, validation, cache, errors; synthetic."""

from __future__ import annotations

import importlib.util
import os
import pickle
import tarfile
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny

from trainer import locate
from trainer.engine import data
from trainer.engine.data import DataError, load_raw, make_splits

N_PER_BATCH, N_TEST = 6, 8  # a tiny CIFAR-format set: 30 train / 8 test images


def write_cifar(root: Path, labels_fn=None, n_per_batch: int = N_PER_BATCH) -> Path:
    """Write the official layout (bytes keys like the Python-2 pickles) under root/."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def dump(name: str, n: int, start: int) -> None:
        labels = [(start + i) % 10 for i in range(n)]
        if labels_fn:
            labels = labels_fn(name, labels)
        batch = {b"batch_label": b"x", b"labels": labels,
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [b"x.png"] * n}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))

    for i in range(5):
        dump(f"data_batch_{i + 1}", n_per_batch, i * n_per_batch)
    dump("test_batch", N_TEST, 0)
    meta = {b"label_names": [c.encode() for c in data.CIFAR10_CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def write_tar(root: Path) -> Path:
    src = write_cifar(root / "src")
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    return archive


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No CIFAR in the usual places: empty home and working directory."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    return home


def test_loads_folder_validates_and_warns(tmp_path, nowhere):
    write_cifar(tmp_path)
    notes: list[str] = []
    raw = load_raw("cifar10", tmp_path, notes.append)
    assert raw.train_x.shape == (5 * N_PER_BATCH, 3, 32, 32) and raw.train_x.dtype == torch.uint8
    assert raw.test_x.shape == (N_TEST, 3, 32, 32) and raw.test_y.dtype == torch.int64
    assert raw.train_y.tolist() == [i % 10 for i in range(30)]
    assert raw.classes[0] == "airplane" and raw.name == "cifar10"
    assert "differ from the official archive" in raw.note and "30 train / 8 test" in raw.note
    assert any("decoding" in n for n in notes)
    # Pixel order is the official channel-first one: row 0 of the pickle is image 0, R plane.
    batch = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    assert np.array_equal(raw.train_x[0].reshape(-1).numpy(), batch[b"data"][0])


def test_the_gpu_checks_cifar_shaped_stand_in_loads_as_cifar10(tmp_path, nowhere):
    """benchmarks/cifar_shaped.py is what the GPU check trains on without CIFAR-10: it must
    pass the real loader's checks, with its own counts, and say it is not the official set."""
    spec = importlib.util.spec_from_file_location(
        "cifar_shaped", Path(__file__).resolve().parents[2] / "benchmarks" / "cifar_shaped.py")
    assert spec is not None and spec.loader is not None
    shaped = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shaped)
    folder = shaped.write(tmp_path, n_train=53, n_test=11)
    raw = load_raw("cifar10", folder)
    assert raw.train_x.shape == (53, 3, 32, 32) and raw.test_x.shape == (11, 3, 32, 32)
    assert set(raw.train_y.tolist()) <= set(range(10)) and raw.classes == data.CIFAR10_CLASSES
    assert "53 train / 11 test" in raw.note and "differ from the official archive" in raw.note
    assert shaped.write(tmp_path, n_train=53, n_test=11) == folder  # a complete one is kept


def test_loads_tar_gz_and_folder_alike(tmp_path, nowhere):
    archive = write_tar(tmp_path / "a")
    from_tar = load_raw("cifar10", archive.parent)
    from_dir = load_raw("cifar10", tmp_path / "a" / "src")
    assert torch.equal(from_tar.train_x, from_dir.train_x)
    assert torch.equal(from_tar.test_y, from_dir.test_y)


def test_second_load_comes_from_cache(tmp_path, nowhere, monkeypatch):
    write_cifar(tmp_path)
    first = load_raw("cifar10", tmp_path)
    monkeypatch.setattr(data, "decode_cifar10", lambda src: pytest.fail("decoded twice"))
    t0 = time.perf_counter()
    again = load_raw("cifar10", tmp_path)
    assert time.perf_counter() - t0 < 1.0
    assert torch.equal(first.train_x, again.train_x) and again.note == first.note
    assert list((data.paths.cache_dir()).glob("cifar10-*.pt"))


def test_changed_source_invalidates_cache(tmp_path, nowhere):
    folder = write_cifar(tmp_path)
    load_raw("cifar10", tmp_path)
    write_cifar(tmp_path, labels_fn=lambda name, labels: [9] * len(labels))
    st = (folder / "data_batch_1").stat()
    os.utime(folder / "data_batch_1", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert set(load_raw("cifar10", tmp_path).train_y.tolist()) == {9}
    assert len(list(data.paths.cache_dir().glob("cifar10-*.pt"))) == 1  # the old one pruned


def test_env_data_dir_and_keras_cache_are_searched(tmp_path, nowhere, monkeypatch):
    write_cifar(tmp_path / "env")
    monkeypatch.setenv("CNN_TUI_DATA", str(tmp_path / "env"))
    assert locate.find_cifar10(None) == tmp_path / "env" / "cifar-10-batches-py"
    monkeypatch.delenv("CNN_TUI_DATA")
    keras = nowhere / ".keras" / "datasets"
    keras.mkdir(parents=True)
    archive = write_tar(tmp_path / "k")
    archive.rename(keras / "cifar-10-batches-py.tar.gz")
    assert locate.find_cifar10(tmp_path / "empty") == keras / "cifar-10-batches-py.tar.gz"
    assert load_raw("cifar10", tmp_path / "empty").train_x.shape[0] == 30


def test_candidate_dirs_explicit_first_no_repeats(tmp_path, nowhere):
    dirs = locate.candidate_dirs(tmp_path)
    assert dirs[0] == tmp_path
    assert nowhere / ".keras" / "datasets" in dirs and nowhere / "data" in dirs
    assert len({os.path.abspath(d) for d in dirs}) == len(dirs)
    assert locate.candidate_dirs(None)[0] == data.paths.data_dir()


def test_truncated_batch_names_the_file(tmp_path, nowhere):
    folder = write_cifar(tmp_path)
    f = folder / "data_batch_3"
    f.write_bytes(f.read_bytes()[:500])
    with pytest.raises(DataError) as err:
        load_raw("cifar10", tmp_path)
    assert "data_batch_3" in err.value.message and "truncated or corrupt" in err.value.message
    assert err.value.path == f


def test_truncated_archive_names_the_file(tmp_path, nowhere):
    archive = write_tar(tmp_path)
    archive.write_bytes(archive.read_bytes()[:3000])
    (tmp_path / "src").rename(tmp_path / "elsewhere")  # only the archive is in tmp_path
    with pytest.raises(DataError) as err:
        load_raw("cifar10", tmp_path)
    assert str(archive) in err.value.message and "truncated or corrupt" in err.value.message


def test_bad_labels_and_missing_files_are_refused(tmp_path, nowhere):
    write_cifar(tmp_path / "a", labels_fn=lambda n, labels: [12] * len(labels))
    with pytest.raises(DataError, match=r"labels range 12\.\.12, expected 0\.\.9"):
        load_raw("cifar10", tmp_path / "a")
    folder = write_cifar(tmp_path / "b")
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match="test_batch is missing"):
        load_raw("cifar10", tmp_path / "b")


def test_pickles_cannot_run_code(tmp_path, nowhere):
    folder = write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    (folder / "data_batch_2").write_bytes(
        pickle.dumps({b"data": os.system, b"labels": [f"touch {marker}"]}, protocol=2))
    with pytest.raises(DataError, match="data_batch_2"):
        load_raw("cifar10", tmp_path)
    assert not marker.exists()


def test_offline_without_data_explains_the_fix(tmp_path, nowhere, monkeypatch):
    from torchvision.datasets import utils as tv_utils

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", no_network)
    target = tmp_path / "mydata"
    with pytest.raises(DataError) as err:
        load_raw("cifar10", target)
    msg = err.value.message
    assert "not found" in msg and "Name or service not known" in msg
    assert str(target) in msg and str(nowhere / ".keras" / "datasets") in msg  # where we looked
    assert "cifar-10-python.tar.gz" in msg and "--dataset synthetic" in msg
    assert "CNN_TUI_DATA" in msg and "--data-dir" in msg


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset"):
        load_raw("mnist")


def test_synthetic_is_deterministic_balanced_and_labelled_synthetic():
    a = data.make_synthetic(n_train=300, n_test=50)
    b = data.make_synthetic(n_train=300, n_test=50)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert a.train_x.dtype == torch.uint8 and a.train_x.shape == (300, 3, 32, 32)
    full = load_raw("synthetic")
    assert (len(full.train_y), len(full.test_y)) == (10_000, 2_000)
    counts = torch.bincount(full.train_y, minlength=10)
    assert counts.min() > 800 and len(full.classes) == 10
    assert full.name == "synthetic" and "synthetic" in full.note
    # Not a constant-colour problem: pixel spread within each class is large.
    assert full.train_x[full.train_y == 0].float().std() > 40


def test_make_splits_is_fixed_disjoint_and_standardisable():
    raw = data.make_synthetic(n_train=1000, n_test=100)
    s = make_splits(raw, tiny(train_subset=1000, val_split=0.15), torch.device("cpu"))
    assert (len(s.train_y), len(s.val_y), len(s.test_y)) == (850, 150, 100)
    tr, va = data.split_indices(1000, 0.15, 42)
    assert not set(tr.tolist()) & set(va.tolist()) and tr.tolist() == sorted(tr.tolist())
    assert torch.equal(s.train_x, raw.train_x[tr])
    again = make_splits(raw, tiny(train_subset=1000, seed=7), torch.device("cpu"))
    assert torch.equal(again.val_y, s.val_y)  # the run seed does not move the split
    other = make_splits(raw, tiny(train_subset=1000, split_seed=1), torch.device("cpu"))
    assert not torch.equal(other.val_y, s.val_y)
    x = s.train_x.double() / 255
    std = make_splits(raw, tiny(train_subset=1000, input_norm="standardize"),
                      torch.device("cpu"))
    assert torch.allclose(std.mean.view(3).double(), x.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(std.std.view(3).double(), x.std((0, 2, 3), unbiased=False), atol=1e-5)


def test_device_data_cuts_each_split_once_and_counts_only_when_asked(monkeypatch):
    """A lesson's runs share the data: the split is cut once, statistics only for runs that
    standardise their inputs (the histogram pass costs seconds on the full set)."""
    raw = data.make_synthetic(n_train=600, n_test=50)
    source = data.DeviceData(raw, torch.device("cpu"))
    counted = []
    real = data.channel_stats
    monkeypatch.setattr(data, "channel_stats", lambda x: counted.append(len(x)) or real(x))
    first = source.splits(tiny(train_subset=600))
    assert source.splits(tiny(train_subset=600, seed=3)).train_x is first.train_x
    assert counted == [] and torch.equal(first.std, torch.ones(1, 3, 1, 1))
    for seed in (0, 1):
        source.splits(tiny(train_subset=600, seed=seed, input_norm="standardize"))
    assert counted == [len(first.train_y)]  # once per split, and only when standardising


def test_synthetic_data_is_cached_on_disk(isolated_home):
    notes: list[str] = []
    first = data.load_raw("synthetic", notify=notes.append)
    assert any("first use only" in n for n in notes)
    notes.clear()
    again = data.load_raw("synthetic", notify=notes.append)
    assert notes == [] and torch.equal(again.train_x, first.train_x)
    assert again.name == "synthetic" and again.note == first.note
    # Its test images, for the Inside view's gallery: HWC uint8, in test-set order.
    assert again.key == first.key == f"synthetic-v{data.CACHE_VERSION}.{data.SYNTHETIC_VERSION}"
    path = data.paths.test_images_file(again.key)
    assert path is not None
    images = np.load(path, allow_pickle=False)
    assert images.shape == (2000, 32, 32, 3) and images.dtype == np.uint8
    assert np.array_equal(images, first.test_x.permute(0, 2, 3, 1).numpy())


def test_cifar_test_images_are_written_once_and_rewritten_when_damaged(tmp_path, nowhere):
    write_cifar(tmp_path)
    raw = load_raw("cifar10", tmp_path)
    assert raw.key.startswith("cifar10-") and (data.paths.cache_dir() / f"{raw.key}.pt").is_file()
    path = data.paths.test_images_file(raw.key)
    assert path is not None
    images = np.load(path, allow_pickle=False)
    assert np.array_equal(images[3], raw.test_x[3].permute(1, 2, 0).numpy())
    stamp = path.stat().st_mtime_ns
    load_raw("cifar10", tmp_path)  # from the cache: the file is already right
    assert path.stat().st_mtime_ns == stamp
    path.write_bytes(path.read_bytes()[:200])  # truncated
    load_raw("cifar10", tmp_path)
    assert np.array_equal(np.load(path, allow_pickle=False), images)


def test_an_unwritable_cache_only_costs_the_gallery_its_images(isolated_home, monkeypatch):
    def full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data.imagefile, "atomic_write", full)
    notes: list[str] = []
    raw = data.with_test_images(data.make_synthetic(n_train=20, n_test=10), "synthetic-x",
                                notes.append)
    assert raw.key == "synthetic-x" and len(notes) == 1
    assert "could not write the test images" in notes[0] and "No space left" in notes[0]
