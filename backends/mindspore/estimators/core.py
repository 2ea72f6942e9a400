"""What every MindSpore sign estimator shares: the forward sign and the custom-gradient plumbing.
An estimator itself is only its `pseudo_grad` (one module each, next to this one; formulas in
bench/estimators.py).

Forward: sign(x) in {-1, +1} with sign(0) = +1 (ops.sign would give 0, and a binary layer must not).
Backward: dL/dx = dL/dy * g(x; values, *options), with g computed in float32 whatever the input
dtype. `values`, the estimator's runtime values (FDA's n, EDE's and RBNN's t and k, ReSTE's o:
bench/estimators.py), is a float32 vector Tensor *input*, not a constant: the model takes one
(roles, R) Tensor, a row per role, and hands each estimator Cell its role's row, so a compiled graph
is reused when the schedules change the values between epochs; it receives a zero gradient. The
options (clip, omega, form, n_max, ...) are Python constants of the graph.

MindSpore lets a Cell define `bprop(self, *inputs, out, dout)`, which replaces autodiff for that
Cell in GRAPH and PYNATIVE mode; it cannot yield gradients for the Cell's own Parameters, hence
estimators are parameter-free and take the weight or activation as an input.
"""
from __future__ import annotations

from collections.abc import Callable

import mindspore as ms
from mindspore import Tensor, nn, ops

from bench.estimators import estimator
from bench.spec import EstimatorSpec


def binary_sign(x: Tensor) -> Tensor:
    """sign(x) with sign(0) = +1, in x's dtype."""
    return ops.cast(x >= 0, x.dtype) * 2 - 1


class SignEstimator(nn.Cell):
    """y = estimator(x, values) = sign(x); dy/dx := pseudo_grad(x, values, *options)."""

    def __init__(self, spec: EstimatorSpec, pseudo_grad: Callable[..., Tensor]):
        super().__init__()
        self.pseudo_grad = pseudo_grad
        self.options = estimator(spec.name).options(spec)

    def construct(self, x: Tensor, values: Tensor) -> Tensor:
        return binary_sign(x)

    def bprop(self, x: Tensor, values: Tensor, out: Tensor, dout: Tensor) -> tuple[Tensor, Tensor]:
        grad = self.pseudo_grad(ops.cast(x, ms.float32), values, *self.options)
        return ops.cast(ops.cast(dout, ms.float32) * grad, dout.dtype), ops.zeros_like(values)


def sech2(y: Tensor) -> Tensor:
    """1 - tanh(y)^2 as 4 e / (1 + e)^2, e = exp(-2|y|): no cancellation where tanh nears ±1 (the
    PyTorch twin says why)."""
    e = ops.exp(-2.0 * ops.abs(y))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))
