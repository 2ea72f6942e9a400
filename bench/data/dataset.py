"""The in-memory dataset both backends train on: uint8 NHWC arrays plus where they came from."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_PER_CLASS = 5000
TEST_PER_CLASS = 1000


def split_sizes(train_per_class: int | None, test_per_class: int | None) -> tuple[int, int]:
    """Training and test images of CIFAR-10, or of its stratified subsets of k images per class."""
    return len(CLASSES) * (train_per_class or TRAIN_PER_CLASS), len(CLASSES) * (test_per_class or TEST_PER_CLASS)


@dataclass(frozen=True)
class DataSource:
    """What every run records about its data."""

    path: str  # the file or folder the arrays were decoded from
    format: str  # python-batches | binary-batches | image-folder | image-folder-tar
    checksum: str  # sha256 of the source (files in a fixed order for a folder)
    lossy: bool  # True for JPEG copies (e.g. the shared cifar10-jpeg.tar.gz)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "checksum": self.checksum,
                "lossy": self.lossy, "note": self.note}


@dataclass(frozen=True)
class Cifar10Arrays:
    train_x: np.ndarray  # (N, 32, 32, 3) uint8
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray  # (M, 32, 32, 3) uint8
    test_y: np.ndarray  # (M,) int64
    source: DataSource
    subset: dict[str, int | None] = field(default_factory=lambda: {"train": None, "test": None})

    def subsample(self, train_per_class: int | None, test_per_class: int | None, seed: int = 0) -> "Cifar10Arrays":
        """Stratified subsets: k images of each class, drawn with a fixed seed, kept in the source order."""
        tx, ty = self.train_x, self.train_y
        vx, vy = self.test_x, self.test_y
        if train_per_class:
            idx = stratified_indices(ty, train_per_class, seed)
            tx, ty = tx[idx], ty[idx]
        if test_per_class:
            idx = stratified_indices(vy, test_per_class, seed + 1)
            vx, vy = vx[idx], vy[idx]
        return replace(self, train_x=tx, train_y=ty, test_x=vx, test_y=vy,
                       subset={"train": train_per_class, "test": test_per_class})


def stratified_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picked = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if per_class > len(members):
            raise ValueError(f"subset of {per_class} per class exceeds the {len(members)} images of class {cls}")
        picked.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(picked))
