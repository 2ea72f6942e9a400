"""Micro-benchmarks of the sign estimators: one forward (sign) + one backward (pseudo-gradient) call.

Run with `make bench-micro`, i.e.

    .venv/bin/pytest tests/micro -m micro --benchmark-enable --benchmark-only \
        --benchmark-json=results/micro/estimators-<host-tag>.json --benchmark-columns=min,median,iqr,rounds

Each benchmark times `y = est(x); dx = vjp(y, g)` on one tensor, the whole forward and backward every
call, with nothing carried from one call to the next:

- PyTorch, eager: `torch.autograd.grad(est(x), x, g)` (no .grad accumulates). On CUDA the timed
  function ends with `torch.cuda.synchronize()`: pytest-benchmark reads a host clock, and without
  the sync it would time the kernel launches only. On an H100 every shape here is launch-bound
  (~0.1 ms for ste, ~0.3 ms for fda closed, ~2.6 ms for the 65-term sum, whatever the shape).
- MindSpore: `ms.vjp(est, x, values)` inside one `ms.jit` function (compiled during the untimed warm-up
  call; PYNATIVE dispatches op by op and was 2-10x slower here on CPU), ending with
  `ms.runtime.synchronize()`: MindSpore returns from a call before the kernels ran, on CPU too.

Estimators: every estimator of bench.estimators.ESTIMATORS at its default parameters (a new one is
timed without an edit here), op by op and, in PyTorch, with the fused backward training uses by
default (one compiled kernel, compiled in the untimed first call); besides, ste identity (clip None),
fda closed form and term sum at n in {1, 9, 18, 64} op by op, and fused fda closed n = 64 and the
n = 64 sum; on activation-shaped (128x16x32x32, 128x64x8x8) and weight-shaped (64x64x3x3,
16x16x3x3) float32 tensors x = 1.5 * N(0, 1) (about half of them outside [-1, 1], where ste and fda
zero the gradient) with g = N(0, 1). Results are grouped per (backend, device, shape), so each table
compares the estimators on one tensor; extra_info records what was measured and with which versions.

A broken benchmark cannot time garbage: each micro test checks its untimed warm-up result against
tests/oracle.py before timing (check_result), and the unmarked, fast
`test_benchmarked_callables_compute_the_pseudo_gradient` (default suite) does the same for every
variant on a small tensor. The micro tests run only with benchmarking enabled (see conftest.py).
MindSpore fixes its device once per process: mindspore-cuda skips when mindspore-cpu ran first.
"""
from __future__ import annotations

import math
import os
import time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from targets import TARGETS, Case, Target, marks, mindspore_ready, torch_ready

import oracle as ref
from bench.estimators import NAMES, epoch_values, variant_label
from bench.spec import EstimatorSpec, Spec

FDA_NS = (1, 9, 18, 64)


@dataclass(frozen=True)
class Variant:
    spec: EstimatorSpec
    fused: bool = False  # PyTorch: the backward as one compiled kernel (MindSpore: not a variant)

    def tag(self, backend: str) -> str:
        """The suite's label (bench.estimators.variant_label): '-unfused' marks PyTorch's op-by-op
        backward; MindSpore compiles every estimator with its graph and has no such switch."""
        fused = self.fused or backend != "torch"
        return variant_label(Spec(estimator=self.spec, runtime={"fused_estimators": fused}))


@dataclass(frozen=True)
class Shape:
    role: str  # "activation" | "weight"
    dims: tuple[int, ...]

    @property
    def tag(self) -> str:
        return ("act" if self.role == "activation" else "w") + "x".join(map(str, self.dims))


def _once(variants: tuple[Variant, ...]) -> tuple[Variant, ...]:
    """Each variant once, by its PyTorch label (fda's defaults are n = 9 closed, listed twice below)."""
    first: dict[str, Variant] = {}
    for variant in variants:
        first.setdefault(variant.tag("torch"), variant)
    return tuple(first.values())


