"""Straight-through estimator (Hubara et al. 2016, "Binarized Neural Networks", Eq. 4).

    forward:  sign(x)                       (exactly ±1, sign(0) = +1)
    backward: grad * 1{|x| <= clip}         (the "hard tanh" STE)
              grad                          (clip=None: the identity STE of the FDA-BNN model zoo)
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from backends.pytorch.estimators.core import BackwardKernel, binary_sign, scaled
from bench.spec import EstimatorSpec


def ste_pseudo_grad(x: Tensor, clip: float | None) -> Tensor:
    """g(x) = 1{|x| <= clip}, or 1 when clip is None."""
    if clip is None:
        return torch.ones_like(x)
    return (x.abs() <= clip).to(x.dtype)


def ste_backward(grad_output: Tensor, x: Tensor, clip: float) -> Tensor:
    return scaled(grad_output, x, ste_pseudo_grad(x.float(), clip))


STE_BACKWARD = BackwardKernel.of(ste_backward)


class SteSignFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, clip: float | None, fused: bool) -> Tensor:
        ctx.clip, ctx.fused = clip, fused
        if clip is not None:
            ctx.save_for_backward(x)
        return binary_sign(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None]:
        if ctx.clip is None:
            # identity: passing grad_output on unchanged is exact in any dtype, no copy needed
            return grad_output, None, None
        (x,) = ctx.saved_tensors
        return STE_BACKWARD(ctx.fused, grad_output, x, ctx.clip), None, None


class SteSign(nn.Module):
    """sign with the straight-through gradient, clipped to |x| <= clip (None: not clipped)."""

    def __init__(self, clip: float | None = 1.0, fused: bool = False):
        super().__init__()
        self.clip, self.fused = clip, fused

    @classmethod
    def from_spec(cls, spec: EstimatorSpec, fused: bool = False) -> "SteSign":
        return cls(spec.clip, fused)

    def forward(self, x: Tensor) -> Tensor:
        return SteSignFunction.apply(x, self.clip, self.fused)

    def extra_repr(self) -> str:
        return f"clip={self.clip}, fused={self.fused}"
