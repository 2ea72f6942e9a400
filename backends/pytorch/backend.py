"""The PyTorch backend: builds the spec's network (bench/networks) and runs its optimizer steps.

Data stays on the training device as uint8 (airbench's recipe): a step sends one small int64
tensor (indices, crop offsets, flips) to the device, gathers and augments the batch there, and runs
forward + loss under autocast (bf16, or fp16 with a GradScaler; CPU and CUDA), backward and the
optimizer step without a host sync: loss and accuracy accumulate in device tensors until pop_stats.

Per-step values arrive from the shared loop as Python floats: the learning rate goes into the
param group (a kernel argument, no copy), alpha is written into a preallocated 0-d device tensor
(one fill kernel) that the model reads, so a compiled graph never specialises on either. alpha = 0
(or noise off) passes None and skips the noise modules; under torch.compile this is a second graph,
compiled once when alpha first reaches 0 (the cosine schedule's last step).
"""
from __future__ import annotations

import math
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backends.base import Backend, StepClock, StepStats
from backends.pytorch import captured_step
from backends.pytorch.augment import augment_batch, normalization_table, normalize
from backends.pytorch.estimators.core import compile_named
from backends.pytorch.loss import label_smoothed_cross_entropy
from backends.pytorch.names import torch_to_zoo
from backends.pytorch.networks import build_network
from bench.networks import spec_tree_for_state
from bench.data.dataset import Cifar10Arrays
from bench.environment import cpu_model
from bench.errors import UserError
from bench.metrics import eval_metrics
from bench.spec import Spec, build_spec
from bench.store import atomic_path
from bench.zoo_names import canonical_state, check_names

_AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _load(path: Path, device: str = "cpu") -> Any:
    """torch.load of weights only (no pickled code runs); anything unreadable is one UserError."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses
            warnings.simplefilter("ignore")
            return torch.load(Path(path), map_location=device, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint {path}: not found") from None
    except pickle.UnpicklingError:
        raise UserError(f"checkpoint {path}: not a readable PyTorch checkpoint (it holds pickled objects other than "
                        "tensors, refused unrun); expected a checkpoint.pt this suite or `fdabnn convert` wrote") from None
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(f"checkpoint {path}: not a readable PyTorch checkpoint ({why})") from None


def _model_state(payload: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(model state_dict, meta) of a checkpoint save_checkpoint/save_model wrote, or of a bare state_dict."""
    wrapped = isinstance(payload, dict) and isinstance(payload.get("model"), dict)
    state = payload["model"] if wrapped else payload
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"checkpoint {path}: holds no model state_dict")
    # the meta as saved, whatever its type: bench/store/record.py's meta_problem judges it
    return state, (payload.get("meta") or {}) if wrapped else {}


@dataclass
class CudaEventClock(StepClock):
    """Step boundaries as CUDA events recorded on the stream: marking never waits for the GPU;
    intervals_ms synchronises once and reads the event pairs."""

    events: list[torch.cuda.Event] = field(default_factory=list)

    def mark(self) -> None:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        self.events.append(event)

    def intervals_ms(self) -> list[float]:
        if len(self.events) < 2:
            return []
        self.events[-1].synchronize()
        return [a.elapsed_time(b) for a, b in zip(self.events, self.events[1:])]


