"""Where a micro-benchmark runs (backend x device), and getting that framework ready to time on it;
shared by the estimator and the layer micro-benchmarks."""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest


@dataclass(frozen=True)
class Target:
    backend: str  # "torch" | "mindspore" (bench.spec.BACKENDS)
    device: str  # "cpu" | "cuda" (bench.spec.DEVICES)

    @property
    def tag(self) -> str:
        return f"{self.backend}-{self.device}"


@dataclass
class Case:
    """A benchmarked callable: `step()` runs forward + backward once and returns (y, grads) as framework
    tensors, finished; `to_numpy` reads y back for the untimed check; `info` goes into extra_info."""

    step: Callable[[], tuple[Any, Any]]
    to_numpy: Callable[[Any], np.ndarray]
    info: dict[str, Any]


TARGETS = (Target("torch", "cpu"), Target("torch", "cuda"), Target("mindspore", "cpu"), Target("mindspore", "cuda"))


def marks(target: Target) -> list[pytest.MarkDecorator]:
    found = [pytest.mark.mindspore] if target.backend == "mindspore" else []
    return found + ([pytest.mark.gpu] if target.device == "cuda" else [])


def require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


def torch_ready(device: str) -> Any:
    """torch, or a skip when the device is missing."""
    require("torch")
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"CUDA is not available to torch {torch.__version__}")
    return torch


_MS_TARGETS = {"cpu": "CPU", "cuda": "GPU"}


def mindspore_ready(device: str) -> Any:
    """mindspore on `device`, with the CPU thread count training uses; a skip when it cannot be."""
    require("mindspore")
    import mindspore as ms

    from backends.mindspore.backend import prime_synchronize, set_cpu_threads

    if device == "cuda" and not ms.device_context.gpu.is_available():
        pytest.skip(f"mindspore {ms.__version__} loaded no GPU plugin in this process")
    current = ms.get_context("device_target")
    if current != _MS_TARGETS[device]:
        try:
            ms.set_device(_MS_TARGETS[device])
        except RuntimeError as exc:
            pytest.skip(f"MindSpore fixes its device once per process (here {current}): run the mindspore-{device} "
                        f"benchmarks in a process of their own, e.g. with -k mindspore-{device} ({exc})")
    if device == "cpu":
        # one kernel thread per core, as PyTorch: these compare kernels at equal threads. (Training
        # gives MindSpore's kernels half the cores because its runtime runs two kernels at once,
        # which a single benchmarked op cannot.)
        set_cpu_threads(os.cpu_count() or 1)
    prime_synchronize()  # the benchmarks call ms.runtime.synchronize() themselves
    return ms
