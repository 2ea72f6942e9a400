"""The MindSpore backend: the spec's network (bench/networks) trained behind backends.base.Backend.

Execution: GRAPH_MODE by default, the whole step (gather + augment the batch on the device, forward,
label-smoothed loss, backward with the estimators' custom bprop, optimizer) one @ms.jit graph
compiled once; PYNATIVE when spec.runtime.mode == "pynative" (the same Python, run op by op).

Per-step values enter the compiled graph as Tensor inputs, never as Python constants, so nothing
recompiles when they change: the batch plan (indices, crop offsets, flips) as one int32 (B, 4)
array, the learning rate and alpha as one float32 (2,) array, and the estimators' runtime values
(FDA's n, EDE's t and k, ...; set per epoch) as one float32 (roles, R) Tensor, a row per role. The
learning rate is assigned inside the graph to the optimizer's `learning_rate` Parameter before the
update (MindSpore's auto-monad keeps side effects in program order).

Optimizers: SGD (momentum, weight decay) or Adam; weight decay applies to every parameter, as in
the PyTorch backend, so the parameters form one group with its own weight_decay (an ungrouped
MindSpore optimizer would skip names containing 'gamma' or 'beta').

Precision: fp32; fp16 and bf16 via mindspore.amp.auto_mixed_precision(level "auto": convolutions
and matmuls in low precision, softmax/BN/reductions in fp32, like torch.autocast), fp16 with a
DynamicLossScaler. MindSpore 2.10's CPU kernels refuse bf16 (PReLU, BatchNorm, Conv2D), so bf16
needs a GPU. The estimators' pseudo-gradients and the loss are always computed in fp32.
"""
from __future__ import annotations

import logging
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, amp, nn, ops
from mindspore import log as ms_log

from backends.base import Backend, StepStats, resolve_device
from backends.mindspore.augment import augment, normalization_constants, normalize
from backends.mindspore.checkpoint import OPTIMIZER_PREFIX, read_ckpt, write_ckpt
from backends.mindspore.estimators import values_tensor
from backends.mindspore.loss import smoothed_cross_entropy
from backends.mindspore.networks import build_network
from bench.data.dataset import Cifar10Arrays
from bench.environment import cpu_model
from bench.errors import UserError
from bench.estimators import epoch_values
from bench.metrics import eval_metrics
from bench.spec import Spec
from bench.zoo_names import canonical_state, check_names

_AMP_DTYPES = {"fp16": ms.float16, "bf16": ms.bfloat16}
_TARGETS = {"cpu": "CPU", "cuda": "GPU"}


@lru_cache(maxsize=1)
def gpu_unavailable_reason() -> str | None:
    """None when this MindSpore can run on a GPU here, else why not. MindSpore decides when it is
    imported, by loading a GPU plugin (the 2.10 wheel ships ones for CUDA 11.1 and 11.6) against the
    CUDA runtime it finds."""
    if ms.device_context.gpu.is_available():
        return None
    return (f"mindspore {ms.__version__} loaded no GPU plugin in this process (its plugins need an NVIDIA "
            "driver with the CUDA 11.1/11.6 runtime and cuDNN 8 on the library path)")


# Settings MindSpore accepts once per process, and the values this process gave them.
_PROCESS_SETTINGS: dict[str, Any] = {}


def _set_once(key: str, value: Any, setter: Any) -> None:
    if key in _PROCESS_SETTINGS:
        if _PROCESS_SETTINGS[key] != value:
            raise UserError(f"MindSpore sets '{key}' once per process; this process already uses "
                            f"{_PROCESS_SETTINGS[key]!r}, not {value!r}: run this spec in a new process")
        return
    setter(value)
    _PROCESS_SETTINGS[key] = value


