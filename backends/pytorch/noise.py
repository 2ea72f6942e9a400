"""Noise adaptation module (Xu et al. 2021, FDA-BNN, Sec. 3.3, Eq. 13-14).

The truncated Fourier series leaves a residual r(t) = sign(t) - f_n(t); the paper learns it with a
small two-layer perceptron plus a fixed shortcut (a sinusoid in the paper),

    e(t) = fc2(ReLU(fc1(t))) + a s(t),     fc1: d -> h, fc2: h -> d, h = max(1, d // k),

s(t) = sin(t), t or 0 as noise.shortcut says (sin, linear or None: bench.networks.layers.NOISE_SHORTCUTS),
a = noise.sin_scale,

and trains the binarised layer with  z = sign_est(t) + alpha * e(t),  alpha decaying to 0 so the
deployed layer is purely binary. t is a vector of d numbers: for weights, one output channel's
flattened kernel (d = C_in * 3 * 3); for activations, one pixel's channel vector (d = C_in).

Both linears are bias-free and initialised N(0, 1/fan_in) (zero mean, unit output variance for unit
input variance); h: bench.networks.layers.noise_hidden_width.

Fused (runtime.fused_estimators, like the estimators' backward in estimators/core.py): op by op,
sign_est(t) + alpha * e(t) on an activation is the sign, a channels-last copy, two matmuls, sin, a
scale, two adds and alpha's product, each reading or writing a tensor of the activation's size; the
backward as many again, plus the estimator's pseudo-gradient and autograd's sum of the two
gradients of t. On a CPU that memory traffic, not the arithmetic, is the cost. `binarized` is the
whole of it, the estimator's autograd Function included, through torch.compile, reading the vectors
where they lie, as the columns of a (..., d, m) view (an NCHW activation viewed as (B, C, H*W), no
copy): forward and backward become one Inductor kernel each (plus the linears' small weight
gradients), which read t and the gradient once and write once. Compiling the sign and the noise
apart kept half of that traffic: `make bench-cpu` times the difference (fda-n9+noise against STE).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import torch
from torch import Tensor, nn

from backends.pytorch.estimators.core import SignEstimator, compile_named
from bench.networks.layers import NOISE_SHORTCUTS, noise_hidden_width


def _linear(w: Tensor, t: Tensor) -> Tensor:
    """w @ t, w: (o, i), t: (..., i, m). As a broadcast product and a sum, which Inductor makes a loop
    over t as it lies; a matmul would be a BLAS call on a copy of t with its columns made contiguous."""
    return (w[..., None] * t.unsqueeze(-3)).sum(-2)


def shortcut(t: Tensor, kind: str | None, scale: float) -> Tensor | float:
    """a s(t): scale * sin(t), scale * t, or nothing (0) for kind sin, linear, None. A Python
    constant, so compiled code specialises on it (one kernel per shortcut, no branch inside)."""
    if kind == "sin":
        return scale * torch.sin(t)
    if kind == "linear":
        return scale * t
    return 0.0


def binarized(sign: type[torch.autograd.Function], t: Tensor, values: Tensor, options: tuple[Any, ...], w1: Tensor,
              w2: Tensor, alpha: Tensor, kind: str | None, scale: float) -> Tensor:
    """sign_est(t) + alpha * e(t), e over each column of t (vectors along dim -2); sign: the
    estimator's autograd Function with its runtime values and options, w1, w2: fc1's and fc2's weights, kind and
    scale: the shortcut. e in float32, the sum rounded once to t's dtype, like the estimators' backward."""
    b = sign.apply(t, values, False, options)
    t = t.float()
    e = _linear(w2, torch.relu(_linear(w1, t))) + shortcut(t, kind, scale)
    return (b + alpha * e).to(b.dtype)


@cache
def _binarized_fused(sign: type[torch.autograd.Function]) -> Callable[..., Tensor]:
    """`binarized` for one estimator's Function, compiled at its first call (see core.compile_named);
    dynamic: one variant per rank and dtype serves every layer's widths and batch sizes. Called
    eagerly only: a compiled model traces `binarized` itself (NoiseAdaptation.binarize)."""
    def fused(*args: Any) -> Tensor:
        return binarized(sign, *args)
    return compile_named(fused, f"{sign.__name__}_with_noise")


class NoiseAdaptation(nn.Module):
    """e(t) = fc2(ReLU(fc1(t))) + sin_scale * s(t) over the last dimension of t (size d), s the
    shortcut: sin, linear or None."""

    def __init__(self, d: int, k: int = 64, sin_scale: float = 0.1, fused: bool = False,
                 shortcut: str | None = "sin"):
        super().__init__()
        if shortcut not in (*NOISE_SHORTCUTS, None):
            raise ValueError(f"noise shortcut '{shortcut}': choose one of {', '.join(NOISE_SHORTCUTS)} or None")
        self.d, self.hidden, self.sin_scale, self.fused = d, noise_hidden_width(d, k), sin_scale, fused
        self.shortcut = shortcut
        self.fc1 = nn.Linear(d, self.hidden, bias=False)
        self.fc2 = nn.Linear(self.hidden, d, bias=False)
        for fc in (self.fc1, self.fc2):
            nn.init.normal_(fc.weight, mean=0.0, std=1.0 / math.sqrt(fc.in_features))

    def forward(self, t: Tensor) -> Tensor:
        return self.fc2(torch.relu(self.fc1(t))) + shortcut(t, self.shortcut, self.sin_scale)

    def binarize(self, sign: SignEstimator, t: Tensor, alpha: Tensor) -> Tensor:
        """sign(t) + alpha * e in t's shape, e over each column of t: (..., d, m)."""
        if not self.fused:
            return sign(t) + alpha * self(t.mT).mT
        # Autocast off: the kernel computes in float32 by construction, and a call inside an autocast
        # region then does not make a variant of its own.
        with torch.autocast(t.device.type, enabled=False):
            if torch.compiler.is_compiling():
                # runtime.compile: traced into the model's graph as it is; the compiled wrapper's
                # dynamic shapes there made Inductor fail to order strides
                return binarized(sign.function, t, sign.values, sign.options, self.fc1.weight, self.fc2.weight, alpha,
                                 self.shortcut, self.sin_scale)
            # views, not the Parameters: dynamo compiles a Parameter's shape as a constant, a
            # variant per layer width
            fused = _binarized_fused(sign.function)
            return fused(t, sign.values, sign.options, self.fc1.weight[:], self.fc2.weight[:], alpha, self.shortcut,
                         self.sin_scale)

    def extra_repr(self) -> str:
        return (f"d={self.d}, hidden={self.hidden}, shortcut={self.shortcut}, sin_scale={self.sin_scale}, "
                f"fused={self.fused}")