VARIANTS = _once((
    # every estimator at its defaults, op by op and as training runs it in PyTorch (runtime.fused_estimators)
    *(Variant(EstimatorSpec(name=name), fused) for fused in (False, True) for name in NAMES),
    Variant(EstimatorSpec(name="ste", clip=None)),
    *(Variant(EstimatorSpec(name="fda", n=n, form="closed")) for n in FDA_NS),
    *(Variant(EstimatorSpec(name="fda", n=n, form="sum")) for n in FDA_NS),
    Variant(EstimatorSpec(name="fda", n=64, form="closed"), fused=True),
    Variant(EstimatorSpec(name="fda", n=64, form="sum"), fused=True),
))
SHAPES = (
    Shape("activation", (128, 16, 32, 32)),  # ResNet-20 stage 1 at batch 128
    Shape("activation", (128, 64, 8, 8)),  # stage 3
    Shape("weight", (64, 64, 3, 3)),
    Shape("weight", (16, 16, 3, 3)),
)
GUARD_SHAPE = Shape("activation", (2, 3, 4, 5))


# ---- inputs ------------------------------------------------------------------------------------


def make_inputs(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """Fresh float32 x = 1.5 N(0,1) (values beyond ±1 included) and upstream gradient g = N(0,1),
    the same for every backend and estimator at one shape; zeros are replaced (never benchmarked)."""
    rng = np.random.default_rng(zlib.crc32(shape.tag.encode()))
    x = (1.5 * rng.standard_normal(shape.dims)).astype(np.float32)
    g = rng.standard_normal(shape.dims).astype(np.float32)
    x[x == 0] = 0.5
    g[g == 0] = 1.0
    return x, g


# ---- the benchmarked callables -------------------------------------------------------------------


def _torch_case(variant: Variant, x_np: np.ndarray, g_np: np.ndarray, device: str) -> Case:
    torch = torch_ready(device)
    from backends.pytorch.estimators import make_estimator

    est = make_estimator(variant.spec, variant.fused).to(device)
    x = torch.from_numpy(x_np).to(device).requires_grad_(True)
    g = torch.from_numpy(g_np).to(device)
    sync = torch.cuda.synchronize if device == "cuda" else None

    def step() -> tuple[Any, Any]:
        y = est(x)
        (dx,) = torch.autograd.grad(y, x, g)
        if sync is not None:
            sync()
        return y, dx

    info = {
        "framework": "torch", "framework_version": torch.__version__,
        "mode": "eager, fused backward" if variant.fused else "eager",
        "threads": torch.get_num_threads(),
        "device_name": torch.cuda.get_device_name() if device == "cuda" else None,
    }
    return Case(step, lambda t: t.detach().cpu().numpy(), info)


def _mindspore_case(variant: Variant, x_np: np.ndarray, g_np: np.ndarray, device: str, jit: bool = True) -> Case:
    ms = mindspore_ready(device)
    from backends.mindspore.estimators import make_estimator, values_tensor

    est = make_estimator(variant.spec)
    x, g = ms.Tensor(x_np), ms.Tensor(g_np)
    # the runtime values (the weights' row), a graph input as in training (fda's n, ede's t and k, ...)
    n = values_tensor(variant.spec, epoch_values(variant.spec, 0, 1))[0]

    def forward_backward(x: ms.Tensor, n: ms.Tensor, g: ms.Tensor) -> tuple[ms.Tensor, ms.Tensor]:
        y, vjp_fn = ms.vjp(est, x, n)
        return y, vjp_fn(g)[0]

    if jit:
        forward_backward = ms.jit(forward_backward)

    def step() -> tuple[Any, Any]:
        y, dx = forward_backward(x, n, g)
        ms.runtime.synchronize()
        return y, dx

    info = {
        "framework": "mindspore", "framework_version": ms.__version__, "mode": "jit" if jit else "pynative",
        "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA", "unset"), "device_name": None,
    }
    return Case(step, lambda t: t.asnumpy(), info)


def build_case(target: Target, variant: Variant, x_np: np.ndarray, g_np: np.ndarray, *, jit: bool = True) -> Case:
    """The benchmarked callable; jit=False runs MindSpore's same function op by op (PYNATIVE)."""
    if target.backend == "torch":
        return _torch_case(variant, x_np, g_np, target.device)
    return _mindspore_case(variant, x_np, g_np, target.device, jit)


