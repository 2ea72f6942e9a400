"""The ResNet-20 of bench/networks/resnet20.py in PyTorch, binarized or its full-precision twin;
convolutions: binconv.py.

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

from backends.pytorch.binconv import conv3x3, set_estimator_values
from bench.networks.layers import BN_EPS, BN_MOMENTUM
from bench.networks.resnet20 import PRELU_INIT, STAGE_WIDTHS, Block, shortcut_padding, stage_blocks
from bench.spec import Spec


def shortcut_a(x: Tensor, out_channels: int, stride: int) -> Tensor:
    """Option A: identity, or subsample by `stride` and zero-pad channels equally on both sides."""
    if stride == 1 and x.shape[1] == out_channels:
        return x
    return F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, *shortcut_padding(x.shape[1], out_channels)))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class BasicBlock(nn.Module):
    def __init__(self, block: Block, spec: Spec):
        super().__init__()
        in_channels, out_channels, stride = block
        self.out_channels, self.stride = out_channels, stride
        # registration order = the model zoo's parameter order: conv1, bn1, conv2, bn2, relu1, relu2
        self.conv1 = conv3x3(in_channels, out_channels, stride, spec)
        self.bn1 = _bn(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels, 1, spec)
        self.bn2 = _bn(out_channels)
        self.relu1 = nn.PReLU(num_parameters=1, init=PRELU_INIT)
        self.relu2 = nn.PReLU(num_parameters=1, init=PRELU_INIT)

    def forward(self, x: Tensor, alpha: Tensor | None = None) -> Tensor:
        out = self.bn1(self.relu1(self.conv1(x, alpha)))
        out = self.bn2(self.relu2(self.conv2(out, alpha)))
        return out + shortcut_a(x, self.out_channels, self.stride)


class BinaryResNet20(nn.Module):
    """forward(images, alpha): alpha is the noise modules' weight as a 0-d tensor, None to skip them."""

    def __init__(self, spec: Spec):
        super().__init__()
        self.conv1 = nn.Conv2d(3, STAGE_WIDTHS[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = _bn(STAGE_WIDTHS[0])
        self.layer1, self.layer2, self.layer3 = (
            nn.ModuleList(BasicBlock(block, spec) for block in stage_blocks(stage)) for stage in range(3))
        self.linear = nn.Linear(STAGE_WIDTHS[-1], spec.model.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # the noise modules' linears keep their own N(0, 1/fan_in) init (noise.py)
        for module in self.modules():
            if isinstance(module, nn.Conv2d) or module is self.linear:
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.linear.bias)

    def blocks(self) -> list[BasicBlock]:
        return [block for stage in (self.layer1, self.layer2, self.layer3) for block in stage]

    def set_estimator_values(self, values: dict[str, dict[str, float]]) -> None:
        """Each estimator module's runtime values from now on, by its role (bench/estimators.py)."""
        set_estimator_values(self, values)

    def forward(self, x: Tensor, alpha: Tensor | None = None) -> Tensor:
        x = self.bn1(self.conv1(x))
        for block in self.blocks():
            x = block(x, alpha)
        x = torch.flatten(F.adaptive_avg_pool2d(F.relu(x), 1), 1)
        return self.linear(x)
