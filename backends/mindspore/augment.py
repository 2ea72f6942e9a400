"""The model zoo's augmentation with MindSpore ops, on whatever device holds the images: crop a
32x32 window from the image zero-padded by PAD (padding on raw pixels, before normalisation), flip
it horizontally where asked, scale to 0..1 and normalise; uint8 NHWC in, float32 NCHW out.

The crop offsets and flips come from the host (bench.data.augment.plan_epoch), so both backends see
the same crops; bench.data.augment.augment_numpy is the reference this is tested against. Instead of
keeping a padded copy of the training set, each output pixel gathers its source pixel by index and
pixels that fall into the padding are zeroed by a mask: one gather per batch, no extra copy.
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import Tensor, ops

from bench.data.augment import NORMALIZATION, PAD


def normalization_constants(normalization: str) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std as (3,) float32 Tensors, broadcasting over NHWC."""
    mean, std = NORMALIZATION[normalization]
    return Tensor(np.asarray(mean, np.float32)), Tensor(np.asarray(std, np.float32))


def normalize(images_u8: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 NHWC -> float32 NCHW, (x / 255 - mean) / std, as bench.data.augment.normalize_numpy."""
    x = ops.cast(images_u8, ms.float32) / 255.0
    return ((x - mean) / std).transpose(0, 3, 1, 2)


def crop_flip(images_u8: Tensor, indices: Tensor, offsets: Tensor, flips: Tensor) -> Tensor:
    """images_u8 (N, S, S, 3) uint8; indices (B,) int32; offsets (B, 2) int32 into the padded image
    (0..2 PAD, rows then columns); flips (B,) bool -> (B, S, S, 3) uint8 crops."""
    size = images_u8.shape[1]
    steps = ops.arange(size, dtype=ms.int32)
    rows = offsets[:, 0:1] - PAD + steps  # (B, S) source rows, unpadded coordinates
    col_steps = ops.select(ops.broadcast_to(flips.reshape(-1, 1), (flips.shape[0], size)),
                           ops.broadcast_to(size - 1 - steps, (flips.shape[0], size)),
                           ops.broadcast_to(steps, (flips.shape[0], size)))
    cols = offsets[:, 1:2] - PAD + col_steps  # (B, S)
    inside = ((rows >= 0) & (rows < size)).reshape(-1, size, 1) & ((cols >= 0) & (cols < size)).reshape(-1, 1, size)
    rows = ops.clamp(rows, 0, size - 1).reshape(-1, size, 1)
    cols = ops.clamp(cols, 0, size - 1).reshape(-1, 1, size)
    flat = (indices.reshape(-1, 1, 1) * size + rows) * size + cols  # (B, S, S) pixel numbers
    pixels = ops.gather(images_u8.reshape(-1, 3), flat.reshape(-1), 0).reshape(-1, size, size, 3)
    return pixels * ops.cast(inside, ms.uint8).reshape(-1, size, size, 1)


def augment(images_u8: Tensor, indices: Tensor, offsets: Tensor, flips: Tensor, mean: Tensor,
            std: Tensor) -> Tensor:
    """A normalised float32 NCHW training batch: crop_flip then normalize."""
    return normalize(crop_flip(images_u8, indices, offsets, flips), mean, std)
