"""VGG-small, the plain CIFAR-10 network of IR-Net, RBNN and ReCU, described once, framework-neutral:
both backends build exactly this (backends/*/vgg_small.py).

The layout is IR-Net's VGG_SMALL_1W1A (htqin/IR-Net, CIFAR-10/VGG-Small/vgg.py):

    conv0 3x3 3->128 (full precision, no bias) -> bn0 -> Hardtanh
    conv1 128->128 -> max-pool 2x2 -> bn1 -> Hardtanh         conv1..conv5: binarized 3x3 convolutions,
    conv2 128->256               -> bn2 -> Hardtanh           padding 1, stride 1, no bias
    conv3 256->256 -> max-pool 2x2 -> bn3 -> Hardtanh
    conv4 256->512               -> bn4 -> Hardtanh
    conv5 512->512 -> max-pool 2x2 -> bn5 -> Hardtanh
    flatten (512 x 4 x 4 = 8192) -> fc 8192->classes (full precision, with bias)

FDA's own VGG-small was never released (the paper reports 92.54 top-1 on it; the model zoo has
ResNet-20 only), so what is not IR-Net's layout is this suite's choice, stated here:

- Initialisation is IR-Net's (its _initialize_weights): every convolution, conv0 included,
  N(0, 2 / fan_out) with fan_out = C_out * 3 * 3 (He normal, fan-out mode); BatchNorm gamma 1,
  beta 0; fc weight N(0, 0.01^2), bias 0. BatchNorm eps and momentum as ResNet-20's (PyTorch's
  defaults, which IR-Net uses).
- The binarized convolution is the suite's one (backends/*/binconv.py, the model zoo's QuanConv):
  sign of the weights and inputs through the spec's estimator, scaled by mean|W| per layer or per
  output channel (model.scaling), the noise module inside it when noise.enabled. IR-Net's IRConv2d
  instead binarizes balanced, standardised weights (Libra-PB) with a power-of-two per-channel
  scale: that is part of IR-Net's method, not of the network. Here every binarized convolution is
  followed, through a max-pool or directly, by BatchNorm, and a positive per-channel scale commutes
  with max-pooling and cancels in BatchNorm (in training exactly, up to its eps; in evaluation its
  running statistics carry the same scale), so the choice of scale does not change what is learnt.
- The noise module attaches where it does on ResNet-20: inside each binarized convolution, on the
  weights (d = C_in * 9 per output channel) and the input activations (d = C_in per pixel); conv0
  and fc stay full precision without it.

With model.binarize = false (the full-precision twin) conv1..conv5 are real-valued 3x3 convolutions
under the same names; nothing else changes.

Parameter names (both backends at their interface; MindSpore's attribute paths): conv0.weight,
bn0.moving_mean, bn0.moving_variance, bn0.gamma, bn0.beta, conv1.weight, bn1.*, ..., conv5.weight,
bn5.*, fc.weight, fc.bias, and with the noise module convK.noise_{w,a}.fc{1,2}.weight.
"""
from __future__ import annotations

from typing import NamedTuple

NAME = "vgg_small"
STEM_WIDTH = 128  # conv0, full precision
CLASSIFIER = "fc"  # the full-precision classifier's name: fc.weight, fc.bias
LINEAR_INIT_STD = 0.01


class Layer(NamedTuple):
    """One binarized convolution convK and what follows it: [max-pool 2x2] -> bnK -> Hardtanh."""

    in_channels: int
    out_channels: int
    pool: bool


LAYERS = (Layer(128, 128, True), Layer(128, 256, False), Layer(256, 256, True), Layer(256, 512, False),
          Layer(512, 512, True))
FEATURES = LAYERS[-1].out_channels * 4 * 4  # 32 / 2**3 = 4 pixels a side after the three pools


def forward_macs(num_classes: int = 10) -> int:
    """Multiply-accumulates of one 32x32 image's forward pass (convolutions and fc)."""
    side, macs = 32, 3 * STEM_WIDTH * 9 * 32 * 32
    for layer in LAYERS:
        macs += layer.in_channels * layer.out_channels * 9 * side * side
        side //= 2 if layer.pool else 1
    return macs + FEATURES * num_classes
