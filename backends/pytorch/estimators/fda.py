"""Frequency-domain approximation of sign (Xu et al. 2021, "Learning Frequency Domain
Approximation for Binary Neural Networks", NeurIPS, Eq. 6-10).

The square wave sign(x) on [-pi/w, pi/w] has the sine series (4/pi) sum_i sin((2i+1) w x) / (2i+1);
the backward pass differentiates its first n+1 terms (Eq. 10):

    forward:  sign(x)                                            (exactly ±1, sign(0) = +1)
    backward: grad * (4 w / pi) * sum_{i=0..n} cos((2i+1) w x)   for |x| <= 1, else 0

form="closed" evaluates the sum with the Dirichlet-kernel identity
    sum_{i=0..n} cos((2i+1) a) = sin(2 (n+1) a) / (2 sin a),    a = w x,
whose limit at sin a = 0 (x = 0 inside |x| <= 1, since w |x| < pi) is n+1; its cost is two sines
whatever n. form="sum" is the term-by-term loop, the definition the paper writes.

n changes per epoch (the paper grows it 9 -> 18). It lives in a 0-d float32 buffer (not persistent,
so checkpoints and parameter names never see it) that `set_n` overwrites in place: the compiled
graph reads it as an input, so a new n neither recompiles nor breaks a torch.compile graph, and
on CUDA the update is one fill kernel, no host sync. The sum form cannot loop a data-dependent
number of times inside a graph, so it unrolls `n_max + 1` terms (the largest n the run will set:
spec n_end, else n) and masks terms i > n; with a fixed n its cost is exactly n+1 terms.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from backends.pytorch.estimators.core import BackwardKernel, binary_sign, scaled
from bench.spec import EstimatorSpec

Form = Literal["closed", "sum"]


def fda_pseudo_grad_closed(x: Tensor, n: Tensor | int, omega: float) -> Tensor:
    """(4w/pi) sin(2(n+1)wx) / (2 sin(wx)), n+1 where sin(wx) = 0, zero for |x| > 1."""
    terms = n + 1
    s = torch.sin(omega * x)
    # twice the series; where sin(wx) = 0 the quotient is 0/0 but where() takes the limit 2(n+1)
    twice = torch.where(s == 0, 2 * terms, torch.sin((2 * omega) * terms * x) / s)
    return torch.where(x.abs() <= 1, (2 * omega / math.pi) * twice, 0.0)


def fda_pseudo_grad_sum(x: Tensor, n: Tensor | int, omega: float, n_max: int) -> Tensor:
    """(4w/pi) sum_{i=0..n} cos((2i+1)wx), zero for |x| > 1; unrolled to n_max+1 terms, i > n masked."""
    total = torch.zeros_like(x)
    for i in range(n_max + 1):
        total = total + torch.cos(((2 * i + 1) * omega) * x) * (i <= n)
    return torch.where(x.abs() <= 1, (4 * omega / math.pi) * total, 0.0)


def fda_backward_closed(grad_output: Tensor, x: Tensor, n: Tensor, omega: float) -> Tensor:
    return scaled(grad_output, x, fda_pseudo_grad_closed(x.float(), n, omega))


def fda_backward_sum(grad_output: Tensor, x: Tensor, n: Tensor, omega: float, n_max: int) -> Tensor:
    return scaled(grad_output, x, fda_pseudo_grad_sum(x.float(), n, omega, n_max))


FDA_BACKWARD_CLOSED = BackwardKernel.of(fda_backward_closed)
FDA_BACKWARD_SUM = BackwardKernel.of(fda_backward_sum)


class FdaSignFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, n: Tensor, omega: float, form: Form, n_max: int, fused: bool) -> Tensor:
        ctx.save_for_backward(x, n)
        ctx.omega, ctx.form, ctx.n_max, ctx.fused = omega, form, n_max, fused
        return binary_sign(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None, None, None, None]:
        x, n = ctx.saved_tensors
        if ctx.form == "closed":
            grad = FDA_BACKWARD_CLOSED(ctx.fused, grad_output, x, n, ctx.omega)
        else:
            grad = FDA_BACKWARD_SUM(ctx.fused, grad_output, x, n, ctx.omega, ctx.n_max)
        return grad, None, None, None, None, None


class FdaSign(nn.Module):
    """sign with the FDA pseudo-gradient of n+1 Fourier terms at frequency omega."""

    def __init__(self, n: int = 9, omega: float = 0.1, form: Form = "closed", n_max: int | None = None,
                 fused: bool = False):
        super().__init__()
        self.omega = omega
        self.fused = fused
        self.form = form
        self.n_max = n if n_max is None else n_max
        self.n_value = n
        self.register_buffer("n", torch.tensor(float(n)), persistent=False)
        self.set_n(n)

    @classmethod
    def from_spec(cls, spec: EstimatorSpec, fused: bool = False) -> "FdaSign":
        return cls(spec.n, spec.omega, spec.form, spec.n if spec.n_end is None else spec.n_end, fused)

    def set_n(self, n: int) -> None:
        if n < 0:
            raise ValueError(f"fda n must be >= 0 (got {n})")
        if self.form == "sum" and n > self.n_max:
            raise ValueError(f"fda form 'sum' was built for n <= {self.n_max}; got n = {n}")
        self.n_value = n
        self.n.fill_(float(n))

    def forward(self, x: Tensor) -> Tensor:
        return FdaSignFunction.apply(x, self.n, self.omega, self.form, self.n_max, self.fused)

    def extra_repr(self) -> str:
        return f"n={self.n_value}, omega={self.omega}, form={self.form!r}, n_max={self.n_max}, fused={self.fused}"
