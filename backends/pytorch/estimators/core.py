"""What every sign estimator shares: the exact ±1 forward and the fp32 backward, fused or eager.

Forward:  sign(x) = +1 if x >= 0 else -1, in x's dtype. torch.sign maps 0 to 0, which would make a
"binary" layer ternary; 0 (and -0) go to +1 here, as in Larq.

Backward: grad_input = grad_output * g(x), where g is the estimator's pseudo-gradient. g is
evaluated in float32 even when x and grad_output are bf16/fp16 under autocast (cos/sin of a bf16
argument is off by percent), and the product is cast back to x's dtype so autograd sees the dtype
it expects. grad_output is never modified in place: autograd may hand the same tensor to other
consumers.

Fused backward: op by op, the FDA closed form reads and writes each activation tensor a dozen times
(casts, two sines, a division, the x = 0 limit, the |x| <= 1 mask, the product), and on a CPU that
memory traffic, not the sines, is what makes it cost more than STE. `BackwardKernel.fused` is the
same function through torch.compile: one loop that reads x and grad_output once and writes the
result once (on CPU an Inductor C++ kernel, on CUDA a Triton kernel). dynamic=True compiles one
kernel for every tensor shape; each estimator's backward is its own top-level function so that
each has its own compile cache. A compiled whole model (runtime.compile) inlines it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor


def binary_sign(x: Tensor) -> Tensor:
    """Exactly ±1 in x's dtype, sign(0) = +1."""
    return (x >= 0).to(x.dtype) * 2 - 1


def scaled(grad_output: Tensor, x: Tensor, pseudo_grad: Tensor) -> Tensor:
    """grad_output * pseudo_grad (float32, of x.float()), in x's dtype (a new tensor)."""
    return (grad_output.float() * pseudo_grad).to(x.dtype)


class BackwardKernel(NamedTuple):
    """An estimator's backward, (grad_output, x, *options) -> grad_input: op by op or compiled."""

    eager: Callable[..., Tensor]
    fused: Callable[..., Tensor]

    @classmethod
    def of(cls, backward: Callable[..., Tensor]) -> "BackwardKernel":
        # torch.compile returns at once; the kernel is generated at the first call (and cached on
        # disk by Inductor, so later processes load it in well under a second). Each dtype, rank,
        # layout and option value (omega, clip, the sum's n_max) is a variant of its own; a training
        # run needs one or two. Not fullgraph: past dynamo's limit of 8 variants per function (a
        # long test session) a new variant runs op by op instead of raising.
        return cls(backward, torch.compile(backward, dynamic=True))

    def __call__(self, fused: bool, grad_output: Tensor, x: Tensor, *options: object) -> Tensor:
        if not fused:
            return self.eager(grad_output, x, *options)
        # the kernel computes in fp32 by construction: with autocast off, a backward run inside an
        # autocast region (as some callers do) does not make a variant of its own; nor does a
        # weight, once detached from its Parameter type
        with torch.autocast(x.device.type, enabled=False):
            return self.fused(grad_output, x.detach(), *options)
