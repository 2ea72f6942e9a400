"""Noise adaptation module (Xu et al. 2021, FDA-BNN, Sec. 3.3, Eq. 13-14).

The truncated Fourier series leaves a residual r(t) = sign(t) - f_n(t); the paper learns it with a
small two-layer perceptron plus a fixed sinusoid,

    e(t) = fc2(ReLU(fc1(t))) + sin_scale * sin(t),     fc1: d -> h, fc2: h -> d, h = max(1, d // k),

and trains the binarised layer with  z = sign_est(t) + alpha * e(t),  alpha decaying to 0 so the
deployed layer is purely binary. t is a vector of d numbers: for weights, one output channel's
flattened kernel (d = C_in * 3 * 3); for activations, one pixel's channel vector (d = C_in).

Both linears are bias-free and initialised N(0, 1/fan_in) (zero mean, unit output variance for unit
input variance); h: bench.architecture.noise_hidden_width.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from bench.architecture import noise_hidden_width


class NoiseAdaptation(nn.Module):
    """e(t) = fc2(ReLU(fc1(t))) + sin_scale * sin(t) over the last dimension of t (size d)."""

    def __init__(self, d: int, k: int = 64, sin_scale: float = 0.1):
        super().__init__()
        self.d, self.hidden, self.sin_scale = d, noise_hidden_width(d, k), sin_scale
        self.fc1 = nn.Linear(d, self.hidden, bias=False)
        self.fc2 = nn.Linear(self.hidden, d, bias=False)
        for fc in (self.fc1, self.fc2):
            nn.init.normal_(fc.weight, mean=0.0, std=1.0 / math.sqrt(fc.in_features))

    def forward(self, t: Tensor) -> Tensor:
        return self.fc2(torch.relu(self.fc1(t))) + self.sin_scale * torch.sin(t)

    def extra_repr(self) -> str:
        return f"d={self.d}, hidden={self.hidden}, sin_scale={self.sin_scale}"
