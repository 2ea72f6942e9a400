"""Every CIFAR-10 layout the loader reads, its preference order, and the errors bad input gives.

Fixtures are tiny synthetic copies (2 images per class and split) built in tmp_path; one test reads
the real shared copy through the session fixture `cifar10`.
"""
from __future__ import annotations

import os
import pickle
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import synthetic_data as synthetic
from bench.data.cifar10 import load_cifar10, resolve_root
from bench.data.dataset import Cifar10Arrays
from bench.data.layouts import BINARY_FOLDER, PYTHON_FOLDER, VERIFY_FOLDER
from bench.data.splits import Splits
from bench.errors import UserError

SPLITS = synthetic.random_splits(per_class=2)
Load = Callable[..., Cifar10Arrays]


@pytest.fixture
def load(tmp_path: Path) -> Load:
    """load_cifar10 without download, with a cache of its own."""
    return lambda root, **kw: load_cifar10(root, download=False, cache_dir=tmp_path / "cache", **kw)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """Where archives' contents are staged, outside the data root."""
    (tmp_path / "scratch").mkdir()
    return tmp_path / "scratch"


def assert_arrays(got: Cifar10Arrays, want: Splits) -> None:
    for name, array in want.arrays().items():
        np.testing.assert_array_equal(getattr(got, name), array, err_msg=name)
        assert getattr(got, name).dtype == array.dtype, name


def user_error(call: Callable[[], object]) -> str:
    """The message of the UserError `call` raises, checked to be the one line the CLI prints."""
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


# Each builder writes a lossless copy of SPLITS and returns (root to load, format, recorded path).
def python_folder_parent(data: Path, scratch: Path) -> tuple[Path, str, Path]:
    return data, "python-batches", synthetic.write_python_batches(data, SPLITS)


def python_folder_itself(data: Path, scratch: Path) -> tuple[Path, str, Path]:
    folder = synthetic.write_python_batches(data, SPLITS)
    return folder, "python-batches", folder


def python_archive_itself(data: Path, scratch: Path) -> tuple[Path, str, Path]:
    synthetic.write_python_batches(scratch, SPLITS)
    archive = synthetic.write_tar_gz(scratch, data / "cifar-10-python.tar.gz", (PYTHON_FOLDER,))
    return archive, "python-batches", archive


def python_archive_in_root(data: Path, scratch: Path) -> tuple[Path, str, Path]:
    _, fmt, archive = python_archive_itself(data, scratch)
    return data, fmt, archive


def binary_folder(data: Path, scratch: Path) -> tuple[Path, str, Path]:
    return data, "binary-batches", synthetic.write_binary_batches(data, SPLITS)


def binary_archive(data: Path, scratch: Path) -> tuple[Path, str, Path]:
    synthetic.write_binary_batches(scratch, SPLITS)
    archive = synthetic.write_tar_gz(scratch, data / "cifar-10-binary.tar.gz", (BINARY_FOLDER,))
    return archive, "binary-batches", archive


def model_zoo_split(data: Path, scratch: Path) -> tuple[Path, str, Path]:
    synthetic.write_binary_batches(data, SPLITS, test_folder=VERIFY_FOLDER)
    return data, "binary-batches", data


def png_folder(data: Path, scratch: Path) -> tuple[Path, str, Path]:
    return data, "image-folder", synthetic.write_image_folder(data, SPLITS, "PNG")


def png_tar_in_root(data: Path, scratch: Path) -> tuple[Path, str, Path]:
    synthetic.write_image_folder(scratch, SPLITS, "PNG")
    return data, "image-folder-tar", synthetic.write_tar_gz(scratch, data / "cifar10-png.tar.gz", ("train", "test"))


@pytest.mark.parametrize("build", [python_folder_parent, python_folder_itself, python_archive_itself,
                                   python_archive_in_root, binary_folder, binary_archive, model_zoo_split,
                                   png_folder, png_tar_in_root])
def test_lossless_layouts_decode_to_the_same_arrays(build, data: Path, scratch: Path, load: Load) -> None:
    root, fmt, path = build(data, scratch)
    got = load(root)
    assert_arrays(got, SPLITS)
    assert (got.source.format, got.source.path, got.source.lossy) == (fmt, str(path.resolve()), False)
    assert len(got.source.checksum) == 64


def test_model_zoo_split_is_noted(data: Path, scratch: Path, load: Load) -> None:
    model_zoo_split(data, scratch)
    assert load(data).source.note == f"train from {BINARY_FOLDER}/, test from {VERIFY_FOLDER}/"


def test_jpeg_tree_is_lossy_and_close(data: Path, scratch: Path, load: Load) -> None:
    synthetic.write_image_folder(scratch, SPLITS, "JPEG")
    archive = synthetic.write_tar_gz(scratch, data / "cifar10-jpeg.tar.gz", ("train", "test"))
    got = load(archive)
    assert (got.source.format, got.source.lossy) == ("image-folder-tar", True)
    np.testing.assert_array_equal(got.train_y, SPLITS.train_y)
    np.testing.assert_array_equal(got.test_y, SPLITS.test_y)
    # JPEG keeps each image's mean colour though it garbles random pixels
    means = got.test_x.mean(axis=(1, 2)) - SPLITS.test_x.mean(axis=(1, 2))
    assert np.abs(means).max() < 4


