"""ApproxSign (Liu et al. 2018, "Bi-Real Net", Eq. 6-7): the derivative of the piecewise
quadratic  F(x) = -1 (x < -1), 2x + x^2 (-1 <= x < 0), 2x - x^2 (0 <= x < 1), 1 (x >= 1).

    forward:  sign(x)                       (exactly ±1, sign(0) = +1)
    backward: grad * max(0, 2 - 2|x|)
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from backends.pytorch.estimators.core import BackwardKernel, binary_sign, scaled
from bench.spec import EstimatorSpec


def approx_sign_pseudo_grad(x: Tensor) -> Tensor:
    """g(x) = max(0, 2 - 2|x|)."""
    return torch.clamp(2 - 2 * x.abs(), min=0)


def approx_sign_backward(grad_output: Tensor, x: Tensor) -> Tensor:
    return scaled(grad_output, x, approx_sign_pseudo_grad(x.float()))


APPROX_SIGN_BACKWARD = BackwardKernel.of(approx_sign_backward)


class ApproxSignFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, fused: bool) -> Tensor:
        ctx.save_for_backward(x)
        ctx.fused = fused
        return binary_sign(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return APPROX_SIGN_BACKWARD(ctx.fused, grad_output, x), None


class ApproxSign(nn.Module):
    """sign with Bi-Real Net's piecewise-linear pseudo-gradient."""

    def __init__(self, fused: bool = False):
        super().__init__()
        self.fused = fused

    @classmethod
    def from_spec(cls, spec: EstimatorSpec, fused: bool = False) -> "ApproxSign":
        return cls(fused)

    def forward(self, x: Tensor) -> Tensor:
        return ApproxSignFunction.apply(x, self.fused)

    def extra_repr(self) -> str:
        return f"fused={self.fused}"
