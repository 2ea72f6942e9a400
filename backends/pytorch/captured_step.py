"""The whole PyTorch training step as one CUDA graph replay (runtime.cuda_graph, CUDA only).

ResNet-20 at batch 128 is a few GFLOP: on a modern GPU the eager step's cost is its hundreds of
kernel launches and the host work between them, not the arithmetic. Captured, a step is: one
queued host-to-device copy of the (B, 4) batch plan into a static buffer, two fill kernels (the
learning rate, alpha) and one graph launch that gathers and augments the batch from the
GPU-resident uint8 images, runs forward and backward (fused estimators and noise module included),
the optimizer update and the loss/accuracy accumulation. The estimators' runtime values (FDA's n,
EDE's t and k, ...) live in their own small buffers (set_estimator_values fills them in place), so
new values need no new graph.

How (PyTorch's "whole network capture"): the first WARMUP steps of each mode (noise module on or
off) run eagerly on a side stream, so that lazy initialisation (cuBLAS handles, cuDNN plans,
Inductor's fused kernels) happens outside a capture; the next step of that mode is captured with
the gradients set to None, so backward writes them into the graph's own memory, then replayed. The
optimizer reads its learning rate from a 0-d device tensor (a Python float would be baked into the
graph). The warm-up steps are real training steps: a run's sequence of updates is the same as
eager's, and a test compares 50 steps of both (tests/test_torch_gpu.py).

A mode the run reaches only later (the noise module's last step, alpha = 0) is warmed up and
captured when the first mode is, on a snapshot: every tensor a step updates is copied aside, the
mode's warm-up steps run, its graph is captured, and the copies are written back (optimizer state
that those steps created is zeroed, which is a fresh state for SGD without dampening and for Adam).
So no run compiles a kernel, or runs a step eagerly, at its very end.

Evaluation likewise, one graph for the whole test set (EVAL_WARMUP eager evaluation first): it
reads the parameters and BatchNorm statistics where the optimizer and a checkpoint load update them
in place, and the GPU-resident test images, so set_data drops it.

Not captured (`unavailable_reason`): fp16 (GradScaler's skip-step logic needs the host), a
torch.compile'd model (its own graphs), CPUs.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

WARMUP = 3
EVAL_WARMUP = 1  # cuDNN's plans; the eval forward has no compiled kernels to warm


def unavailable_reason(device: str, precision: str, compiled: bool) -> str | None:
    if device != "cuda":
        return "CUDA graphs need a CUDA device"
    if precision == "fp16":
        return "fp16's GradScaler decides on the host whether to skip a step"
    if compiled:
        return "runtime.compile uses torch.compile's own graphs"
    return None


class CapturedStep:
    """`step()` runs `body(noisy)` (gather, forward, backward, optimizer step, statistics: every
    tensor it touches must live as long as this object) eagerly for the first `warmup` calls of each
    mode, then as the replay of a graph captured once per mode. The evaluation is one too: its body
    (the whole test set, a batch after another, into static sums) has one mode and nothing to zero."""

    def __init__(self, body: Callable[[bool], None], zero_grad: Callable[[], None] = lambda: None,
                 state: Callable[[], list[torch.Tensor]] = list, warmup: int = WARMUP):
        self._body, self._zero_grad, self._state, self._warmup = body, zero_grad, state, warmup
        self._graphs: dict[bool, torch.cuda.CUDAGraph] = {}
        self._eager_steps: dict[bool, int] = {False: 0, True: 0}
        self.replays: dict[bool, int] = {False: 0, True: 0}
        self._pool = torch.cuda.graph_pool_handle()  # both modes' graphs share one memory pool

    def step(self, noisy: bool = False, prepare: tuple[bool, ...] = ()) -> None:
        """One step of mode `noisy`; the modes in `prepare` are captured, on a snapshot, when this
        one is."""
        graph = self._graphs.get(noisy)
        if graph is None and self._eager_steps[noisy] < self._warmup:
            self._eager(noisy)
            self._eager_steps[noisy] += 1
            return
        if graph is None:
            graph = self._graphs[noisy] = self._capture(noisy)
            for mode in prepare:
                if mode not in self._graphs:
                    self._prepare(mode)
        graph.replay()
        self.replays[noisy] += 1

    def _prepare(self, mode: bool) -> None:
        """Warm up and capture `mode` without changing the training state (see the module's doc)."""
        torch.cuda.synchronize()
        before = self._state()
        saved = [t.detach().clone() for t in before]
        for _ in range(self._warmup):
            self._eager(mode)
        self._graphs[mode] = self._capture(mode)
        known = {id(t) for t in before}
        with torch.no_grad():
            for t, copy in zip(before, saved):
                t.copy_(copy)
            for t in self._state():
                if id(t) not in known:
                    t.zero_()
        torch.cuda.synchronize()

    def _eager(self, noisy: bool) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._zero_grad()
            self._body(noisy)
        torch.cuda.current_stream().wait_stream(side)

    def _capture(self, noisy: bool) -> torch.cuda.CUDAGraph:
        torch.cuda.synchronize()
        self._zero_grad()  # gradients None: the captured backward allocates them in the graph's pool
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            self._body(noisy)
        return graph  # captured, not run: step() replays it for this step

    @property
    def captured(self) -> list[bool]:
        return sorted(self._graphs)