@pytest.mark.parametrize("root_is_verify_folder", [False, True])
def test_test_only_layout_needs_require_train_false(root_is_verify_folder: bool, data: Path, load: Load) -> None:
    synthetic.write_binary_batches(data, SPLITS, test_folder=VERIFY_FOLDER)
    shutil.rmtree(data / BINARY_FOLDER)
    root = data / VERIFY_FOLDER if root_is_verify_folder else data
    got = load(root, require_train=False)
    assert got.train_x.shape == (0, 32, 32, 3) and got.train_y.shape == (0,)
    np.testing.assert_array_equal(got.test_x, SPLITS.test_x)
    message = user_error(lambda: load(root))
    assert str(data / VERIFY_FOLDER) in message and "require_train=False" in message


def test_preference_is_python_then_binary_then_images(data: Path, load: Load) -> None:
    synthetic.write_python_batches(data, SPLITS)
    synthetic.write_binary_batches(data, SPLITS)
    synthetic.write_image_folder(data, SPLITS)
    first = load(data).source
    assert first.format == "python-batches"
    assert f"{data / BINARY_FOLDER} (binary-batches)" in first.note and f"{data} (image-folder)" in first.note
    shutil.rmtree(data / PYTHON_FOLDER)
    assert load(data).source.format == "binary-batches"
    shutil.rmtree(data / BINARY_FOLDER)
    assert load(data).source.format == "image-folder"


def test_extracted_folder_preferred_over_its_archive(data: Path, load: Load) -> None:
    """torchvision keeps both the archive and the folder it extracted."""
    folder = synthetic.write_python_batches(data, SPLITS)
    synthetic.write_tar_gz(data, data / "cifar-10-python.tar.gz", (PYTHON_FOLDER,))
    got = load(data).source
    assert got.path == str(folder.resolve())
    assert "cifar-10-python.tar.gz (python-batches)" in got.note


def test_two_equally_preferred_copies_are_an_error(data: Path, scratch: Path, load: Load) -> None:
    synthetic.write_image_folder(scratch, SPLITS)
    for name in ("a.tar.gz", "b.tar.gz"):
        synthetic.write_tar_gz(scratch, data / name, ("train", "test"))
    message = user_error(lambda: load(data))
    assert str(data / "a.tar.gz") in message and str(data / "b.tar.gz") in message


def test_resolve_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_root(None) == tmp_path / "env"
    monkeypatch.delenv("CIFAR10_ROOT")
    assert resolve_root(None) == Path.home() / ".cache/fdabnn/cifar10"


# ---- bad input: one line naming the path, what was expected, and the fix ----

