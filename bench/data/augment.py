"""Batch order and augmentation parameters, drawn once on the host so that both backends (and any
device) see the same images, crops and flips for a given (seed, epoch).

The pixels themselves are augmented on the training device by each backend; `augment_numpy` is the
reference those device implementations are tested against (and what a CPU backend may use as is).

Augmentation is the model zoo's: random 32x32 crop of the image zero-padded by 4 pixels (padding
on raw pixels, before normalisation), then a horizontal flip with probability 1/2.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

PAD = 4

# Per-channel mean/std on 0..1 pixels. The model zoo normalises with ImageNet's statistics and its
# checkpoint expects them; "cifar" is CIFAR-10's own, for users who prefer it.
NORMALIZATION = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


@dataclass(frozen=True)
class AugParams:
    """Per-image crop offsets into the padded image (0..2*PAD, rows then columns) and flip flags."""

    offsets: np.ndarray  # (B, 2) int64
    flips: np.ndarray  # (B,) bool

    @staticmethod
    def identity(batch: int) -> "AugParams":
        return AugParams(np.full((batch, 2), PAD, dtype=np.int64), np.zeros(batch, dtype=bool))


PLAN_COLUMNS = ("index", "row_offset", "col_offset", "flip")


def batch_plan(indices: np.ndarray, aug: AugParams) -> np.ndarray:
    """What a backend's train step receives for one batch: (B, 4) int64 rows of PLAN_COLUMNS, one
    array, so a device backend copies it to the device in one transfer."""
    return np.stack([indices, aug.offsets[:, 0], aug.offsets[:, 1], aug.flips], axis=1).astype(np.int64)


def steps_per_epoch(num_train: int, batch_size: int, max_steps: int | None = None) -> int:
    """Full batches only (the last partial batch is dropped, as the model zoo's training does)."""
    steps = num_train // batch_size
    if steps == 0:
        raise ValueError(f"batch size {batch_size} exceeds the {num_train} training images")
    return min(steps, max_steps) if max_steps else steps


def plan_epoch(
    num_train: int, batch_size: int, seed: int, epoch: int, augment: bool, max_steps: int | None = None
) -> Iterator[tuple[np.ndarray, AugParams]]:
    """Yield (indices, aug) for every step of `epoch`; a pure function of its arguments, so a
    resumed run replays exactly the order it would have seen."""
    rng = np.random.Generator(np.random.PCG64([seed, epoch]))
    order = rng.permutation(num_train)
    for step in range(steps_per_epoch(num_train, batch_size, max_steps)):
        idx = order[step * batch_size : (step + 1) * batch_size]
        if augment:
            aug = AugParams(
                rng.integers(0, 2 * PAD + 1, size=(batch_size, 2), dtype=np.int64),
                rng.random(batch_size) < 0.5,
            )
        else:
            aug = AugParams.identity(batch_size)
        yield idx, aug


def normalize_numpy(images_u8: np.ndarray, normalization: str) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW, scaled to 0..1 and normalised."""
    mean, std = (np.asarray(v, dtype=np.float32).reshape(1, 3, 1, 1) for v in NORMALIZATION[normalization])
    x = images_u8.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    return (x - mean) / std


def augment_numpy(images_u8: np.ndarray, aug: AugParams, normalization: str) -> np.ndarray:
    """Reference augmentation: uint8 NHWC batch -> normalised float32 NCHW batch."""
    b, h, w, _ = images_u8.shape
    padded = np.zeros((b, h + 2 * PAD, w + 2 * PAD, 3), dtype=np.uint8)
    padded[:, PAD : PAD + h, PAD : PAD + w] = images_u8
    rows = aug.offsets[:, 0, None] + np.arange(h)[None, :]  # (B, H)
    cols = aug.offsets[:, 1, None] + np.arange(w)[None, :]  # (B, W)
    cols = np.where(aug.flips[:, None], cols[:, ::-1], cols)
    crops = padded[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return normalize_numpy(crops, normalization)
