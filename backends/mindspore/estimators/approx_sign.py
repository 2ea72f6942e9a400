"""approx_sign: g(x) = max(0, 2 - 2|x|) (bench/estimators.py)."""
from __future__ import annotations

from mindspore import Tensor, ops


def pseudo_grad(x: Tensor, values: Tensor) -> Tensor:
    return ops.relu(2.0 - 2.0 * ops.abs(x))
