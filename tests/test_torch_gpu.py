"""The PyTorch backend's CUDA paths: device augmentation, autocast precisions with the GradScaler,
channels_last, steps without host syncs, event timing, and torch.compile with n changing per epoch."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backends.pytorch.augment import augment_batch, normalization_table, normalize  # noqa: E402
from backends.pytorch.backend import CudaEventClock, TorchBackend  # noqa: E402
from backends.pytorch.captured_step import EVAL_WARMUP, WARMUP  # noqa: E402
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


def _backend(precision: str = "fp32", compile: bool = False, cuda_graph: bool = True, deterministic: bool = False,
             data: Cifar10Arrays | None = None, batch: int = 64, **estimator) -> TorchBackend:
    spec = Spec(device="cuda", precision=precision, estimator=EstimatorSpec(name="fda", **estimator),
                noise=NoiseSpec(enabled=True), train=TrainSpec(batch_size=batch, eval_batch_size=50),
                runtime=RuntimeSpec(compile=compile, deterministic=deterministic, cuda_graph=cuda_graph))
    backend = TorchBackend(spec)
    backend.build()
    backend.set_data(data or _data())
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
def test_steps_run_without_host_sync(precision):
    backend = _backend(precision)
    assert next(backend.model.parameters()).device.type == "cuda"
    assert backend.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    # allocator and cuDNN warm-up, and the capture of the step's graph (fp32, bf16), may sync
    _steps(backend, 0, 9, count=WARMUP + 1)
    backend.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _steps(backend, 1, 9, count=3)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    stats = backend.pop_stats()
    assert stats.count == (WARMUP + 4) * 64 and not stats.nonfinite
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


def _losses(backend: TorchBackend, steps: int, images: int, batch: int) -> list[float]:
    """Per-step training losses over `steps` steps with lr, alpha and n changing as in a run."""
    losses, step = [], 0
    for epoch in range(steps):
        backend.set_n(9 + epoch % 3)
        for indices, aug in plan_epoch(images, batch, 0, epoch, True):
            lr, alpha = 0.1 * (1 - step / steps), 0.1 * (1 - step / steps)
            backend.train_step(batch_plan(indices, aug), lr, alpha if step < steps - 1 else 0.0)
            losses.append(backend.pop_stats().loss)
            step += 1
            if step == steps:
                return losses
    return losses


# bf16: both paths round the same ops to bf16, but cuDNN may pick different kernels for a captured
# graph; the losses then drift apart at bf16's resolution (2^-8 relative), stated here
TOLERANCE = {"fp32": dict(rtol=1e-5, atol=1e-6), "bf16": dict(rtol=2e-2, atol=1e-2)}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_captured_steps_equal_eager_steps(precision):
    """50 steps of one CUDA graph replay each give the losses and weights of 50 eager steps of the
    same seed, with lr, alpha and n changing every step, and the last step without the noise module."""
    torch.manual_seed(0)
    results = {}
    for graph in (False, True):
        backend = _backend(precision, cuda_graph=graph, deterministic=True, n=9)
        assert backend.describe_step() == ("one CUDA graph replay" if graph else "eager (runtime.cuda_graph = false)")
        results[graph] = (_losses(backend, 50, 256, 64), backend.state_numpy())
    eager, captured = results[False], results[True]
    np.testing.assert_allclose(captured[0], eager[0], **TOLERANCE[precision])
    for name, value in eager[1].items():
        np.testing.assert_allclose(captured[1][name], value, **TOLERANCE[precision], err_msg=name)


def test_captured_step_learns_real_images(cifar10):
    """On 5,000 real training images the captured step learns: the training loss falls and test
    top-1 on 1,000 real test images clears 30% (chance: 10%) after 6 epochs."""
    data = Cifar10Arrays(cifar10.train_x[:5000], cifar10.train_y[:5000], cifar10.test_x[:1000],
                         cifar10.test_y[:1000], cifar10.source)
    backend = _backend("bf16", data=data, batch=128, n=9)
    first = last = None
    for epoch in range(6):
        for indices, aug in plan_epoch(5000, 128, 0, epoch, True):
            backend.train_step(batch_plan(indices, aug), 0.1, 0.05)
        loss = backend.pop_stats().loss
        first, last = first or loss, loss
    assert last < first - 0.3, (first, last)
    assert backend.evaluate()["Top1-Acc"] > 0.30


def test_captured_evaluation_equals_eager_and_follows_the_weights():
    """The evaluation replays one graph for the whole test set (after EVAL_WARMUP eager ones); it
    reads the live parameters and BatchNorm statistics: after more training, and after a checkpoint's
    weights are loaded in place, it equals an eager evaluation of the same weights."""
    captured = _backend(deterministic=True, n=9)
    eager = _backend(cuda_graph=False, deterministic=True, n=9)

    def assert_same() -> None:
        eager.load_state_numpy(captured.state_numpy())
        expected, got = eager.evaluate(), captured.evaluate()
        assert got.keys() == expected.keys()
        for name, value in expected.items():
            np.testing.assert_allclose(got[name], value, rtol=1e-6, atol=1e-7, err_msg=name)

    _steps(captured, 0, 9, count=WARMUP + 1)
    for epoch in range(EVAL_WARMUP + 2):  # eager, then the capture's first replay, then a replay
        assert_same()
        _steps(captured, epoch + 1, 9, count=2)
    assert captured._captured_eval.captured == [False]
    trained = captured.state_numpy()
    fresh = _backend(deterministic=True, n=9)
    for _ in range(EVAL_WARMUP + 1):
        before = fresh.evaluate()
    fresh.load_state_numpy(trained)  # copied in place: the graph sees the loaded weights
    eager.load_state_numpy(trained)
    after, expected = fresh.evaluate(), eager.evaluate()
    assert after != before
    np.testing.assert_allclose(after["Validation-Loss"], expected["Validation-Loss"], rtol=1e-6)
    assert after["Top1-Acc"] == expected["Top1-Acc"]