def set_cpu_threads(threads: int | None = None, deterministic: bool = False) -> None:
    """The CPU kernels' thread count, once per process (None: one thread when `deterministic`, else
    half the cores; or whatever this process set already).

    MindSpore's CPU kernels default to 25 threads whatever the machine, and its actor runtime adds
    threads of its own and runs independent kernels side by side: on 2 cores (batch 128, STE) 25
    kernel threads gave 2.5 s a step, one per core 2.0-2.1 s and one per two cores 1.6-1.7 s,
    alternated in one session. With more than one kernel thread the same spec and seed do not
    repeat, ms.set_deterministic(True) notwithstanding (2.10, CPU; measured: FDA n=9, 1,000 images,
    one epoch at 2 threads gave top-1 15.2% and 13.9% in two runs; at one thread every run is
    bit-identical), so a deterministic run gets one."""
    if threads is None and "threads" in _PROCESS_SETTINGS:
        return
    default = 1 if deterministic else max(1, (os.cpu_count() or 2) // 2)
    _set_once("threads", threads or default, ms.device_context.cpu.op_tuning.threads_num)


@lru_cache(maxsize=1)
def prime_synchronize() -> None:
    """ms.runtime.synchronize() (2.10) returns at once the first time it is called on CPU, logging
    "CPU device is not supported" as an error in the middle of a healthy run, and waits for the
    device on every later call: spend that first call here, with MindSpore's log silenced."""
    log = ms_log._get_logger()
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        ms.runtime.synchronize()
    finally:
        log.setLevel(level)


def _overwrite(param: Parameter, value: np.ndarray) -> None:
    """Write `value` into the Parameter's existing memory. Parameter.set_data swaps the storage
    instead, and a graph compiled before keeps reading the old one (MindSpore 2.10): a checkpoint
    loaded after the first step would be silently ignored by the train step."""
    ops.assign(param, Tensor(np.asarray(value), dtype=param.dtype))


class MindSporeBackend(Backend):
    name = "mindspore"
    checkpoint_suffix = ".ckpt"

    @staticmethod
    def cuda_available() -> bool:
        return gpu_unavailable_reason() is None

    @staticmethod
    def unsupported_reason(spec: Spec) -> str | None:
        if spec.device == "cuda":
            reason = gpu_unavailable_reason()
            if reason:
                return f"MindSpore GPU unavailable: {reason}"
        runtime = spec.runtime
        if runtime.deterministic and (runtime.threads or 1) > 1 and resolve_device(
                spec.device, gpu_unavailable_reason() is None) == "cpu":
            return (f"runtime.threads={runtime.threads} with runtime.deterministic=true: MindSpore's CPU kernels do "
                    "not repeat with more than one thread; use runtime.threads=1, or runtime.deterministic=false")
        if spec.precision == "bf16" and resolve_device(spec.device, gpu_unavailable_reason() is None) == "cpu":
            return ("bf16 on CPU: MindSpore 2.10's CPU kernels reject bfloat16 (PReLU and BatchNorm raise, "
                    "Conv2D has no bf16 CPU kernel); use precision=fp32 or fp16 here, or bf16 on a GPU")
        return None

    @staticmethod
    def versions() -> dict[str, str]:
        return {
            "mindspore": ms.__version__,
            "mindspore_gpu": gpu_unavailable_reason() or "available",
            # read by MindSpore's bundled oneDNN at load time (set in backends/mindspore/__init__.py)
            "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA", "unset"),
            "threads": str(_PROCESS_SETTINGS.get("threads", "mindspore default")),
            "device_name": cpu_model(),
        }

    def __init__(self, spec: Spec):
        super().__init__(spec)
        self.net: nn.Cell | None = None
        self._pending: list[tuple[Tensor, Tensor, int]] = []
        self._count = self._steps = 0

    def describe_step(self) -> str:
        return f"{self.spec.runtime.mode} mode"

    # ---- build -------------------------------------------------------------------------------

    def _configure_context(self) -> None:
        """MindSpore's context is per process: device, execution mode, threads, determinism."""
        runtime = self.spec.runtime
        if ms.get_context("device_target") != _TARGETS[self.device]:
            ms.set_device(_TARGETS[self.device])
        ms.set_context(mode=ms.PYNATIVE_MODE if runtime.mode == "pynative" else ms.GRAPH_MODE)
        _set_once("deterministic", runtime.deterministic, ms.set_deterministic)
        if self.device == "cpu":
            set_cpu_threads(runtime.threads, runtime.deterministic)

    def build(self) -> None:
        spec = self.spec
        self._configure_context()
        ms.set_seed(spec.train.seed)
        net = build_network(spec)
        net.set_train(True)
        self.net = net
        self._amp_net = net if spec.precision == "fp32" else amp.auto_mixed_precision(
            net, "auto", _AMP_DTYPES[spec.precision])
        group = [{"params": net.trainable_params(), "weight_decay": spec.optim.weight_decay}]
        if spec.optim.name == "sgd":
            self.optimizer: nn.Optimizer = nn.SGD(group, learning_rate=spec.optim.lr, momentum=spec.optim.momentum)
        else:
            self.optimizer = nn.Adam(group, learning_rate=spec.optim.lr)
        self.loss_scaler = amp.DynamicLossScaler(2.0 ** 16, 2, 2000) if spec.precision == "fp16" else None
        self._mean, self._std = normalization_constants(spec.data.normalization)
        self.set_estimator_values(epoch_values(spec.estimator, 0, spec.train.epochs))
        self._train_step = self._make_train_step()
        self._eval_batch = self._make_eval_batch()

    def _require_net(self) -> nn.Cell:
        if self.net is None:
            raise RuntimeError("MindSporeBackend.build() must run before training, evaluation or checkpoints")
        return self.net

    def _jit(self, fn: Any) -> Any:
        return fn if self.spec.runtime.mode == "pynative" else ms.jit(fn)

    def _make_train_step(self) -> Any:
        net, optimizer, scaler = self._amp_net, self.optimizer, self.loss_scaler
        smoothing, mean, std = self.spec.train.label_smoothing, self._mean, self._std

        def forward(x: Tensor, y: Tensor, values: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor]:
            logits = net(x, values, alpha)
            loss = smoothed_cross_entropy(logits, y, smoothing).mean()
            return (loss if scaler is None else scaler.scale(loss)), logits

        grad_fn = ms.value_and_grad(forward, None, optimizer.parameters, has_aux=True)

        def step(images: Tensor, labels: Tensor, plan: Tensor, scalars: Tensor,
                 values: Tensor) -> tuple[Tensor, Tensor]:
            indices = plan[:, 0]
            x = augment(images, indices, plan[:, 1:3], plan[:, 3] > 0, mean, std)
            y = ops.gather(labels, indices, 0)
            ops.assign(optimizer.learning_rate, scalars[0])
            (loss, logits), grads = grad_fn(x, y, values, scalars[1])
            if scaler is None:
                loss = ops.depend(loss, optimizer(grads))
            else:
                loss = scaler.unscale(loss)
                finite = amp.all_finite(grads)
                if finite:
                    loss = ops.depend(loss, optimizer(scaler.unscale(grads)))
                loss = ops.depend(loss, scaler.adjust(finite))
            correct = (ops.argmax(logits, 1) == y).astype(ms.int32).sum()
            return loss, correct

        return self._jit(step)

    def _make_eval_batch(self) -> Any:
        net, smoothing, mean, std = self._amp_net, self.spec.train.label_smoothing, self._mean, self._std
        top = min(5, self.spec.model.num_classes)

        def eval_batch(images: Tensor, labels: Tensor, values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            logits = net(normalize(images, mean, std), values, ops.zeros((), ms.float32))
            losses = smoothed_cross_entropy(logits, labels, smoothing)
            hits = ops.topk(logits, top)[1] == labels.reshape(-1, 1)
            return losses, hits[:, 0], hits.any(axis=1)

        return self._jit(eval_batch)

    # ---- data and steps ----------------------------------------------------------------------

    def set_data(self, data: Cifar10Arrays) -> None:
        self.train_x = Tensor(np.ascontiguousarray(data.train_x))
        self.train_y = Tensor(data.train_y.astype(np.int32))
        # the test set padded to whole eval batches: one compiled eval shape (eval-mode BN treats
        # images independently, and evaluate() counts only the real ones)
        self._num_test = len(data.test_y)
        pad = -self._num_test % self.spec.train.eval_batch_size
        self.test_x = Tensor(np.concatenate([data.test_x, np.zeros((pad, *data.test_x.shape[1:]), np.uint8)]))
        self.test_y = Tensor(np.concatenate([data.test_y, np.zeros(pad, data.test_y.dtype)]).astype(np.int32))

    def set_estimator_values(self, values: dict[str, dict[str, float]]) -> None:
        # a new Tensor of the same shape: the compiled graphs take it as an input, nothing recompiles
        self._values = values_tensor(self.spec.estimator, values)

    def train_step(self, plan: np.ndarray, lr: float, alpha: float) -> None:
        self._require_net()
        scalars = np.array([lr, alpha], dtype=np.float32)
        loss, correct = self._train_step(self.train_x, self.train_y, Tensor(plan.astype(np.int32)), Tensor(scalars),
                                         self._values)
        self._pending.append((loss, correct, len(plan)))
        self._count += len(plan)
        self._steps += 1

    def pop_stats(self) -> StepStats:
        # fetching the values is the one sync; the steps before ran without waiting
        loss_sum = math.fsum(float(loss.asnumpy()) * batch for loss, _, batch in self._pending)
        correct = sum(int(c.asnumpy()) for _, c, _ in self._pending)
        stats = StepStats(loss_sum=loss_sum, correct=correct, count=self._count, steps=self._steps,
                          nonfinite=not math.isfinite(loss_sum))
        self._pending.clear()
        self._count = self._steps = 0
        return stats

    def evaluate(self) -> dict[str, float]:
        net = self._require_net()
        batch, total = self.spec.train.eval_batch_size, self._num_test
        loss_sum, top1, top5 = 0.0, 0, 0
        net.set_train(False)
        try:
            for start in range(0, total, batch):
                valid = min(batch, total - start)
                end = start + batch
                losses, hit1, hit5 = self._eval_batch(self.test_x[start:end], self.test_y[start:end], self._values)
                loss_sum += float(losses.asnumpy()[:valid].astype(np.float64).sum())
                top1 += int(hit1.asnumpy()[:valid].sum())
                top5 += int(hit5.asnumpy()[:valid].sum())
        finally:
            net.set_train(True)
        return eval_metrics(loss_sum, top1, top5, total)

    def synchronize(self) -> None:
        prime_synchronize()
        ms.runtime.synchronize()

    # ---- checkpoints and portable state --------------------------------------------------------

    def _model_params(self) -> dict[str, Parameter]:
        return {p.name: p for p in self._require_net().get_parameters()}

    def _training_state(self) -> dict[str, Parameter]:
        """Optimizer (and loss-scaler) state under OPTIMIZER_PREFIX + MindSpore's own names
        (accum.<param>, stat.<param>, learning_rate, global_step, ...): every optimizer Parameter
        that is not a model one."""
        model = self._model_params()
        state = {p.name: p for p in self.optimizer.get_parameters() if p.name not in model}
        if self.loss_scaler is not None:
            state.update({f"loss_scaler.{p.name}": p for p in (self.loss_scaler.scale_value, self.loss_scaler.counter)})
        return {OPTIMIZER_PREFIX + name: p for name, p in state.items()}

    def save_checkpoint(self, path: Path, meta: dict[str, Any]) -> None:
        write_ckpt(path, {**self._model_params(), **self._training_state()}, meta)

    def save_model(self, path: Path, meta: dict[str, Any]) -> None:
        write_ckpt(path, self._model_params(), meta)

    @classmethod
    def read_model_state(cls, path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors, meta = read_ckpt(path)
        return {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)}, meta or {}

    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        tensors, meta = read_ckpt(path)
        self.load_state_numpy({k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)})
        saved = {k: v for k, v in tensors.items() if k.startswith(OPTIMIZER_PREFIX)}
        if saved:  # a model-only checkpoint (the model zoo's, a converted one) keeps the fresh optimizer
            training = self._training_state()
            check_names({k: tuple(p.shape) for k, p in training.items()}, {k: v.shape for k, v in saved.items()},
                        what=f"optimizer state (optim.name={self.spec.optim.name}, precision={self.spec.precision})")
            for name, value in saved.items():
                _overwrite(training[name], value)
        return meta or {}

    def state_numpy(self) -> dict[str, np.ndarray]:
        return {name: p.asnumpy().copy() for name, p in self._model_params().items()}

    def load_state_numpy(self, state: dict[str, np.ndarray]) -> None:
        params = self._model_params()
        given = canonical_state(state)
        check_names({k: tuple(p.shape) for k, p in params.items()}, {k: tuple(np.shape(v)) for k, v in given.items()})
        for name, param in params.items():
            _overwrite(param, given[name])


BACKEND = MindSporeBackend