def check_result(tag: str, variant: Variant, x_np: np.ndarray, g_np: np.ndarray, y: np.ndarray, dx: np.ndarray,
                 sample: int | None = None) -> None:
    """y is exactly sign(x) (±1, sign(0) = +1); dx has x's shape and dtype, is finite and nonzero, and equals
    g * pseudo_grad(x) of the NumPy reference (float64, term by term) on `sample` evenly spaced elements."""
    assert y.shape == dx.shape == x_np.shape, tag
    assert dx.dtype == np.float32, tag
    assert np.isfinite(dx).all(), tag
    assert np.count_nonzero(dx) > 0, tag
    np.testing.assert_array_equal(y, ref.sign(x_np), err_msg=tag)
    idx = np.arange(x_np.size) if sample is None else np.linspace(0, x_np.size - 1, sample).astype(np.int64)
    x, g, got = x_np.reshape(-1)[idx], g_np.reshape(-1)[idx], dx.reshape(-1)[idx]
    expected = g * ref.reference_pseudo_grad(variant.spec, x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=tag)


# ---- the benchmarks ----------------------------------------------------------------------------

def variants_of(target: Target) -> list[Variant]:
    return [v for v in VARIANTS if target.backend == "torch" or not v.fused]


MICRO_PARAMS = [
    pytest.param(target, variant, shape, id=f"{target.tag}-{variant.tag(target.backend)}-{shape.tag}",
                 marks=marks(target))
    for target in TARGETS
    for shape in SHAPES
    for variant in variants_of(target)
]


@pytest.mark.micro
@pytest.mark.parametrize(("target", "variant", "shape"), MICRO_PARAMS)
def test_estimator_forward_backward(benchmark, target: Target, variant: Variant, shape: Shape) -> None:
    x_np, g_np = make_inputs(shape)
    case = build_case(target, variant, x_np, g_np)
    start = time.perf_counter()
    y, dx = case.step()  # untimed: compilation (MindSpore), allocator and cache warm-up
    first_call_s = time.perf_counter() - start
    tag = variant.tag(target.backend)
    check_result(tag, variant, x_np, g_np, case.to_numpy(y), case.to_numpy(dx), sample=4096)  # never time garbage

    spec = variant.spec
    benchmark.group = f"{target.tag}-{shape.tag}"
    benchmark.extra_info.update({
        "backend": target.backend,
        "device": target.device,
        "estimator": spec.name,
        "variant": tag,
        "n": spec.n if spec.name == "fda" else None,
        "form": spec.form if spec.name == "fda" else None,
        "omega": spec.omega if spec.name == "fda" else None,
        "clip": spec.clip if spec.name == "ste" else None,
        "fused": variant.fused,
        "role": shape.role,
        "shape": list(shape.dims),
        "numel": math.prod(shape.dims),
        "dtype": "float32",
        "first_call_s": round(first_call_s, 6),
        **case.info,
    })
    benchmark(case.step)


# ---- the guard: what the benchmarks time is the right computation --------------------------------


# MindSpore compiles each jit callable in 0.15-1.2 s (fda-sum-n64: 65 unrolled terms), about 4 s for all
# eleven on 2 cores; the guard runs all eleven op by op and compiles these two, which cover what only
# the graph does (n as a graph input to a select, and to the unrolled masked loop). Every compiled
# callable is also checked by its own micro test before it is timed.
GUARD_JIT = ("fda-n9", "fda-n9-sum")


@pytest.mark.parametrize("target", [pytest.param(t, id=t.tag, marks=marks(t)) for t in TARGETS])
def test_benchmarked_callables_compute_the_pseudo_gradient(target: Target) -> None:
    """Each benchmarked callable once on a small tensor against the NumPy reference (check_result)."""
    x_np, g_np = make_inputs(GUARD_SHAPE)
    assert (np.abs(x_np) > 1).any() and (np.abs(x_np) < 1).any()
    runs = [(variant, target.backend == "torch") for variant in variants_of(target)]
    if target.backend == "mindspore":
        runs += [(variant, True) for variant in VARIANTS if variant.tag(target.backend) in GUARD_JIT]
    for variant, jit in runs:
        case = build_case(target, variant, x_np, g_np, jit=jit)
        y, dx = case.step()
        check_result(variant.tag(target.backend), variant, x_np, g_np, case.to_numpy(y), case.to_numpy(dx))
