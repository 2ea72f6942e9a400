"""ApproxSign (Liu et al. 2018, "Bi-Real Net", Eq. 4): the derivative of a piecewise quadratic.

    forward  y = sign(x)
    backward g(x) = max(0, 2 - 2|x|)
"""
from __future__ import annotations

from mindspore import Tensor, ops

from backends.mindspore.estimators.base import SignEstimator


class ApproxSign(SignEstimator):
    def pseudo_grad(self, x: Tensor, n: Tensor) -> Tensor:
        return ops.relu(2.0 - 2.0 * ops.abs(x))
