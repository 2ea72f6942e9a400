"""reste: g(x) = m^(1/o) / m for |x| <= m, (1/o) |x|^((1-o)/o) for m < |x| <= c, else 0; values (o,)
(bench/estimators.py). The power is taken of max(|x|, m), so the branch where() discards is finite
too (|x|^negative at 0 is inf)."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def pseudo_grad(x: Tensor, values: Tensor, cut: float, interval: float) -> Tensor:
    o = values[0]
    a = x.abs()
    power = torch.pow(a.clamp(min=interval), (1 - o) / o) / o
    secant = torch.exp(math.log(interval) / o) / interval  # m^(1/o) / m
    return torch.where(a <= interval, secant, torch.where(a <= cut, power, 0.0))
