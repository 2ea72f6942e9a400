"""The ResNet-20 of bench/networks/resnet20.py in MindSpore, binarized or its full-precision twin;
convolutions: binconv.py.

Parameter names are the model zoo's (backends/reference/modelzoo-resnet20-params.txt), being the
attribute paths: conv1.weight, bn1.gamma, bn1.moving_mean, layer1.0.conv1.weight, layer1.0.relu1.w,
..., linear.weight, linear.bias. BatchNorm momentum 0.9 (MindSpore's convention, = PyTorch's 0.1),
eps 1e-5. Initialisation as the PyTorch twin: conv and linear weights He-normal N(0, 2 / fan_in),
linear bias 0, BN gamma 1 beta 0, PReLU slope 0.25.
"""
from __future__ import annotations

from mindspore import Tensor, nn, ops
from mindspore.common.initializer import HeNormal

from backends.mindspore.binconv import conv3x3
from bench.networks.layers import BN_EPS, BN_MOMENTUM
from bench.networks.resnet20 import PRELU_INIT, STAGE_WIDTHS, Block, shortcut_padding, stage_blocks
from bench.spec import Spec


def _bn(channels: int) -> nn.BatchNorm2d:
    # MindSpore's momentum weighs the running statistic, PyTorch's the new batch
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=1.0 - BN_MOMENTUM)


def subsample2(x: Tensor) -> Tensor:
    """x[:, :, ::2, ::2] as an explicit StridedSlice. The indexing form's backward fails in PYNATIVE
    mode on CPU with MindSpore 2.10 ("StridedSliceGrad ... input memory out of bounds", once a
    segfault); ops.strided_slice differentiates correctly in both modes, so both use it."""
    b, c, h, w = x.shape
    return ops.strided_slice(x, (0, 0, 0, 0), (b, c, h, w), (1, 1, 2, 2))


class BasicBlock(nn.Cell):
    def __init__(self, block: Block, spec: Spec):
        super().__init__()
        in_channels, out_channels, stride = block
        self.conv1 = conv3x3(in_channels, out_channels, stride, spec)
        self.bn1 = _bn(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels, 1, spec)
        self.bn2 = _bn(out_channels)
        self.relu1 = nn.PReLU(channel=1, w=PRELU_INIT)
        self.relu2 = nn.PReLU(channel=1, w=PRELU_INIT)
        self.downsample = stride != 1 or in_channels != out_channels
        if stride not in (1, 2):
            raise ValueError(f"stride {stride}: option-A shortcut supports 1 or 2")
        # ops.Pad (the model zoo's nn.Pad), not ops.pad: in GRAPH_MODE on CPU the latter's backward
        # (PadV3Grad) returns stale values from the second call on (MindSpore 2.10)
        self.channel_pad = ops.Pad(((0, 0), shortcut_padding(in_channels, out_channels), (0, 0), (0, 0)))

    def construct(self, x: Tensor, values: Tensor, alpha: Tensor) -> Tensor:
        out = self.bn1(self.relu1(self.conv1(x, values, alpha)))
        out = self.bn2(self.relu2(self.conv2(out, values, alpha)))
        if self.downsample:
            x = self.channel_pad(subsample2(x))
        return out + x


class BinaryResNet20(nn.Cell):
    """construct(images, values, alpha) -> logits; values: the estimators' runtime values, one row per
    role, alpha a 0-d float32 Tensor (see binconv.py)."""

    def __init__(self, spec: Spec):
        super().__init__()
        he = HeNormal(mode="fan_in", nonlinearity="relu")
        self.conv1 = nn.Conv2d(3, STAGE_WIDTHS[0], 3, stride=1, pad_mode="pad", padding=1, has_bias=False,
                               weight_init=he)
        self.bn1 = _bn(STAGE_WIDTHS[0])
        self.layer1, self.layer2, self.layer3 = (
            nn.CellList([BasicBlock(block, spec) for block in stage_blocks(stage)]) for stage in range(3))
        self.linear = nn.Dense(STAGE_WIDTHS[-1], spec.model.num_classes, weight_init=he, bias_init="zeros")

    def construct(self, x: Tensor, values: Tensor, alpha: Tensor) -> Tensor:
        x = self.bn1(self.conv1(x))
        for block in self.layer1:
            x = block(x, values, alpha)
        for block in self.layer2:
            x = block(x, values, alpha)
        for block in self.layer3:
            x = block(x, values, alpha)
        x = ops.relu(x).mean(axis=(2, 3))
        return self.linear(x)
