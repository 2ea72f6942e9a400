"""The decoded-array cache: one decode per source, fast reloads, damaged entries rebuilt."""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import synthetic_data as synthetic
from bench.data import cache
from bench.data.cifar10 import load_cifar10
from bench.data.layouts import Layout
from bench.data.splits import Splits
from bench.errors import UserError

SPLITS = synthetic.random_splits(per_class=2)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A folder holding the official python archive of SPLITS."""
    synthetic.write_python_batches(tmp_path / "staging", SPLITS)
    (tmp_path / "data").mkdir()
    synthetic.write_tar_gz(tmp_path / "staging", tmp_path / "data" / "cifar-10-python.tar.gz", ("cifar-10-batches-py",))
    return tmp_path / "data"


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every decode of a layout (a cache miss)."""
    calls: list[str] = []
    read = Layout.read

    def counting_read(self: Layout) -> Splits:
        calls.append(str(self.path))
        return read(self)

    monkeypatch.setattr(Layout, "read", counting_read)
    return calls


def test_second_load_is_served_from_the_cache(root: Path, cache_dir: Path, decodes: list[str]) -> None:
    first = load_cifar10(root, download=False, cache_dir=cache_dir)
    start = time.perf_counter()
    second = load_cifar10(root, download=False, cache_dir=cache_dir)
    assert time.perf_counter() - start < 0.5
    assert len(decodes) == 1
    assert second.source == first.source
    for name, array in SPLITS.arrays().items():
        np.testing.assert_array_equal(getattr(second, name), array)


def test_entry_is_keyed_by_the_archives_sha256(root: Path, cache_dir: Path) -> None:
    got = load_cifar10(root, download=False, cache_dir=cache_dir)
    sha256 = hashlib.sha256((root / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
    assert got.source.checksum == sha256
    entry = cache.entry_dir(cache_dir, sha256)
    assert sorted(p.name for p in entry.iterdir()) == ["meta.json", "test_x.npy", "test_y.npy",
                                                       "train_x.npy", "train_y.npy"]  # no temporary files left


def test_moving_an_image_to_another_class_changes_the_key(tmp_path: Path, cache_dir: Path) -> None:
    synthetic.write_image_folder(tmp_path, SPLITS)
    before = load_cifar10(tmp_path, download=False, cache_dir=cache_dir)
    (tmp_path / "train" / "cat" / "0000.png").rename(tmp_path / "train" / "dog" / "0002.png")
    after = load_cifar10(tmp_path, download=False, cache_dir=cache_dir)
    assert after.source.checksum != before.source.checksum
    assert np.bincount(after.train_y).tolist() == [2, 2, 2, 1, 2, 3, 2, 2, 2, 2]


def truncate(entry: Path) -> None:
    path = entry / "train_x.npy"
    path.write_bytes(path.read_bytes()[:1000])


def wrong_shape(entry: Path) -> None:
    np.save(entry / "test_x.npy", np.zeros((20, 32, 32), np.uint8))


def shape_not_in_meta(entry: Path) -> None:
    np.save(entry / "test_x.npy", np.zeros((19, 32, 32, 3), np.uint8))


def bad_labels(entry: Path) -> None:
    np.save(entry / "train_y.npy", np.full(20, 10, np.int64))


def no_meta(entry: Path) -> None:
    (entry / "meta.json").unlink()


def garbled_meta(entry: Path) -> None:
    (entry / "meta.json").write_text("{")


def missing_array(entry: Path) -> None:
    (entry / "test_y.npy").unlink()


@pytest.mark.parametrize("damage", [truncate, wrong_shape, shape_not_in_meta, bad_labels, no_meta, garbled_meta,
                                    missing_array])
def test_damaged_entry_is_rebuilt(damage: Callable[[Path], None], root: Path, cache_dir: Path,
                                  decodes: list[str]) -> None:
    checksum = load_cifar10(root, download=False, cache_dir=cache_dir).source.checksum
    damage(cache.entry_dir(cache_dir, checksum))
    assert cache.load(cache_dir, checksum) is None
    again = load_cifar10(root, download=False, cache_dir=cache_dir)
    assert len(decodes) == 2
    np.testing.assert_array_equal(again.train_x, SPLITS.train_x)
    assert cache.load(cache_dir, checksum) is not None


def test_default_cache_dir_follows_fdabnn_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FDABNN_CACHE", str(tmp_path / "elsewhere"))
    assert cache.default_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("FDABNN_CACHE")
    assert cache.default_dir() == Path.home() / ".cache/fdabnn/arrays"


def test_unwritable_cache_dir_is_a_user_error(root: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UserError, match="cannot write the decoded-array cache.*FDABNN_CACHE"):
        load_cifar10(root, download=False, cache_dir=tmp_path / "a-file" / "cache")