def test_missing_root(tmp_path: Path, load: Load) -> None:
    message = user_error(lambda: load(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in message and "download" in message


def test_unknown_layout_lists_what_was_looked_for(data: Path, load: Load) -> None:
    (data / "README.txt").write_text("not CIFAR-10")
    message = user_error(lambda: load(data))
    for looked_for in (PYTHON_FOLDER, BINARY_FOLDER, VERIFY_FOLDER, "train/<class>/", ".tar.gz"):
        assert looked_for in message
    assert str(data) in message


def test_root_file_that_is_not_an_archive(data: Path, load: Load) -> None:
    (data / "cifar.zip").write_bytes(b"PK\x03\x04" + bytes(600))
    assert "not a readable tar archive" in user_error(lambda: load(data / "cifar.zip"))


def test_bad_gzip(data: Path, load: Load) -> None:
    (data / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8)
    message = user_error(lambda: load(data / "cifar-10-python.tar.gz"))
    assert str(data / "cifar-10-python.tar.gz") in message and "tar archive" in message


def test_unreadable_archive_in_root_is_named(data: Path, load: Load) -> None:
    (data / "cifar-10-python.tar.gz").write_bytes(b"garbage")
    message = user_error(lambda: load(data))
    assert "no CIFAR-10 copy found" in message and "cifar-10-python.tar.gz: not a readable tar archive" in message


def test_truncated_archive(data: Path, scratch: Path, load: Load) -> None:
    archive = python_archive_itself(data, scratch)[0]
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    message = user_error(lambda: load(archive))
    assert str(archive) in message and "truncated or corrupt" in message


def test_archive_without_cifar(data: Path, scratch: Path, load: Load) -> None:
    (scratch / "notes.txt").write_text("hello")
    archive = synthetic.write_tar_gz(scratch, data / "other.tar.gz", ("notes.txt",))
    message = user_error(lambda: load(archive))
    assert "holds no CIFAR-10 layout" in message and "notes.txt" in message


@pytest.mark.parametrize("content, expected", [
    (b"\x80\x02garbage", "not a readable Python batch"),
    (pickle.dumps(os.system, protocol=2), "refusing to load"),
    (pickle.dumps([1, 2, 3], protocol=2), "no 'data' and 'labels'"),
    (pickle.dumps({"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}), "expected an N x 3072 uint8 array"),
    (pickle.dumps({"data": np.zeros((4, 3072), np.uint8), "labels": [0] * 3}), "3 labels for 4 images"),
    (pickle.dumps({"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2, 10]}), "label 10 is out of range"),
])
def test_bad_python_batch(content: bytes, expected: str, data: Path, load: Load) -> None:
    folder = synthetic.write_python_batches(data, SPLITS)
    (folder / "data_batch_2").write_bytes(content)
    message = user_error(lambda: load(data))
    assert str(folder / "data_batch_2") in message and expected in message


def test_incomplete_training_batches(data: Path, load: Load) -> None:
    folder = synthetic.write_python_batches(data, SPLITS)
    (folder / "data_batch_3").unlink()
    message = user_error(lambda: load(data))
    assert str(folder) in message and "missing data_batch_3" in message


def test_missing_test_batch(data: Path, load: Load) -> None:
    folder = synthetic.write_python_batches(data, SPLITS)
    (folder / "test_batch").unlink()
    assert "no test_batch" in user_error(lambda: load(data, require_train=False))


def test_binary_batch_with_wrong_record_size(data: Path, load: Load) -> None:
    folder = synthetic.write_binary_batches(data, SPLITS)
    (folder / "data_batch_1.bin").write_bytes((folder / "data_batch_1.bin").read_bytes()[:-1])
    message = user_error(lambda: load(data))
    assert str(folder / "data_batch_1.bin") in message and "multiple of 3073" in message


def test_binary_batch_with_bad_label(data: Path, load: Load) -> None:
    folder = synthetic.write_binary_batches(data, SPLITS)
    raw = bytearray((folder / "test_batch.bin").read_bytes())
    raw[3073] = 12  # the second record's label byte
    (folder / "test_batch.bin").write_bytes(bytes(raw))
    assert "label 12 is out of range" in user_error(lambda: load(data))


def test_image_of_wrong_size(data: Path, load: Load) -> None:
    synthetic.write_image_folder(data, SPLITS)
    bad = data / "train" / "cat" / "0001.png"
    Image.new("RGB", (31, 32)).save(bad)
    message = user_error(lambda: load(data))
    assert str(bad) in message and "31x32" in message and "expected 32x32" in message


def test_undecodable_image(data: Path, load: Load) -> None:
    synthetic.write_image_folder(data, SPLITS)
    bad = data / "test" / "dog" / "0000.png"
    bad.write_bytes(bad.read_bytes()[:60])  # header intact, pixels cut off
    message = user_error(lambda: load(data))
    assert str(bad) in message and "not a decodable image" in message


def test_unknown_class_folder(data: Path, load: Load) -> None:
    synthetic.write_image_folder(data, SPLITS)
    (data / "train" / "cat").rename(data / "train" / "kitten")
    message = user_error(lambda: load(data))
    assert str(data / "train" / "kitten") in message and "'kitten' is not a CIFAR-10 class" in message


def test_unknown_class_folder_in_archive(data: Path, scratch: Path, load: Load) -> None:
    synthetic.write_image_folder(scratch, SPLITS)
    (scratch / "test" / "truck").rename(scratch / "test" / "lorry")
    archive = synthetic.write_tar_gz(scratch, data / "cifar.tar.gz", ("train", "test"))
    message = user_error(lambda: load(archive))
    assert f"{archive} (member test/lorry/" in message and "'lorry' is not a CIFAR-10 class" in message


def test_class_missing_from_a_split(data: Path, load: Load) -> None:
    synthetic.write_image_folder(data, SPLITS)
    shutil.rmtree(data / "test" / "frog")
    assert "test/ has no images of frog" in user_error(lambda: load(data))


# ---- the real shared copy ----

def test_shared_jpeg_tarball(cifar10: Cifar10Arrays) -> None:
    """The README's facts about ../shared/data/cifar10-jpeg.tar.gz, and its cached second load."""
    assert cifar10.train_x.shape == (50_000, 32, 32, 3) and cifar10.test_x.shape == (10_000, 32, 32, 3)
    assert np.bincount(cifar10.train_y).tolist() == [5_000] * 10
    assert np.bincount(cifar10.test_y).tolist() == [1_000] * 10
    assert (cifar10.source.format, cifar10.source.lossy) == ("image-folder-tar", True)
    # summing whole rows, then the 32 pixels of each, is ten times faster than a strided mean
    rows = cifar10.train_x.reshape(len(cifar10.train_x) * 32, 96).sum(axis=0, dtype=np.uint64)
    mean = rows.reshape(32, 3).sum(axis=0) / (cifar10.train_x.size // 3) / 255
    np.testing.assert_allclose(mean, [0.4913, 0.4821, 0.4465], atol=0.002)

    start = time.perf_counter()
    again = load_cifar10(os.environ["CIFAR10_ROOT"], download=False)  # the fixture's cache dir
    assert time.perf_counter() - start < 1
    assert again.source == cifar10.source
    np.testing.assert_array_equal(again.test_x, cifar10.test_x)
