"""The model zoo's CIFAR augmentation on the training device, on whole batches of uint8 images.

Identical, bit for bit, to bench.data.augment.augment_numpy on any device (the tests check CPU and
CUDA): zero-pad the raw uint8 pixels by PAD on each side, crop 32x32 at the per-image offsets
(rows, cols) drawn on the host, flip horizontally where flagged, then normalise.

Normalisation is a lookup: a uint8 pixel of channel c has only 256 possible values, so
`normalization_table` evaluates bench.data.augment.normalize_numpy itself on all of them once, on
the host, and the device gathers from that (3, 256) float32 table. Computing (x / 255 - mean) / std
on the GPU instead differs in the last bit: CUDA divides by a scalar as a multiply by its
reciprocal. The lookup is also one pass instead of three.

The result is NCHW as a view of the NHWC gather, i.e. already channels_last in memory.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from bench.data.augment import PAD, normalize_numpy


def normalization_table(normalization: str, device: str | torch.device) -> Tensor:
    """Flat (3 * 256,) float32: entry c * 256 + v is channel c's normalised value of pixel v."""
    pixels = np.broadcast_to(np.arange(256, dtype=np.uint8)[None, None, :, None], (1, 1, 256, 3))
    table = normalize_numpy(np.ascontiguousarray(pixels), normalization)  # (1, 3, 1, 256)
    return torch.from_numpy(table.reshape(3 * 256)).to(device)


def normalize(images: Tensor, table: Tensor) -> Tensor:
    """uint8 NHWC -> normalised float32 NCHW (a view of NHWC memory) by table lookup."""
    channel_base = torch.arange(0, 3 * 256, 256, device=images.device)
    return table[images.long() + channel_base].permute(0, 3, 1, 2)


def augment_batch(images: Tensor, offsets: Tensor, flips: Tensor, table: Tensor) -> Tensor:
    """images (B, H, W, 3) uint8, offsets (B, 2) int64, flips (B,) bool, table from
    normalization_table -> normalised float32 (B, 3, H, W) with channels_last strides."""
    b, h, w, _ = images.shape
    padded = torch.nn.functional.pad(images, (0, 0, PAD, PAD, PAD, PAD))  # pads W and H, not channels
    rows = offsets[:, 0, None] + torch.arange(h, device=images.device)  # (B, H)
    cols = offsets[:, 1, None] + torch.arange(w, device=images.device)  # (B, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=images.device)[:, None, None]
    return normalize(padded[batch, rows[:, :, None], cols[:, None, :]], table)
