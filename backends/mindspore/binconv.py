"""The binarized 3x3 convolution every network of bench/networks uses (MindSpore twin of
backends/pytorch/binconv.py; the model zoo's QuanConv in research/cv/FDA-BNN/src/quan.py), and its
full-precision twin (model.binarize = false); `conv3x3` picks one from the spec:

    a = sign_est_a(x, values[1])     [+ alpha * e_a(x),  e_a over each pixel's channel vector]
    b = sign_est_w(W, values[0])     [+ alpha * e_w(W),  e_w over each output channel's kernel]
    y = conv2d(a, b, stride, padding=1, no bias) * s      (= conv2d(a, b * s): s factors out)

s = mean|W| under stop_gradient: one scalar for the layer (scaling="layer", the model zoo's) or one
per output channel ("channel"). The bracketed noise terms (noise.py) exist only when the spec
enables the module, and apply only in training: in eval mode activations are exactly ±1 and weights
exactly ±s. `values` holds the estimators' runtime values, one row per role (bench.estimators.ROLES:
the weights' row, then the activations').

Why s multiplies the output, not the weights: with ±1 operands the convolution sums integers, which
is exact in any summation order, so an output whose true value is 0 (frequent: about one in twelve
at 16 channels) is exactly 0. Summing ±s instead rounds, and such outputs come out as ±1e-8 with a
sign that depends on the kernel's summation order; the PReLU that follows has slope 1 on one side
and 0.25 on the other, so its gradient there would depend on the framework and execution mode
(GRAPH vs PYNATIVE differed by ~20% in early-layer gradients before this).

Parameters: weight (C_out, C_in, 3, 3), He-normal N(0, 2 / fan_in) as the PyTorch twin (the
network may give another initializer: VGG-small's is fan-out);
noise_w.fc1.weight, noise_w.fc2.weight, noise_a.fc1.weight, noise_a.fc2.weight with the noise module.
"""
from __future__ import annotations

from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import HeNormal, Initializer, initializer

from backends.mindspore.estimators import make_estimator
from backends.mindspore.noise import NoiseAdaptation
from bench.estimators import ROLES
from bench.spec import Spec


def _weight(in_channels: int, out_channels: int, weight_init: Initializer | None) -> Parameter:
    init = weight_init or HeNormal(mode="fan_in", nonlinearity="relu")
    return Parameter(initializer(init, (out_channels, in_channels, 3, 3)), name="weight")


class BinConv2d(nn.Cell):
    """construct(x, values, alpha): values the estimators' runtime values (ROLES, R) float32, alpha the
    noise weight (0-d float32)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, spec: Spec,
                 weight_init: Initializer | None = None):
        super().__init__()
        self.weight = _weight(in_channels, out_channels, weight_init)
        self.per_channel = spec.model.scaling == "channel"
        self.sign_w = make_estimator(spec.estimator)
        self.sign_a = make_estimator(spec.estimator)
        self.weight_row, self.activation_row = ROLES.index("weight"), ROLES.index("activation")
        noise = spec.noise
        self.noisy = noise.enabled
        if noise.enabled:
            self.noise_w = NoiseAdaptation(in_channels * 9, noise.k, noise.sin_scale, noise.shortcut)
            self.noise_a = NoiseAdaptation(in_channels, noise.k, noise.sin_scale, noise.shortcut)
        self.conv = ops.Conv2D(out_channel=out_channels, kernel_size=3, pad_mode="pad", pad=1, stride=stride)

    def scale(self) -> Tensor:
        """mean|W| without gradient, shaped to multiply the output: () for "layer", (1, C_out, 1, 1)
        for "channel"."""
        w = ops.stop_gradient(ops.abs(self.weight))
        if self.per_channel:
            return w.mean(axis=(1, 2, 3)).reshape(1, -1, 1, 1)
        return w.mean()

    def binary_weight(self, values: Tensor, alpha: Tensor) -> Tensor:
        """sign_est(W) [+ alpha * e_w(W)], before the scale s."""
        w = self.sign_w(self.weight, values[self.weight_row])
        if self.noisy and self.training:
            flat = self.weight.reshape(self.weight.shape[0], -1)
            w = w + alpha * self.noise_w(flat).reshape(self.weight.shape)
        return w

    def binary_input(self, x: Tensor, values: Tensor, alpha: Tensor) -> Tensor:
        a = self.sign_a(x, values[self.activation_row])
        if self.noisy and self.training:
            # e_a acts on each pixel's channel vector: channels last for the linears, then back
            e = self.noise_a(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
            a = a + ops.cast(alpha, a.dtype) * e
        return a

    def construct(self, x: Tensor, values: Tensor, alpha: Tensor) -> Tensor:
        a = self.binary_input(x, values, alpha)
        y = self.conv(a, ops.cast(self.binary_weight(values, alpha), a.dtype))
        return y * ops.cast(self.scale(), y.dtype)


class RealConv2d(nn.Cell):
    """The full-precision twin of BinConv2d: 3x3, padding 1, no bias, real-valued weights and inputs;
    the same parameter (weight) and call, values and alpha ignored (no estimator, no noise module)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, weight_init: Initializer | None = None):
        super().__init__()
        self.weight = _weight(in_channels, out_channels, weight_init)
        self.conv = ops.Conv2D(out_channel=out_channels, kernel_size=3, pad_mode="pad", pad=1, stride=stride)

    def construct(self, x: Tensor, values: Tensor, alpha: Tensor) -> Tensor:
        return self.conv(x, ops.cast(self.weight, x.dtype))


def conv3x3(in_channels: int, out_channels: int, stride: int, spec: Spec,
            weight_init: Initializer | None = None) -> BinConv2d | RealConv2d:
    """The network's 3x3 convolution: binarized, or real-valued when model.binarize is false."""
    if spec.model.binarize:
        return BinConv2d(in_channels, out_channels, stride, spec, weight_init)
    return RealConv2d(in_channels, out_channels, stride, weight_init)
