"""The VGG-small of bench/networks/vgg_small.py in MindSpore, binarized or its full-precision twin;
convolutions: binconv.py.

Parameter names are the attribute paths, the interface's (conv0.weight, bn0.gamma, bn0.moving_mean,
conv1.weight, ..., bn5.beta, fc.weight, fc.bias). BatchNorm momentum 0.9 (MindSpore's convention,
= PyTorch's 0.1), eps 1e-5. Initialisation as the PyTorch twin (IR-Net's): every convolution
N(0, 2 / fan_out), BN gamma 1 beta 0, fc weight N(0, 0.01^2), bias 0.
"""
from __future__ import annotations

from mindspore import Tensor, nn, ops
from mindspore.common.initializer import HeNormal, Normal

from backends.mindspore.binconv import conv3x3
from bench.networks.layers import BN_EPS, BN_MOMENTUM
from bench.networks.vgg_small import FEATURES, LAYERS, LINEAR_INIT_STD, STEM_WIDTH
from bench.spec import Spec


def _bn(channels: int) -> nn.BatchNorm2d:
    # MindSpore's momentum weighs the running statistic, PyTorch's the new batch
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=1.0 - BN_MOMENTUM)


class VggSmall(nn.Cell):
    """construct(images, values, alpha) -> logits; values: the estimators' runtime values, one row per
    role, alpha a 0-d float32 Tensor (see binconv.py)."""

    def __init__(self, spec: Spec):
        super().__init__()
        fan_out = HeNormal(mode="fan_out", nonlinearity="relu")
        self.conv0 = nn.Conv2d(3, STEM_WIDTH, 3, stride=1, pad_mode="pad", padding=1, has_bias=False,
                               weight_init=fan_out)
        self.bn0 = _bn(STEM_WIDTH)
        # attributes convK, bnK in the layout's order: the parameter names and their order
        for i, layer in enumerate(LAYERS, 1):
            setattr(self, f"conv{i}", conv3x3(layer.in_channels, layer.out_channels, 1, spec, fan_out))
            setattr(self, f"bn{i}", _bn(layer.out_channels))
        self.pools = tuple(layer.pool for layer in LAYERS)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.fc = nn.Dense(FEATURES, spec.model.num_classes, weight_init=Normal(sigma=LINEAR_INIT_STD),
                           bias_init="zeros")

    def _layer(self, conv: nn.Cell, bn: nn.Cell, pool: bool, x: Tensor, values: Tensor, alpha: Tensor) -> Tensor:
        x = conv(x, values, alpha)
        if pool:  # a Python constant: GRAPH_MODE compiles only the chosen branch
            x = self.pool(x)
        return ops.hardtanh(bn(x), -1.0, 1.0)

    def construct(self, x: Tensor, values: Tensor, alpha: Tensor) -> Tensor:
        x = ops.hardtanh(self.bn0(self.conv0(x)), -1.0, 1.0)
        x = self._layer(self.conv1, self.bn1, self.pools[0], x, values, alpha)
        x = self._layer(self.conv2, self.bn2, self.pools[1], x, values, alpha)
        x = self._layer(self.conv3, self.bn3, self.pools[2], x, values, alpha)
        x = self._layer(self.conv4, self.bn4, self.pools[3], x, values, alpha)
        x = self._layer(self.conv5, self.bn5, self.pools[4], x, values, alpha)
        return self.fc(x.reshape(x.shape[0], -1))
