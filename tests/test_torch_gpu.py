"""The PyTorch backend's CUDA paths: device augmentation, autocast precisions with the GradScaler,
channels_last, steps without host syncs, event timing, and torch.compile with n changing per epoch."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backends.pytorch.augment import augment_batch, normalization_table, normalize  # noqa: E402
from backends.pytorch.backend import CudaEventClock, TorchBackend  # noqa: E402
from bench.data.augment import augment_numpy, normalize_numpy, batch_plan, plan_epoch  # noqa: E402
from bench.data.dataset import Cifar10Arrays, DataSource  # noqa: E402
from bench.spec import EstimatorSpec, NoiseSpec, RuntimeSpec, Spec, TrainSpec  # noqa: E402

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _data(n: int = 256) -> Cifar10Arrays:
    rng = np.random.default_rng(0)
    return Cifar10Arrays(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n),
                         rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 100),
                         DataSource("synthetic", "synthetic", "", lossy=False))


def _backend(precision: str = "fp32", compile: bool = False, **estimator) -> TorchBackend:
    spec = Spec(device="cuda", precision=precision, estimator=EstimatorSpec(name="fda", **estimator),
                noise=NoiseSpec(enabled=True), train=TrainSpec(batch_size=64, eval_batch_size=50),
                runtime=RuntimeSpec(compile=compile, deterministic=False))
    backend = TorchBackend(spec)
    backend.build()
    backend.set_data(_data())
    return backend


def _steps(backend: TorchBackend, epoch: int, n: int, count: int = 4) -> None:
    backend.set_n(n)
    for step, (indices, aug) in enumerate(plan_epoch(256, 64, 0, epoch, True)):
        if step >= count:
            break
        backend.train_step(batch_plan(indices, aug), 0.1, 0.05)


def test_cuda_augmentation_equals_augment_numpy():
    images = _data().train_x[:64]
    (_, aug), *_ = plan_epoch(64, 64, seed=5, epoch=0, augment=True)
    out = augment_batch(torch.from_numpy(images).cuda(), torch.from_numpy(aug.offsets).cuda(),
                        torch.from_numpy(aug.flips).cuda(), normalization_table("imagenet", "cuda"))
    assert out.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(out.cpu().numpy(), augment_numpy(images, aug, "imagenet"))
    plain = normalize(torch.from_numpy(images).cuda(), normalization_table("imagenet", "cuda"))
    np.testing.assert_array_equal(plain.cpu().numpy(), normalize_numpy(images, "imagenet"))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_steps_run_without_host_sync_and_learn(precision):
    backend = _backend(precision)
    assert next(backend.model.parameters()).device.type == "cuda"
    assert backend.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    _steps(backend, 0, 9, count=1)  # allocator and cuDNN warm-up may sync once
    backend.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _steps(backend, 0, 9, count=3)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    stats = backend.pop_stats()
    assert stats.count == 4 * 64 and not stats.nonfinite
    metrics = backend.evaluate()
    assert np.isfinite(metrics["Validation-Loss"]) and 0 <= metrics["Top1-Acc"] <= 1
    if precision == "fp16":
        assert backend.scaler.is_enabled() and backend.scaler.get_scale() > 0


def test_event_clock_measures_steps():
    backend = _backend()
    clock = backend.clock()
    assert isinstance(clock, CudaEventClock)
    clock.mark()
    for _ in range(3):
        _steps(backend, 0, 9, count=1)
        clock.mark()
    intervals = clock.intervals_ms()
    assert len(intervals) == 3 and all(t > 0 for t in intervals)
    assert backend.peak_memory_bytes() > 0


def test_compile_follows_n_without_recompiling():
    torch._dynamo.reset()
    backend = _backend(compile=True, n=9, n_end=18)
    _steps(backend, 0, 9, count=2)  # compiles
    backend.synchronize()
    torch._dynamo.config.error_on_recompile = True
    try:
        _steps(backend, 1, 14, count=2)
        _steps(backend, 2, 18, count=2)
    finally:
        torch._dynamo.config.error_on_recompile = False
    assert all(m.n_value == 18 for m in backend.model.modules() if hasattr(m, "n_value"))
    assert not backend.pop_stats().nonfinite
    torch._dynamo.reset()
