"""Straight-through estimator (Hubara et al. 2016, "Binarized Neural Networks", Eq. 4).

    forward:  sign(x)                       (exactly ±1, sign(0) = +1)
    backward: grad * 1{|x| <= clip}         (the "hard tanh" STE)
              grad                          (clip=None: the identity STE of the FDA-BNN model zoo)
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from backends.pytorch.estimators.core import binary_sign, scaled_grad
from bench.spec import EstimatorSpec


def ste_pseudo_grad(x: Tensor, clip: float | None) -> Tensor:
    """g(x) = 1{|x| <= clip}, or 1 when clip is None."""
    if clip is None:
        return torch.ones_like(x)
    return (x.abs() <= clip).to(x.dtype)


class SteSignFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, clip: float | None) -> Tensor:
        ctx.clip = clip
        if clip is not None:
            ctx.save_for_backward(x)
        return binary_sign(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        if ctx.clip is None:
            # identity: passing grad_output on unchanged is exact in any dtype, no copy needed
            return grad_output, None
        (x,) = ctx.saved_tensors
        return scaled_grad(grad_output, x, lambda v: ste_pseudo_grad(v, ctx.clip)), None


class SteSign(nn.Module):
    """sign with the straight-through gradient, clipped to |x| <= clip (None: not clipped)."""

    def __init__(self, clip: float | None = 1.0):
        super().__init__()
        self.clip = clip

    @classmethod
    def from_spec(cls, spec: EstimatorSpec) -> "SteSign":
        return cls(spec.clip)

    def forward(self, x: Tensor) -> Tensor:
        return SteSignFunction.apply(x, self.clip)

    def extra_repr(self) -> str:
        return f"clip={self.clip}"
