"""The binarized 3x3 convolution every network of bench/networks uses (the FDA-BNN model zoo's), and
its full-precision twin (model.binarize = false); `conv3x3` picks one from the spec.

    a = sign_est(x)                  [+ alpha * e_a(x),  e_a over each pixel's channel vector]
    b = sign_est(W)                  [+ alpha * e_w(W),  e_w over each output channel's kernel]
    y = conv2d(a, b * s) = conv2d(a, b) * s          (stride, padding 1, no bias)

s is mean|W|, detached (a constant scale, as the model zoo and XNOR-Net's alpha without its
gradient): one scalar for the layer (scaling="layer", the model zoo's) or one per output channel
("channel"). The bracketed noise terms (noise.py) exist only when the spec enables the module and
apply only in training with alpha given; in eval mode or with alpha None the layer is exactly binary:
activations ±1 and weights ±s.

s multiplies the convolution's output, not the weights: equal in exact arithmetic, but with ±1
inputs and ±1 weights every partial sum is a small integer (|sum| <= 9 * C_in <= 576), exact in
float32 whatever the summation order, so the binary layer gives the same output for any
convolution algorithm, batch size or framework. With s folded into the weights, sums of rounded
multiples of s land on ±1 ulp instead of 0 depending on the order, and the next sign flips.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from backends.pytorch.estimators import SignEstimator, make_estimator
from backends.pytorch.noise import NoiseAdaptation
from bench.spec import Spec


class BinConv2d(nn.Conv2d):
    """3x3, padding 1, no bias; binarised weights and inputs (see module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, spec: Spec):
        super().__init__(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.scaling = spec.model.scaling
        self.sign_w = make_estimator(spec.estimator, spec.runtime.fused_estimators, "weight")
        self.sign_a = make_estimator(spec.estimator, spec.runtime.fused_estimators, "activation")
        self.noise_w: NoiseAdaptation | None = None
        self.noise_a: NoiseAdaptation | None = None
        noise = spec.noise
        if noise.enabled:
            fused = spec.runtime.fused_estimators
            self.noise_w = NoiseAdaptation(in_channels * 9, noise.k, noise.sin_scale, fused, noise.shortcut)
            self.noise_a = NoiseAdaptation(in_channels, noise.k, noise.sin_scale, fused, noise.shortcut)

    def scale(self) -> Tensor:
        """Detached mean|W|: shape () for "layer", (C_out, 1, 1, 1) for "channel"."""
        w = self.weight.detach().abs()
        return w.mean() if self.scaling == "layer" else w.mean(dim=(1, 2, 3), keepdim=True)

    def _output_scale(self) -> Tensor:
        """scale() shaped to broadcast over the (B, C_out, H, W) output."""
        return self.scale().view(1, -1, 1, 1) if self.scaling == "channel" else self.scale()

    def _noisy(self, alpha: Tensor | None) -> bool:
        return alpha is not None and self.training and self.noise_w is not None

    def sign_weight(self, alpha: Tensor | None = None) -> Tensor:
        """b: ±1 weights (plus alpha * e_w in training), before the scale."""
        if self._noisy(alpha):
            # e_w acts on each output channel's kernel: one column of C_in * 9 per output channel
            return self.noise_w.binarize(self.sign_w, self.weight.flatten(1).unsqueeze(-1), alpha).view_as(self.weight)
        return self.sign_w(self.weight)

    def binary_weight(self, alpha: Tensor | None = None) -> Tensor:
        """The effective weights b * s (what the layer computes with)."""
        return self.sign_weight(alpha) * self.scale()

    def binary_input(self, x: Tensor, alpha: Tensor | None = None) -> Tensor:
        if self._noisy(alpha):
            # e_a acts on each pixel's channel vector: the columns of x viewed as (B, C, H * W)
            return self.noise_a.binarize(self.sign_a, x.flatten(2), alpha).view_as(x)
        return self.sign_a(x)

    def forward(self, x: Tensor, alpha: Tensor | None = None) -> Tensor:
        y = F.conv2d(self.binary_input(x, alpha), self.sign_weight(alpha), None, self.stride, self.padding)
        return y * self._output_scale()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", scaling={self.scaling}"


class RealConv2d(nn.Conv2d):
    """The full-precision twin of BinConv2d: 3x3, padding 1, no bias, real-valued weights and inputs;
    the same parameter name (weight) and call, alpha ignored (it has no noise module)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)

    def forward(self, x: Tensor, alpha: Tensor | None = None) -> Tensor:
        return super().forward(x)


def conv3x3(in_channels: int, out_channels: int, stride: int, spec: Spec) -> BinConv2d | RealConv2d:
    """The network's 3x3 convolution: binarized, or real-valued when model.binarize is false."""
    if spec.model.binarize:
        return BinConv2d(in_channels, out_channels, stride, spec)
    return RealConv2d(in_channels, out_channels, stride)


def set_estimator_values(model: nn.Module, values: dict[str, dict[str, float]]) -> None:
    """Each estimator module's runtime values from now on, by its role (bench/estimators.py)."""
    for module in model.modules():
        if isinstance(module, SignEstimator):
            module.set_values(values[module.role])
