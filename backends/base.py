"""What a backend must do. Only code behind this interface knows a framework.

The shared training loop (bench/training.py) owns the epoch/step loop, schedules, data order and
augmentation parameters, timing, progress and the run directory. A backend owns the framework: it
builds the network of bench/networks the spec names (model.name, model.binarize), keeps the data on its device,
runs one optimizer step, evaluates, and reads and writes checkpoints in its native format.
`backends.prepare(spec, data)` makes one ready to use.

Parameter names crossing this interface (`state_numpy`, `load_state_numpy`, `read_model_state`)
are always the model zoo's (`backends/reference/modelzoo-resnet20-params.txt`): conv1.weight,
bn1.gamma, bn1.moving_mean, layer1.0.relu1.w, linear.bias, ... plus the noise module's
`*.noise_w.fc1.weight` and the like; VGG-small's follow the same rules (attribute paths, BatchNorm's
gamma/beta/moving_mean/moving_variance: conv0.weight, bn0.gamma, ..., fc.bias; bench/networks/vgg_small.py).
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench.data.dataset import Cifar10Arrays
from bench.spec import Spec
from bench.timing import peak_rss_bytes


def resolve_device(requested: str, cuda_available: bool) -> str:
    """The spec's device: "auto" is cuda when the framework can use a GPU here, else cpu."""
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    return requested


@dataclass
class StepStats:
    """Training statistics fetched from the device: summed loss, correct predictions, images."""

    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0
    steps: int = 0
    nonfinite: bool = False

    def add(self, other: "StepStats") -> None:
        self.loss_sum += other.loss_sum
        self.correct += other.correct
        self.count += other.count
        self.steps += other.steps
        self.nonfinite = self.nonfinite or other.nonfinite

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.count, 1)


@dataclass
class StepClock:
    """Marks step boundaries. The default synchronises the device and reads the host clock; a
    backend with an asynchronous device (CUDA) overrides it with device events, so nothing
    synchronises inside a step."""

    sync: Any
    marks: list[float] = field(default_factory=list)

    def mark(self) -> None:
        self.sync()
        self.marks.append(time.perf_counter())

    def intervals_ms(self) -> list[float]:
        return [(b - a) * 1e3 for a, b in zip(self.marks, self.marks[1:])]


class Backend(ABC):
    name: ClassVar[str]
    checkpoint_suffix: ClassVar[str]

    @staticmethod
    def unavailable_reason() -> str | None:
        """None when the framework is usable here, else why not (one line). A backend module
        imports its framework at the top, so a missing framework surfaces as the ImportError
        the registry reports; override for subtler reasons."""
        return None

    @staticmethod
    @abstractmethod
    def cuda_available() -> bool:
        """Whether this framework can train on a CUDA GPU in this process."""

    @staticmethod
    @abstractmethod
    def unsupported_reason(spec: Spec) -> str | None:
        """None when this backend can run spec's device and precision here, else why not."""

    @staticmethod
    @abstractmethod
    def versions() -> dict[str, str]:
        """Framework versions and device facts for the run's environment record."""

    def __init__(self, spec: Spec):
        self.spec = spec
        # 'cpu' or 'cuda' (MindSpore's GPU is called 'cuda' here too)
        self.device = resolve_device(spec.device, self.cuda_available())

    @abstractmethod
    def build(self) -> None:
        """Create model and optimizer, seeded by spec.train.seed, the estimators at their epoch-0 values."""

    @abstractmethod
    def set_data(self, data: Cifar10Arrays) -> None:
        """Take the uint8 arrays once; move them to the training device."""

    @abstractmethod
    def set_estimator_values(self, values: dict[str, dict[str, float]]) -> None:
        """The estimators' runtime values from now on, {role: {name: value}} for the roles "weight"
        and "activation" (bench.estimators.epoch_values: FDA's n, EDE's t and k, ...; {} for an
        estimator without any). Called at epoch boundaries; must not rebuild or recompile anything,
        nor synchronise the device."""

    @abstractmethod
    def train_step(self, plan: np.ndarray, lr: float, alpha: float) -> None:
        """One optimizer step on the batch `plan` (bench.data.augment.batch_plan: image index, crop
        offsets, flip per row). Must not synchronise the device; statistics accumulate until
        `pop_stats`."""

    def describe_step(self) -> str:
        """How a train step executes, for the run's environment (e.g. eager, one CUDA graph replay)."""
        return "eager"

    def data_step(self, plan: np.ndarray) -> None:
        """Only the input pipeline of train_step (gather and augment one batch on the device), so
        the benchmark can report its share of a step. Optional: NotImplementedError means unmeasured."""
        raise NotImplementedError(f"{self.name} does not time its input pipeline separately")

    @abstractmethod
    def pop_stats(self) -> StepStats:
        """Fetch and reset the statistics accumulated since the last call."""

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """All test images in order: bench.metrics.eval_metrics, as the model zoo reports them
        (label-smoothed loss, accuracies as fractions)."""

    @abstractmethod
    def synchronize(self) -> None:
        """Wait for all queued device work."""

    def clock(self) -> StepClock:
        return StepClock(self.synchronize)

    def peak_memory_bytes(self) -> int:
        """Peak memory of the training device: process peak RSS on CPU; a GPU backend overrides."""
        return peak_rss_bytes()

    @abstractmethod
    def save_checkpoint(self, path: Path, meta: dict[str, Any]) -> None:
        """Native format, model and optimizer; `meta` (epoch, step, ...) stored alongside."""

    @abstractmethod
    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        """Restore what save_checkpoint or save_model wrote; return its meta."""

    @abstractmethod
    def save_model(self, path: Path, meta: dict[str, Any]) -> None:
        """A model-only checkpoint in the native format (what `fdabnn convert` writes)."""

    @classmethod
    @abstractmethod
    def read_model_state(cls, path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """A native checkpoint file's model tensors under the model zoo's names, and its meta ({}
        if none), without building a backend; optimizer state is left out. A file that is not such a
        checkpoint raises UserError naming it."""

    @abstractmethod
    def state_numpy(self) -> dict[str, np.ndarray]:
        """Model parameters and BN statistics under the model zoo's names."""

    @abstractmethod
    def load_state_numpy(self, state: dict[str, np.ndarray]) -> None:
        """Inverse of state_numpy; refuses missing, unexpected or mis-shaped names."""
