"""The binarized ResNet-20 of the FDA-BNN model zoo (research/cv/FDA-BNN/src/resnet.py), described
once, framework-neutral: both backends build exactly this.

    conv1 3x3 3->16 (full precision, no bias) -> bn1                     (no activation)
    layer1..3: BLOCKS_PER_STAGE BasicBlocks each at STAGE_WIDTHS channels, STAGE_STRIDES entering each
        block:  out = bn1(relu1(conv1(x)))      conv1, conv2: binarized 3x3 convolutions
                out = bn2(relu2(conv2(out)))    relu1, relu2: PReLU, one slope, init PRELU_INIT
                out = out + shortcut(x)         option A (He et al. 2016): x[:, :, ::2, ::2] with
                                                zero channels padded equally on both sides
                                                (no activation after the add)
    ReLU -> global average pool -> linear 64->classes (full precision, with bias)

Parameter names are the model zoo's (backends/reference/modelzoo-resnet20-params.txt; bench/zoo_names.py).
"""
from __future__ import annotations

from typing import NamedTuple

STAGE_WIDTHS = (16, 32, 64)
STAGE_STRIDES = (1, 2, 2)
BLOCKS_PER_STAGE = 3
BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # weight of the new batch's statistics (MindSpore's momentum is 1 - this)
PRELU_INIT = 0.25


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


# The noise module's shortcut s(t) beside its two linears, e(t) = fc2(ReLU(fc1(t))) + a s(t) with a =
# noise.sin_scale: "sin" (a sin(t), the paper's Eq. 14 and the model zoo's), "linear" (a t), or None
# (written "none": no shortcut); the paper's Table 4 compares the three. Both backends compute exactly these.
NOISE_SHORTCUTS = ("sin", "linear")


def noise_hidden_width(d: int, k: int) -> int:
    """The noise module's hidden width for input size d: max(1, d // k). The public code's d // 64 is
    0 at widths 16 and 32 and silently degenerates to the sine alone; at least one unit is kept."""
    return max(1, d // k)


def noise_k(pairs: list[tuple[int, int]], default: int = 64) -> int:
    """The k giving every (hidden width h, input size d) pair h = noise_hidden_width(d, k), the
    default if none does (a shape check then names the culprits)."""
    for k in range(1, max((d for _, d in pairs), default=1) + 2):
        if all(noise_hidden_width(d, k) == h for h, d in pairs):
            return k
    return default


def spec_tree_for_state(shapes: dict[str, tuple[int, ...]]) -> dict:
    """The spec fields that shape the model a state was saved from (model zoo names; PyTorch's work
    too, the noise and linear names being the same): the noise module is present iff *.noise_*
    tensors are, its k reproduces every hidden width (fc1.weight is (h, d)), the class count is
    linear.bias's length."""
    pairs = [(shape[0], shape[1]) for name, shape in shapes.items()
             if name.endswith(".fc1.weight") and ".noise_" in name and len(shape) == 2]
    noise = any(".noise_" in name for name in shapes)
    tree: dict = {"noise": {"enabled": noise, "k": noise_k(pairs) if noise else 64}}
    bias = shapes.get("linear.bias")
    if bias is not None and len(bias) == 1 and bias[0] >= 2:
        tree["model"] = {"num_classes": bias[0]}
    return tree
