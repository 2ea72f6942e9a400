"""fda: g(x) = (4 w / pi) sum_{i=0..n} cos((2i+1) w x) for |x| <= 1, else 0 (bench/estimators.py).

form "closed" uses the Dirichlet-kernel identity sum_{i=0..n} cos((2i+1) t) = sin(2(n+1) t) / (2 sin t)
(limit n + 1 at t = 0), whose cost does not grow with n. form "sum" adds the n + 1 cosines one by one,
the reference; since n is a Tensor (set per epoch), the loop runs to the largest n the run will use
(`n_max`) and masks the terms beyond n.
"""
from __future__ import annotations

import math

import mindspore as ms
from mindspore import Tensor, ops

# Below this |w x| the closed form's 0/0 is replaced by its limit n + 1; the relative error of that
# limit is ((2(n+1))^2 - 1) (w x)^2 / 6 < 1e-9 for n <= 100.
_TINY = 1e-6


def closed(t: Tensor, n: Tensor) -> Tensor:
    """sum_{i=0..n} cos((2i+1) t) as sin(2(n+1) t) / (2 sin t)."""
    terms = n + 1.0
    tiny = ops.abs(t) < _TINY
    denom = ops.select(tiny, ops.ones_like(t), 2.0 * ops.sin(t))  # no 0/0 in the unused branch
    return ops.select(tiny, ops.broadcast_to(terms, t.shape), ops.sin(2.0 * terms * t) / denom)


def term_sum(t: Tensor, n: Tensor, n_max: int) -> Tensor:
    """sum_{i=0..n} cos((2i+1) t), unrolled to n_max + 1 terms, terms i > n masked."""
    total = ops.zeros_like(t)
    for i in range(n_max + 1):
        total = total + ops.cast(i <= n, ms.float32) * ops.cos((2 * i + 1) * t)
    return total


def pseudo_grad(x: Tensor, values: Tensor, omega: float, form: str, n_max: int | None) -> Tensor:
    n = values[0]  # values = (n,)
    t = omega * x
    series = closed(t, n) if form == "closed" else term_sum(t, n, n_max)
    inside = ops.cast(ops.abs(x) <= 1.0, ms.float32)
    return (4.0 * omega / math.pi) * series * inside
