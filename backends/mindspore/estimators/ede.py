"""ede: g(x) = k t (1 - tanh(t x)^2), values (t, k) (bench/estimators.py)."""
from __future__ import annotations

from mindspore import Tensor

from backends.mindspore.estimators.core import sech2


def pseudo_grad(x: Tensor, values: Tensor) -> Tensor:
    t, k = values[0], values[1]
    return k * t * sech2(t * x)
