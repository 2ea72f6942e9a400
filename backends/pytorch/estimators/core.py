"""What every sign estimator shares: the exact ±1 forward and the fp32 backward.

Forward:  sign(x) = +1 if x >= 0 else -1, in x's dtype. torch.sign maps 0 to 0, which would make a
"binary" layer ternary; 0 (and -0) go to +1 here, as in Larq.

Backward: grad_input = grad_output * g(x), where g is the estimator's pseudo-gradient. g is
evaluated in float32 even when x and grad_output are bf16/fp16 under autocast (cos/sin of a bf16
argument is off by percent), and the product is cast back to x's dtype so autograd sees the dtype
it expects. grad_output is never modified in place: autograd may hand the same tensor to other
consumers.
"""
from __future__ import annotations

from collections.abc import Callable

from torch import Tensor


def binary_sign(x: Tensor) -> Tensor:
    """Exactly ±1 in x's dtype, sign(0) = +1."""
    return (x >= 0).to(x.dtype) * 2 - 1


def scaled_grad(grad_output: Tensor, x: Tensor, pseudo_grad: Callable[[Tensor], Tensor]) -> Tensor:
    """grad_output * pseudo_grad(x), computed in float32, returned in x's dtype (a new tensor)."""
    return (grad_output.float() * pseudo_grad(x.float())).to(x.dtype)