class TorchBackend(Backend):
    name = "torch"
    checkpoint_suffix = ".pt"

    @staticmethod
    def cuda_available() -> bool:
        return torch.cuda.is_available()

    @staticmethod
    def unsupported_reason(spec: Spec) -> str | None:
        if spec.device == "cuda" and not torch.cuda.is_available():
            return f"device 'cuda' requested but this PyTorch {torch.__version__} sees no CUDA GPU"
        return None

    @staticmethod
    def versions() -> dict[str, str]:
        cuda = torch.cuda.is_available()
        return {
            "torch": torch.__version__,
            "cuda": torch.version.cuda or "none",
            "cudnn": str(torch.backends.cudnn.version()) if cuda else "none",
            "device_name": torch.cuda.get_device_name() if cuda else cpu_model(),
            "threads": str(torch.get_num_threads()),
        }

    def describe_step(self) -> str:
        return "one CUDA graph replay" if self._graph_off is None else f"eager ({self._graph_off})"

    def __init__(self, spec: Spec):
        super().__init__(spec)
        self._amp_dtype = _AMP_DTYPES[spec.precision]
        self._channels_last = self.device == "cuda" and spec.runtime.channels_last
        self.model: torch.nn.Module | None = None
        self._graph_off = captured_step.unavailable_reason(self.device, spec.precision, spec.runtime.compile)
        if not spec.runtime.cuda_graph:
            self._graph_off = "runtime.cuda_graph = false"
        self._captured: captured_step.CapturedStep | None = None
        self._captured_eval: captured_step.CapturedStep | None = None

    # ---- build -------------------------------------------------------------------------------

    def build(self) -> None:
        spec = self.spec
        if spec.runtime.threads:
            torch.set_num_threads(spec.runtime.threads)
        torch.manual_seed(spec.train.seed)
        if self.device == "cpu":
            torch.use_deterministic_algorithms(spec.runtime.deterministic)
            # deterministic mode would also NaN-fill every new tensor (a debugging aid for reads of
            # uninitialised memory); that fill costs a quarter of a CPU step and changes no result
            torch.utils.deterministic.fill_uninitialized_memory = False
        else:
            torch.backends.cudnn.deterministic = spec.runtime.deterministic
            torch.backends.cudnn.benchmark = not spec.runtime.deterministic
        self.model = build_network(spec).to(self.device)
        if self._channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        fused = self.device == "cuda"  # fused steps take GradScaler's inf check on device: no sync
        params = self.model.parameters()  # weight decay on every parameter, as the model zoo
        # a captured step reads the learning rate from device memory (a float would be baked in); on
        # CUDA the eager step reads it there too, so both run the same fused update kernel
        self._lr = torch.tensor(spec.optim.lr, dtype=torch.float32, device=self.device)
        self._lr_on_device = self.device == "cuda"
        lr = self._lr if self._lr_on_device else spec.optim.lr
        if spec.optim.name == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=lr, momentum=spec.optim.momentum, weight_decay=spec.optim.weight_decay,
                nesterov=False, fused=fused or None)
        else:
            self.optimizer = torch.optim.Adam(params, lr=lr, weight_decay=spec.optim.weight_decay,
                                              fused=fused or None, capturable=self._graph_off is None)
        self.scaler = torch.amp.GradScaler(self.device, enabled=spec.precision == "fp16")
        self._norm_table = normalization_table(spec.data.normalization, self.device)
        self._alpha = torch.zeros((), dtype=torch.float32, device=self.device)
        self._loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        self._correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self._eval_sums = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss, top-1, top-5
        self._count = self._steps = 0
        self._forward_loss_fn = self._compiled_forward_loss() if spec.runtime.compile else self._forward_loss
        self._plan = torch.zeros((spec.train.batch_size, 4), dtype=torch.int64, device=self.device)

    def _compiled_forward_loss(self):
        """torch.compile of this backend's forward under a code object of its own: dynamo guards a
        bound method on its instance, so the cases of one bench group would otherwise share one code
        object's 8 variants and the later ones silently run op by op."""
        def forward_loss(images: torch.Tensor, labels: torch.Tensor, alpha: torch.Tensor | None):
            return self._forward_loss(images, labels, alpha)
        return compile_named(forward_loss, f"forward_loss_{id(self):x}", dynamic=None)

    def _require_model(self) -> torch.nn.Module:
        if self.model is None:
            raise RuntimeError("TorchBackend.build() must run before training, evaluation or checkpoints")
        return self.model

    # ---- data and steps ----------------------------------------------------------------------

    def set_data(self, data: Cifar10Arrays) -> None:
        def to_device(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

        self.train_x, self.test_x = to_device(data.train_x), to_device(data.test_x)
        self.train_y = to_device(data.train_y.astype(np.int64))
        self.test_y = to_device(data.test_y.astype(np.int64))
        # captured graphs read the data tensors by address: new data, new graphs
        self._captured_eval = None
        if self._graph_off is None:
            self._require_model()
            self._captured = captured_step.CapturedStep(self._step_body, lambda: self.optimizer.zero_grad(True),
                                                        self._training_state)

    def set_estimator_values(self, values: dict[str, dict[str, float]]) -> None:
        self._require_model().set_estimator_values(values)

    def _autocast(self) -> torch.autocast:
        # fp32 runs get a disabled context (its dtype argument is then ignored)
        return torch.autocast(self.device, dtype=self._amp_dtype or torch.bfloat16,
                              enabled=self._amp_dtype is not None)

    def _forward_loss(self, images: torch.Tensor, labels: torch.Tensor,
                      alpha: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            logits = self.model(images, alpha)
        return label_smoothed_cross_entropy(logits, labels, self.spec.train.label_smoothing), logits

    def _pinned(self, plan: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(plan)
        # pinned + non_blocking: the copy is queued, the host goes on
        return host.pin_memory() if self.device == "cuda" else host

    def _plan_on_device(self, plan: np.ndarray) -> torch.Tensor:
        """The (B, 4) int64 batch plan on the device in one transfer."""
        return self._pinned(plan).to(self.device, non_blocking=True)

    def _train_batch(self, plan_np: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather and augment one training batch on the device: (images, labels)."""
        return self._gather(self._plan_on_device(plan_np))

    def _gather(self, plan: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = plan[:, 0]
        images = augment_batch(self.train_x.index_select(0, idx), plan[:, 1:3], plan[:, 3].bool(), self._norm_table)
        if not self._channels_last:
            images = images.contiguous()
        return images, self.train_y.index_select(0, idx)

    def data_step(self, plan: np.ndarray) -> None:
        self._train_batch(plan)

    def train_step(self, plan: np.ndarray, lr: float, alpha: float) -> None:
        self._require_model()
        noisy = self.spec.noise.enabled and alpha > 0
        if noisy:
            self._alpha.fill_(alpha)
        for group in self.optimizer.param_groups:  # each step: a loaded optimizer state brings a float
            group["lr"] = self._lr.fill_(lr) if self._lr_on_device else lr
        if self._captured is not None and len(plan) == len(self._plan):
            # every per-step value into the static buffers the graph reads; the plan's copy is queued
            self._plan.copy_(self._pinned(plan), non_blocking=True)
            # the noise module's run ends with a step of alpha = 0, a mode of its own: warmed up
            # and captured now, on a snapshot of the state, not compiled at the end of the run
            self._captured.step(noisy, prepare=(True, False) if self.spec.noise.enabled else (False,))
        else:  # eager, and a captured run's shorter last batch (a shape of its own)
            self.optimizer.zero_grad(set_to_none=True)
            self._step_body(noisy, self._plan_on_device(plan))
        self._count += len(plan)
        self._steps += 1

    def _step_body(self, noisy: bool, plan: torch.Tensor | None = None) -> None:
        """Gather, forward, backward, update, statistics: all on the device, no host sync, so a
        CUDA graph can capture it whole (captured_step.py); `plan` None reads the static buffer."""
        images, labels = self._gather(self._plan if plan is None else plan)
        loss, logits = self._forward_loss_fn(images, labels, self._alpha if noisy else None)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with torch.no_grad():
            self._loss_sum += loss.detach().double() * labels.shape[0]
            self._correct += (logits.argmax(dim=1) == labels).sum()

    def _training_state(self) -> list[torch.Tensor]:
        """Every tensor a training step updates in place: parameters, BatchNorm statistics, the
        optimizer's state and the step statistics (what CapturedStep snapshots around the warm-up of
        a mode the run has not reached yet)."""
        model = self._require_model()
        optimizer_state = [value for state in self.optimizer.state.values() for value in state.values()
                           if isinstance(value, torch.Tensor)]
        return [*model.parameters(), *model.buffers(), *optimizer_state, self._loss_sum, self._correct]

    def pop_stats(self) -> StepStats:
        loss_sum, correct = torch.stack([self._loss_sum, self._correct.double()]).tolist()  # the one sync
        stats = StepStats(loss_sum=loss_sum, correct=int(correct), count=self._count, steps=self._steps,
                          nonfinite=not math.isfinite(loss_sum))
        self._loss_sum.zero_()
        self._correct.zero_()
        self._count = self._steps = 0
        return stats

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        model = self._require_model()
        if self._captured_eval is None and self._graph_off is None:
            self._captured_eval = captured_step.CapturedStep(lambda _: self._eval_body(),
                                                             warmup=captured_step.EVAL_WARMUP)
        model.eval()
        try:
            if self._captured_eval is not None:
                self._captured_eval.step()
            else:
                self._eval_body()
            loss, correct1, correct5 = self._eval_sums.tolist()  # the one sync
        finally:
            model.train()
        return eval_metrics(loss, correct1, correct5, len(self.test_y))

    def _eval_body(self) -> None:
        """Loss, top-1 and top-5 hits of the whole test set into _eval_sums, with no host sync, so a
        CUDA graph can capture it whole."""
        sums = self._eval_sums
        sums.zero_()
        batch, total = self.spec.train.eval_batch_size, len(self.test_y)
        for start in range(0, total, batch):
            images = normalize(self.test_x[start:start + batch], self._norm_table)
            if not self._channels_last:
                images = images.contiguous()
            labels = self.test_y[start:start + batch]
            with self._autocast():
                logits = self.model(images)
            loss = label_smoothed_cross_entropy(logits, labels, self.spec.train.label_smoothing, reduction="sum")
            hits = logits.topk(min(5, logits.shape[1]), dim=1).indices == labels[:, None]
            sums += torch.stack([loss.double(), hits[:, 0].sum().double(), hits.any(dim=1).sum().double()])

    # ---- device ------------------------------------------------------------------------------

    def synchronize(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def clock(self) -> StepClock:
        if self.device == "cuda":
            return CudaEventClock(self.synchronize)
        return super().clock()

    def peak_memory_bytes(self) -> int:
        if self.device == "cuda":
            return int(torch.cuda.max_memory_allocated())
        return super().peak_memory_bytes()

    # ---- checkpoints and portable state --------------------------------------------------------

    def save_checkpoint(self, path: Path, meta: dict[str, Any]) -> None:
        model = self._require_model()
        self._save(path, {"model": model.state_dict(), "optimizer": self.optimizer.state_dict(),
                          "scaler": self.scaler.state_dict(), "meta": meta})

    def save_model(self, path: Path, meta: dict[str, Any]) -> None:
        self._save(path, {"model": self._require_model().state_dict(), "meta": meta})

    @staticmethod
    def _save(path: Path, payload: dict[str, Any]) -> None:
        with atomic_path(path) as tmp:  # a crash mid-save leaves the previous checkpoint intact
            torch.save(payload, tmp)

    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        model = self._require_model()
        payload = _load(path, self.device)
        state, meta = _model_state(payload, path)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # names or shapes of another model
            raise UserError(f"checkpoint {path}: does not fit this spec's model "
                            f"({str(exc).splitlines()[0]}); check its estimator, noise and model fields") from None
        if isinstance(payload, dict) and isinstance(payload.get("model"), dict):
            if payload.get("optimizer") is not None:
                self.optimizer.load_state_dict(payload["optimizer"])
            if payload.get("scaler"):
                self.scaler.load_state_dict(payload["scaler"])
        return meta

    @classmethod
    def read_model_state(cls, path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Torch names -> model zoo names through the model the tensors describe; a name that model
        does not know is kept as it is, so a destination's check reports it as unexpected."""
        state, meta = _model_state(_load(path), path)
        arrays = {k: v.numpy() for k, v in state.items() if not k.endswith(".num_batches_tracked")}
        tree = spec_tree_for_state({k: tuple(v.shape) for k, v in arrays.items()}, meta)
        mapping = torch_to_zoo(build_network(build_spec({**tree, "device": "cpu"})))
        return {mapping.get(k, k): v for k, v in arrays.items()}, meta

    def state_numpy(self) -> dict[str, np.ndarray]:
        model = self._require_model()
        state = model.state_dict()
        return {zoo: state[name].detach().cpu().numpy().copy() for name, zoo in torch_to_zoo(model).items()}

    def load_state_numpy(self, state: dict[str, np.ndarray]) -> None:
        model = self._require_model()
        mapping = torch_to_zoo(model)
        current = model.state_dict()
        given = canonical_state(state)
        check_names({zoo: tuple(current[name].shape) for name, zoo in mapping.items()},
                    {k: tuple(np.shape(v)) for k, v in given.items()})
        with torch.no_grad():
            for name, zoo in mapping.items():
                current[name].copy_(torch.from_numpy(np.asarray(given[zoo])))


BACKEND = TorchBackend
