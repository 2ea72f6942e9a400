"""Decoded pixels and labels of both splits, as readers produce them and the cache stores them.

Kept apart from `Cifar10Arrays` because the source (path, checksum) is only known to the caller,
and a cache hit must be able to rebuild everything else, including whether the pixels are lossy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10


@dataclass(frozen=True)
class Splits:
    train_x: np.ndarray  # (N, 32, 32, 3) uint8; N = 0 for a test-only layout
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray  # (M, 32, 32, 3) uint8
    test_y: np.ndarray  # (M,) int64
    lossy: bool  # decoded from JPEG files: close to, not equal to, the official pixels

    def arrays(self) -> dict[str, np.ndarray]:
        return {"train_x": self.train_x, "train_y": self.train_y, "test_x": self.test_x, "test_y": self.test_y}


def empty_images() -> tuple[np.ndarray, np.ndarray]:
    """The (images, labels) of a split a test-only layout does not hold."""
    return np.zeros((0, *IMAGE_SHAPE), dtype=np.uint8), np.zeros(0, dtype=np.int64)


def well_formed(splits: Splits) -> bool:
    """Shapes, dtypes and label range of a pair of splits: what a cache entry must satisfy to be served."""
    for x, y in ((splits.train_x, splits.train_y), (splits.test_x, splits.test_y)):
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
            return False
        if y.dtype != np.int64 or y.shape != (x.shape[0],):
            return False
        if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
            return False
    return len(splits.test_y) > 0
