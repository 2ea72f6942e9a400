"""rbnn: g(x) = k max(0, sqrt(2) t - t^2 |x|), values (t, k) per role (bench/estimators.py)."""
from __future__ import annotations

import math

from mindspore import Tensor, ops


def pseudo_grad(x: Tensor, values: Tensor) -> Tensor:
    t, k = values[0], values[1]
    return k * ops.relu(math.sqrt(2) * t - t * t * ops.abs(x))
