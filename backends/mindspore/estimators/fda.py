"""Frequency-domain approximation (Xu et al. 2021, "Learning Frequency Domain Approximation for
Binary Neural Networks", NeurIPS; Eq. 10): the derivative of the truncated Fourier series of the
square wave sign(sin(w x)),

    forward  y = sign(x)
    backward g(x) = (4 w / pi) * sum_{i=0..n} cos((2i + 1) w x)   for |x| <= 1, 0 outside.

form "closed" uses the Dirichlet-kernel identity sum_{i=0..n} cos((2i+1) t) = sin(2(n+1) t) / (2 sin t)
(limit n + 1 at t = 0), whose cost does not grow with n. form "sum" adds the n + 1 cosines one by one,
the reference; since n is a Tensor (set per epoch), the loop runs to the largest n the run will use
(`n_max`) and masks the terms beyond n.
"""
from __future__ import annotations

import math

import mindspore as ms
from mindspore import Tensor, ops

from backends.mindspore.estimators.base import SignEstimator

# Below this |w x| the closed form's 0/0 is replaced by its limit n + 1; the relative error of that
# limit is ((2(n+1))^2 - 1) (w x)^2 / 6 < 1e-9 for n <= 100.
_TINY = 1e-6


class FDA(SignEstimator):
    def __init__(self, omega: float = 0.1, form: str = "closed", n_max: int = 9):
        super().__init__()
        if form not in ("closed", "sum"):
            raise ValueError(f"FDA form '{form}': unknown; choose closed or sum")
        self.omega = float(omega)
        self.closed = form == "closed"
        self.n_max = int(n_max)

    def pseudo_grad(self, x: Tensor, n: Tensor) -> Tensor:
        t = self.omega * x
        if self.closed:
            series = self._closed(t, n)
        else:
            series = self._sum(t, n)
        inside = ops.cast(ops.abs(x) <= 1.0, ms.float32)
        return (4.0 * self.omega / math.pi) * series * inside

    @staticmethod
    def _closed(t: Tensor, n: Tensor) -> Tensor:
        terms = n + 1.0
        tiny = ops.abs(t) < _TINY
        denom = ops.select(tiny, ops.ones_like(t), 2.0 * ops.sin(t))  # no 0/0 in the unused branch
        return ops.select(tiny, ops.broadcast_to(terms, t.shape), ops.sin(2.0 * terms * t) / denom)

    def _sum(self, t: Tensor, n: Tensor) -> Tensor:
        total = ops.zeros_like(t)
        for i in range(self.n_max + 1):
            total = total + ops.cast(i <= n, ms.float32) * ops.cos((2 * i + 1) * t)
        return total
