"""Noise adaptation module (Xu et al. 2021, FDA-BNN, Sec. 3.3, Eq. 13-14), the MindSpore twin of
backends/pytorch/noise.py:

    e(t) = fc2(ReLU(fc1(t))) + a s(t),     fc1: d -> h, fc2: h -> d, h = max(1, d // k),

s(t) = sin(t), t or 0 as noise.shortcut says (bench.networks.layers.NOISE_SHORTCUTS), a = noise.sin_scale,

applied as z = sign_est(t) + alpha * e(t) during training (alpha decays to 0, so the deployed layer is
binary). t is one output channel's flattened kernel (d = C_in * 9) for weights, one pixel's channel
vector (d = C_in) for activations. Both linears are bias-free, initialised N(0, 1/fan_in); h:
bench.networks.layers.noise_hidden_width.
"""
from __future__ import annotations

import math

from mindspore import Tensor, nn, ops
from mindspore.common.initializer import Normal

from bench.networks.layers import NOISE_SHORTCUTS, noise_hidden_width


def _dense(fan_in: int, fan_out: int) -> nn.Dense:
    return nn.Dense(fan_in, fan_out, weight_init=Normal(sigma=1.0 / math.sqrt(fan_in)), has_bias=False)


class NoiseAdaptation(nn.Cell):
    """e(t) over the last dimension of t (size d); parameters fc1.weight (h, d), fc2.weight (d, h)."""

    def __init__(self, d: int, k: int = 64, sin_scale: float = 0.1, shortcut: str | None = "sin"):
        super().__init__()
        if shortcut not in (*NOISE_SHORTCUTS, None):
            raise ValueError(f"noise shortcut '{shortcut}': choose one of {', '.join(NOISE_SHORTCUTS)} or None")
        self.d, self.hidden, self.sin_scale, self.shortcut = d, noise_hidden_width(d, k), sin_scale, shortcut
        self.fc1 = _dense(d, self.hidden)
        self.fc2 = _dense(self.hidden, d)

    def construct(self, t: Tensor) -> Tensor:
        e = self.fc2(ops.relu(self.fc1(t)))
        # a Python constant: GRAPH_MODE compiles only the chosen branch
        if self.shortcut == "sin":
            e = e + self.sin_scale * ops.sin(t)
        elif self.shortcut == "linear":
            e = e + self.sin_scale * t
        return e
