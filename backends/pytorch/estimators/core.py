"""What every PyTorch sign estimator shares: the exact ±1 forward, the autograd plumbing and the
fp32 backward, fused or op by op. An estimator itself is only its `pseudo_grad` (one module each,
next to this one; formulas in bench/estimators.py).

Forward:  sign(x) = +1 if x >= 0 else -1, in x's dtype. torch.sign maps 0 to 0, which would make a
"binary" layer ternary; 0 (and -0) go to +1 here, as in Larq.

Backward: grad_input = grad_output * g(x; values, *options). g is evaluated in float32 even when x and
grad_output are bf16/fp16 under autocast (cos/sin of a bf16 argument is off by percent), and the
product is cast back to x's dtype so autograd sees the dtype it expects. grad_output is never
modified in place: autograd may hand the same tensor to other consumers.

The runtime values (FDA's n, EDE's and RBNN's t and k, ReSTE's o: bench/estimators.py, changed per
epoch, per role) live in a float32 vector buffer of the module, one per estimator module, so the
weights' and the activations' estimators of a layer hold their own (not persistent, so checkpoints
and parameter names never see it), that `set_values` overwrites in place: a compiled graph reads it
as an input, so new values neither recompile nor break a torch.compile graph or a captured CUDA
graph, and on CUDA the update is one fill kernel per value, no host sync. The options (clip, omega,
form, n_max, ...) are constants of the run; one that a setting does not read is None
(bench/estimators.py), so FDA's closed form is one compiled variant for every n.

Fused backward: op by op, the FDA closed form reads and writes each activation tensor a dozen times
(casts, two sines, a division, the x = 0 limit, the |x| <= 1 mask, the product), and on a CPU that
memory traffic, not the sines, is what makes it cost more than STE. `BackwardKernel.fused` is the
same function through torch.compile: one loop that reads x and grad_output once and writes the
result once (on CPU an Inductor C++ kernel, on CUDA a Triton kernel). dynamic=True compiles one
kernel for every tensor shape. A compiled whole model (runtime.compile) inlines it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from bench.estimators import estimator, runtime_values
from bench.spec import EstimatorSpec

PseudoGrad = Callable[..., Tensor]  # (x float32, values 1-d float32 tensor, *options) -> g(x) float32


def binary_sign(x: Tensor) -> Tensor:
    """Exactly ±1 in x's dtype, sign(0) = +1."""
    return (x >= 0).to(x.dtype) * 2 - 1


def compile_named(function: Callable[..., Tensor], name: str, dynamic: bool | None = True) -> Callable[..., Tensor]:
    """torch.compile(function, dynamic=dynamic) under a code object of its own named `name`.

    dynamo keeps compiled variants per code object, at most 8 of them: a code object of its own per
    estimator keeps one estimator's variants from evicting another's. torch.compile returns at once;
    the kernel is generated at the first call (and cached on disk by Inductor, so later processes
    load it in well under a second). Each dtype, rank, layout and option value is a variant of its
    own; a training run needs one or two. dynamic=True: one variant serves every tensor shape. Not
    fullgraph: past dynamo's limit a new variant runs op by op instead of raising."""
    function.__code__ = function.__code__.replace(co_name=name)
    function.__name__ = function.__qualname__ = name
    return torch.compile(function, dynamic=dynamic)


class BackwardKernel(NamedTuple):
    """An estimator's backward, (grad_output, x, values, *options) -> grad_input: op by op or compiled."""

    eager: Callable[..., Tensor]
    fused: Callable[..., Tensor]

    @classmethod
    def of(cls, name: str, pseudo_grad: PseudoGrad) -> "BackwardKernel":
        def backward(grad_output: Tensor, x: Tensor, values: Tensor, *options: Any) -> Tensor:
            return (grad_output.float() * pseudo_grad(x.float(), values, *options)).to(x.dtype)

        return cls(backward, compile_named(backward, f"{name}_backward"))

    def __call__(self, fused: bool, grad_output: Tensor, x: Tensor, values: Tensor, *options: Any) -> Tensor:
        if not fused:
            return self.eager(grad_output, x, values, *options)
        # the kernel computes in fp32 by construction: with autocast off, a backward run inside an
        # autocast region (as some callers do) does not make a variant of its own; nor does a
        # weight, once detached from its Parameter type
        with torch.autocast(x.device.type, enabled=False):
            return self.fused(grad_output, x.detach(), values, *options)


def sign_function(name: str, pseudo_grad: PseudoGrad) -> type[torch.autograd.Function]:
    """The autograd Function of one estimator: sign forward, its pseudo-gradient backward."""
    kernel = BackwardKernel.of(name, pseudo_grad)

    class SignFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Tensor, values: Tensor, fused: bool, options: tuple[Any, ...]) -> Tensor:
            ctx.save_for_backward(x, values)
            ctx.fused, ctx.options = fused, options
            return binary_sign(x)

        @staticmethod
        def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None, None]:
            x, values = ctx.saved_tensors
            return kernel(ctx.fused, grad_output, x, values, *ctx.options), None, None, None

    SignFunction.__name__ = SignFunction.__qualname__ = f"{name}_sign"
    SignFunction.kernel = kernel  # type: ignore[attr-defined]  # its compiled variants are countable
    return SignFunction


class SignEstimator(nn.Module):
    """sign(x) with the pseudo-gradient of estimator `spec.name` (see bench/estimators.py), for the
    binarised weights or activations (`role`), its runtime values at epoch 0 until `set_values`."""

    def __init__(self, spec: EstimatorSpec, function: type[torch.autograd.Function], fused: bool = False,
                 role: str = "weight"):
        super().__init__()
        described = estimator(spec.name)
        self.name, self.function, self.fused, self.role = spec.name, function, fused, role
        self.options = described.options(spec)
        self.n_limit = described.n_limit(spec)
        self.runtime = described.runtime
        self.register_buffer("values", torch.zeros(len(self.runtime)), persistent=False)
        self.set_values(runtime_values(spec, 0, 1, role))

    def set_values(self, values: dict[str, float]) -> None:
        """Overwrite the runtime values in place (every one the estimator names, nothing else)."""
        if set(values) != set(self.runtime):
            raise ValueError(f"{self.name} takes the runtime values ({', '.join(self.runtime)}); got "
                             f"({', '.join(values)})")
        n = values.get("n")
        if n is not None and n < 0:
            raise ValueError(f"{self.name} n must be >= 0 (got {n})")
        if n is not None and self.n_limit is not None and n > self.n_limit:
            raise ValueError(f"{self.name} was built for n <= {self.n_limit}; got n = {n}")
        self.current = dict(values)
        for i, name in enumerate(self.runtime):  # a fill kernel each: no host-to-device copy, no sync
            self.values[i].fill_(float(values[name]))

    def forward(self, x: Tensor) -> Tensor:
        return self.function.apply(x, self.values, self.fused, self.options)

    def extra_repr(self) -> str:
        return f"{self.name}, {self.role}, values={self.current}, options={self.options}, fused={self.fused}"


def sech2(y: Tensor) -> Tensor:
    """1 - tanh(y)^2 as 4 e / (1 + e)^2 with e = exp(-2|y|): 1 - tanh^2 cancels where tanh nears ±1
    (|y| of a few units already loses most digits in float32); e only underflows to 0, where it is 0."""
    e = torch.exp(-2 * y.abs())
    return 4 * e / (1 + e) ** 2
