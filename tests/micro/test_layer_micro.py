"""Micro-benchmarks of the layers a ResNet-20 train step spends its time in, PyTorch against MindSpore
on the same tensors: where the MindSpore step's extra time goes is a question of these kernels, not
of the estimators (see the "Step time" section of results/summary.md).

Each benchmark times one forward and the backward to the input and to the layer's parameters,
the whole computation every call (as in training, nothing carried over):

- conv3x3: a 3x3 convolution, padding 1, no bias, with C_in = C_out (the binary layers' shapes);
- batchnorm: BatchNorm2d in training mode (batch statistics);
- prelu: PReLU with one slope (the model zoo's activation).

on activation-shaped float32 tensors of stage 1 (128x16x32x32) and stage 3 (128x64x8x8) at batch
128. PyTorch runs eager (what a train step runs), MindSpore one ms.jit function (as its train
step); both synchronise inside the timed function. Each benchmark checks its untimed first
result before timing: the output's shape and finiteness, and for conv3x3 two output elements (one
interior, one on the border) against NumPy.
"""
from __future__ import annotations

import math
import time
import zlib
from typing import Any

import numpy as np
import pytest

from targets import TARGETS, Case, Target, marks, mindspore_ready, torch_ready

LAYERS = ("conv3x3", "batchnorm", "prelu")
SHAPES = ((128, 16, 32, 32), (128, 64, 8, 8))


def make_input(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, the upstream gradient, and a 3x3 weight for C channels (He-normal), the same for both frameworks."""
    rng = np.random.default_rng(zlib.crc32(str(shape).encode()))
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((c, c, 3, 3)) * math.sqrt(2 / (9 * c))).astype(np.float32)
    return x, g, w


def conv_reference_at(x: np.ndarray, w: np.ndarray, b: int, o: int, i: int, j: int) -> float:
    """One output element of the padded 3x3 convolution, in float64."""
    padded = np.pad(x[b].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
    return float((padded[:, i:i + 3, j:j + 3] * w[o].astype(np.float64)).sum())


def _torch_case(layer: str, x_np: np.ndarray, g_np: np.ndarray, w_np: np.ndarray, device: str) -> Case:
    torch = torch_ready(device)
    from torch import nn

    x = torch.from_numpy(x_np).to(device).requires_grad_(True)
    g = torch.from_numpy(g_np).to(device)
    if layer == "conv3x3":
        weight = torch.from_numpy(w_np).to(device).requires_grad_(True)
        forward, params = (lambda: torch.nn.functional.conv2d(x, weight, padding=1)), [weight]
    else:
        module = (nn.BatchNorm2d(x.shape[1]) if layer == "batchnorm" else nn.PReLU(1, 0.25)).to(device).train()
        forward, params = (lambda: module(x)), list(module.parameters())
    sync = torch.cuda.synchronize if device == "cuda" else None

    def step() -> Any:
        y = forward()
        grads = torch.autograd.grad(y, [x, *params], g)
        if sync is not None:
            sync()
        return y, grads

    info = {"framework": "torch", "framework_version": torch.__version__, "mode": "eager",
            "threads": torch.get_num_threads()}
    return Case(step, lambda t: t.detach().cpu().numpy(), info)


def _mindspore_case(layer: str, x_np: np.ndarray, g_np: np.ndarray, w_np: np.ndarray, device: str) -> Case:
    ms = mindspore_ready(device)
    from mindspore import nn, ops

    x, g = ms.Tensor(x_np), ms.Tensor(g_np)
    if layer == "conv3x3":
        conv = ops.Conv2D(out_channel=w_np.shape[0], kernel_size=3, pad_mode="pad", pad=1)
        weight = ms.Parameter(ms.Tensor(w_np), name="weight")

        def forward(x: ms.Tensor) -> ms.Tensor:
            return conv(x, weight)

        params = [weight]
    else:
        cell = nn.BatchNorm2d(x_np.shape[1]) if layer == "batchnorm" else nn.PReLU(1, 0.25)
        cell.set_train(True)
        forward, params = cell, cell.trainable_params()

    @ms.jit
    def forward_backward(x: ms.Tensor, g: ms.Tensor) -> tuple[ms.Tensor, Any]:
        y, vjp_fn = ms.vjp(forward, x, weights=params)
        return y, vjp_fn(g)

    def step() -> Any:
        y, grads = forward_backward(x, g)
        ms.runtime.synchronize()
        return y, grads

    return Case(step, lambda t: t.asnumpy(), {"framework": "mindspore", "framework_version": ms.__version__,
                                              "mode": "jit"})


PARAMS = [
    pytest.param(target, layer, shape, id=f"{target.tag}-{layer}-{'x'.join(map(str, shape))}", marks=marks(target))
    for target in TARGETS
    for shape in SHAPES
    for layer in LAYERS
]


@pytest.mark.micro
@pytest.mark.parametrize(("target", "layer", "shape"), PARAMS)
def test_layer_forward_backward(benchmark, target: Target, layer: str, shape: tuple[int, ...]) -> None:
    x, g, w = make_input(shape)
    build = _torch_case if target.backend == "torch" else _mindspore_case
    case = build(layer, x, g, w, target.device)
    start = time.perf_counter()
    y, _ = case.step()  # untimed: compilation (MindSpore), allocator warm-up
    first_call_s = time.perf_counter() - start
    y = case.to_numpy(y)
    assert y.shape == x.shape and np.isfinite(y).all()
    if layer == "conv3x3":  # never time garbage: one interior and one border element against NumPy
        for b, o, i, j in ((0, 1, 5, 7), (shape[0] - 1, shape[1] - 1, 0, shape[3] - 1)):
            assert y[b, o, i, j] == pytest.approx(conv_reference_at(x, w, b, o, i, j), rel=1e-4, abs=1e-4)
    benchmark.group = f"layers-{target.device}-{layer}-{'x'.join(map(str, shape))}"
    benchmark.extra_info.update({"backend": target.backend, "device": target.device, "layer": layer,
                                 "variant": target.backend, "shape": list(shape), "dtype": "float32",
                                 "first_call_s": round(first_call_s, 6), **case.info})
    benchmark(case.step)
