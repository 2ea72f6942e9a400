"""The binarized ResNet-20 of the FDA-BNN model zoo (research/cv/FDA-BNN/src/resnet.py), for CIFAR.

    conv1 3x3 3->16 (full precision, no bias) -> bn1                     (no activation)
    layer1..3: 3 BasicBlocks each at 16, 32, 64 channels, stride 2 entering layer2 and layer3
        block:  out = bn1(relu1(conv1(x)))      conv1, conv2: BinConv2d (binconv.py)
                out = bn2(relu2(conv2(out)))    relu1, relu2: PReLU, one slope, init 0.25
                out = out + shortcut(x)         option A (He et al. 2016): x[:, :, ::2, ::2] with
                                                zero channels padded equally on both sides
                                                (no activation after the add)
    ReLU -> global average pool -> linear 64->10 (full precision, with bias)

Modules are registered in the model zoo's order and under its names (conv1, bn1, layer1.0.conv1,
layer1.0.bn1, layer1.0.conv2, layer1.0.bn2, layer1.0.relu1, layer1.0.relu2, ..., linear), so
state_dict order follows backends/reference/modelzoo-resnet20-params.txt (names.py renames).

Initialisation (the MindSpore port matches it): every conv and the linear weight He-normal,
N(0, 2 / fan_in) with fan_in = C_in * kh * kw; linear bias 0; BatchNorm gamma 1, beta 0, eps 1e-5,
running statistics updated with momentum 0.1 (MindSpore's momentum=0.9); PReLU slope 0.25.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backends.pytorch.binconv import BinConv2d
from backends.pytorch.estimators import FdaSign
from bench.spec import Spec

STAGE_WIDTHS = (16, 32, 64)
BLOCKS_PER_STAGE = 3


def shortcut_a(x: Tensor, out_channels: int, stride: int) -> Tensor:
    """Option A: identity, or subsample by `stride` and zero-pad channels equally on both sides."""
    if stride == 1 and x.shape[1] == out_channels:
        return x
    pad = (out_channels - x.shape[1]) // 2
    return F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, pad, out_channels - x.shape[1] - pad))


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, spec: Spec):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride
        # registration order = the model zoo's parameter order: conv1, bn1, conv2, bn2, relu1, relu2
        self.conv1 = BinConv2d(in_channels, out_channels, stride, spec.estimator, spec.noise, spec.model.scaling,
                               spec.runtime.fused_estimators)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = BinConv2d(out_channels, out_channels, 1, spec.estimator, spec.noise, spec.model.scaling,
                               spec.runtime.fused_estimators)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.PReLU(num_parameters=1, init=0.25)
        self.relu2 = nn.PReLU(num_parameters=1, init=0.25)

    def forward(self, x: Tensor, alpha: Tensor | None = None) -> Tensor:
        out = self.bn1(self.relu1(self.conv1(x, alpha)))
        out = self.bn2(self.relu2(self.conv2(out, alpha)))
        return out + shortcut_a(x, self.out_channels, self.stride)


class BinaryResNet20(nn.Module):
    """forward(images, alpha): alpha is the noise modules' weight as a 0-d tensor, None to skip them."""

    def __init__(self, spec: Spec):
        super().__init__()
        self.conv1 = nn.Conv2d(3, STAGE_WIDTHS[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0])
        self.layer1 = self._stage(STAGE_WIDTHS[0], STAGE_WIDTHS[0], 1, spec)
        self.layer2 = self._stage(STAGE_WIDTHS[0], STAGE_WIDTHS[1], 2, spec)
        self.layer3 = self._stage(STAGE_WIDTHS[1], STAGE_WIDTHS[2], 2, spec)
        self.linear = nn.Linear(STAGE_WIDTHS[-1], spec.model.num_classes)
        self._init_weights()

    @staticmethod
    def _stage(in_channels: int, width: int, stride: int, spec: Spec) -> nn.ModuleList:
        strides = [stride] + [1] * (BLOCKS_PER_STAGE - 1)
        channels = [in_channels] + [width] * (BLOCKS_PER_STAGE - 1)
        return nn.ModuleList(BasicBlock(c, width, s, spec) for c, s in zip(channels, strides))

    def _init_weights(self) -> None:
        # the noise modules' linears keep their own N(0, 1/fan_in) init (noise.py)
        for module in self.modules():
            if isinstance(module, nn.Conv2d) or module is self.linear:
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.linear.bias)

    def blocks(self) -> list[BasicBlock]:
        return [block for stage in (self.layer1, self.layer2, self.layer3) for block in stage]

    def set_n(self, n: int) -> None:
        """Set the FDA estimators' n (no-op for other estimators)."""
        for module in self.modules():
            if isinstance(module, FdaSign):
                module.set_n(n)

    def forward(self, x: Tensor, alpha: Tensor | None = None) -> Tensor:
        x = self.bn1(self.conv1(x))
        for block in self.blocks():
            x = block(x, alpha)
        x = torch.flatten(F.adaptive_avg_pool2d(F.relu(x), 1), 1)
        return self.linear(x)
