"""Tiny CIFAR-10 look-alikes written in each layout the loader reads, so that tests (of the data
layer and of anything that trains on it) need neither the real data nor a download.

Pixels are random, so a reader that swaps channels, rows or labels cannot pass by accident. Images
are grouped by class and numbered within it, so every layout decodes to the same arrays.
"""
from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.dataset import CLASSES
from bench.data.layouts import BINARY_FOLDER, PYTHON_FOLDER
from bench.data.splits import IMAGE_SHAPE, Splits

TRAIN_BATCHES = 5


def random_splits(per_class: int, seed: int = 0) -> Splits:
    """`per_class` training and test images of each class, class after class."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), per_class)
    train_x, test_x = (rng.integers(0, 256, size=(len(labels), *IMAGE_SHAPE), dtype=np.uint8) for _ in range(2))
    return Splits(train_x, labels, test_x, labels.copy(), lossy=False)


def to_chw_rows(images: np.ndarray) -> np.ndarray:
    """NHWC images -> the official N x 3072 rows (each image channel-major)."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def python_batch_bytes(images: np.ndarray, labels: np.ndarray, name: str) -> bytes:
    """One batch as the official release pickles it (protocol 2, as Python 2 wrote it)."""
    batch = {"batch_label": name, "labels": labels.tolist(), "data": to_chw_rows(images),
             "filenames": [f"{name}_{i}.png" for i in range(len(labels))]}
    return pickle.dumps(batch, protocol=2)


def binary_batch_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    return np.concatenate([labels.astype(np.uint8)[:, None], to_chw_rows(images)], axis=1).tobytes()


def write_python_batches(root: Path, splits: Splits) -> Path:
    """root/cifar-10-batches-py with data_batch_1..5, test_batch and batches.meta."""
    folder = root / PYTHON_FOLDER
    folder.mkdir(parents=True)
    for i, idx in enumerate(np.array_split(np.arange(len(splits.train_y)), TRAIN_BATCHES), start=1):
        name = f"data_batch_{i}"
        (folder / name).write_bytes(python_batch_bytes(splits.train_x[idx], splits.train_y[idx], name))
    (folder / "test_batch").write_bytes(python_batch_bytes(splits.test_x, splits.test_y, "test_batch"))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CLASSES)}, protocol=2))
    return folder


def write_binary_batches(root: Path, splits: Splits, test_folder: str = BINARY_FOLDER) -> Path:
    """root/cifar-10-batches-bin with data_batch_1..5.bin, and test_batch.bin in `test_folder`
    (`cifar-10-verify-bin` for the model zoo's split)."""
    folder = root / BINARY_FOLDER
    folder.mkdir(parents=True)
    for i, idx in enumerate(np.array_split(np.arange(len(splits.train_y)), TRAIN_BATCHES), start=1):
        (folder / f"data_batch_{i}.bin").write_bytes(binary_batch_bytes(splits.train_x[idx], splits.train_y[idx]))
    (folder / "batches.meta.txt").write_text("\n".join(CLASSES) + "\n")
    (root / test_folder).mkdir(exist_ok=True)
    (root / test_folder / "test_batch.bin").write_bytes(binary_batch_bytes(splits.test_x, splits.test_y))
    return folder


def write_image_folder(root: Path, splits: Splits, image_format: str = "PNG") -> Path:
    """root/train/<class>/NNNN.<ext> and root/test/<class>/NNNN.<ext>."""
    suffix = {"PNG": "png", "JPEG": "jpg"}[image_format]
    for split, images, labels in (("train", splits.train_x, splits.train_y), ("test", splits.test_x, splits.test_y)):
        for cls in range(len(CLASSES)):
            folder = root / split / CLASSES[cls]
            folder.mkdir(parents=True)
            for i, pixels in enumerate(images[labels == cls]):
                Image.fromarray(pixels).save(folder / f"{i:04d}.{suffix}", image_format)
    return root


def write_tar_gz(folder: Path, archive: Path, members: tuple[str, ...]) -> Path:
    """archive holding `members` of `folder` (names relative to it), as `tar czf archive -C folder ...`."""
    with tarfile.open(archive, "w:gz") as tar:
        for name in members:
            tar.add(folder / name, arcname=name)
    return archive

