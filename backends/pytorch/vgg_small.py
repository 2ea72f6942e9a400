"""The VGG-small of bench/networks/vgg_small.py in PyTorch, binarized or its full-precision twin;
convolutions: binconv.py.

Modules are registered in the layout's order under its names (conv0, bn0, conv1, bn1, ..., conv5,
bn5, fc), so state_dict order is the interface's (names.py renames BatchNorm's tensors).
Initialisation (IR-Net's, the MindSpore port matches it): every convolution N(0, 2 / fan_out),
fan_out = C_out * 3 * 3; BatchNorm gamma 1, beta 0; fc weight N(0, 0.01^2), bias 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backends.pytorch.binconv import conv3x3, set_estimator_values
from bench.networks.layers import BN_EPS, BN_MOMENTUM
from bench.networks.vgg_small import FEATURES, LAYERS, LINEAR_INIT_STD, STEM_WIDTH
from bench.spec import Spec


class VggSmall(nn.Module):
    """forward(images, alpha): alpha is the noise modules' weight as a 0-d tensor, None to skip them."""

    def __init__(self, spec: Spec):
        super().__init__()
        self.conv0 = nn.Conv2d(3, STEM_WIDTH, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(STEM_WIDTH, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.pools = [layer.pool for layer in LAYERS]
        for i, layer in enumerate(LAYERS, 1):
            # attributes convK, bnK in the layout's order: the parameter names and their order
            setattr(self, f"conv{i}", conv3x3(layer.in_channels, layer.out_channels, 1, spec))
            setattr(self, f"bn{i}", nn.BatchNorm2d(layer.out_channels, eps=BN_EPS, momentum=BN_MOMENTUM))
        self.fc = nn.Linear(FEATURES, spec.model.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # the noise modules' linears keep their own N(0, 1/fan_in) init (noise.py)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(self.fc.weight, std=LINEAR_INIT_STD)
        nn.init.zeros_(self.fc.bias)

    def set_estimator_values(self, values: dict[str, dict[str, float]]) -> None:
        set_estimator_values(self, values)

    def forward(self, x: Tensor, alpha: Tensor | None = None) -> Tensor:
        x = F.hardtanh(self.bn0(self.conv0(x)))
        for i, pool in enumerate(self.pools, 1):
            x = getattr(self, f"conv{i}")(x, alpha)
            if pool:
                x = F.max_pool2d(x, 2)
            x = F.hardtanh(getattr(self, f"bn{i}")(x))
        return self.fc(torch.flatten(x, 1))
