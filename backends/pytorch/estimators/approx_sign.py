"""approx_sign: g(x) = max(0, 2 - 2|x|) (bench/estimators.py)."""
from __future__ import annotations

import torch
from torch import Tensor


def pseudo_grad(x: Tensor, values: Tensor) -> Tensor:
    return torch.clamp(2 - 2 * x.abs(), min=0)
