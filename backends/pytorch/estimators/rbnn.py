"""rbnn: g(x) = k max(0, sqrt(2) t - t^2 |x|), values (t, k) per role (bench/estimators.py)."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def pseudo_grad(x: Tensor, values: Tensor) -> Tensor:
    t, k = values[0], values[1]
    return k * torch.clamp(math.sqrt(2) * t - t * t * x.abs(), min=0)
