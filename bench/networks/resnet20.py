"""The binarized ResNet-20 of the FDA-BNN model zoo (research/cv/FDA-BNN/src/resnet.py), described
once, framework-neutral: both backends build exactly this (backends/*/resnet.py).

    conv1 3x3 3->16 (full precision, no bias) -> bn1                     (no activation)
    layer1..3: BLOCKS_PER_STAGE BasicBlocks each at STAGE_WIDTHS channels, STAGE_STRIDES entering each
        block:  out = bn1(relu1(conv1(x)))      conv1, conv2: binarized 3x3 convolutions
                out = bn2(relu2(conv2(out)))    relu1, relu2: PReLU, one slope, init PRELU_INIT
                out = out + shortcut(x)         option A (He et al. 2016): x[:, :, ::2, ::2] with
                                                zero channels padded equally on both sides
                                                (no activation after the add)
    ReLU -> global average pool -> linear 64->classes (full precision, with bias)

With model.binarize = false (the full-precision twin) conv1 and conv2 of every block are real-valued
3x3 convolutions under the same names; nothing else changes.

Parameter names are the model zoo's (backends/reference/modelzoo-resnet20-params.txt; bench/zoo_names.py).
"""
from __future__ import annotations

from typing import NamedTuple

NAME = "resnet20"
STAGE_WIDTHS = (16, 32, 64)
STAGE_STRIDES = (1, 2, 2)
BLOCKS_PER_STAGE = 3
PRELU_INIT = 0.25
CLASSIFIER = "linear"  # the full-precision classifier's name: linear.weight, linear.bias


class Block(NamedTuple):
    in_channels: int
    out_channels: int
    stride: int


def stage_blocks(stage: int) -> list[Block]:
    """The blocks of stage 0, 1 or 2 (layer1..3): the first changes width and stride."""
    width, stride = STAGE_WIDTHS[stage], STAGE_STRIDES[stage]
    in_channels = STAGE_WIDTHS[max(stage - 1, 0)]
    return [Block(in_channels if i == 0 else width, width, stride if i == 0 else 1) for i in range(BLOCKS_PER_STAGE)]


def shortcut_padding(in_channels: int, out_channels: int) -> tuple[int, int]:
    """Option A's zero channels before and after the subsampled input."""
    before = (out_channels - in_channels) // 2
    return before, out_channels - in_channels - before


def forward_macs(num_classes: int = 10) -> int:
    """Multiply-accumulates of one 32x32 image's forward pass (convolutions and the linear)."""
    side, macs = 32, 3 * STAGE_WIDTHS[0] * 9 * 32 * 32
    for stage in range(3):
        for block in stage_blocks(stage):
            side //= block.stride
            macs += (block.in_channels + block.out_channels) * block.out_channels * 9 * side * side
    return macs + STAGE_WIDTHS[-1] * num_classes
