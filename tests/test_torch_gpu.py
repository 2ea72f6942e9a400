"""The PyTorch backend's CUDA paths: device augmentation, autocast precisions with the GradScaler,
channels_last, steps without host syncs, event timing, and torch.compile with n changing per epoch."""
from __future__ import annotations

import dataclasses

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
    backend.set_estimator_values({"weight": {"n": n}, "activation": {"n": n}})
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
    assert all(m.current == {"n": 18} for m in backend.model.modules() if hasattr(m, "current"))
    assert not backend.pop_stats().nonfinite
    torch._dynamo.reset()


def _schedule(steps: int, images: int, batch: int):
    """(plan, lr, alpha, n) of `steps` steps with lr, alpha and n changing as in a run; the last
    step has alpha = 0 (the noise module off, a mode of its own)."""
    step = 0
    for epoch in range(steps):
        for indices, aug in plan_epoch(images, batch, 0, epoch, True):
            decay = 1 - step / steps
            yield batch_plan(indices, aug), 0.1 * decay, 0.1 * decay if step < steps - 1 else 0.0, 9 + epoch % 3
            step += 1
            if step == steps:
                return


# One step from one state: the two paths run the same kernels on the same values (the same lr,
# a device tensor in both), so they may differ by a few ulps where cuDNN picks another algorithm
# for a capture. Over many steps no tolerance means anything: measured on the development CPU
# (eager, fp32, this _schedule at these sizes), a learning rate one ulp larger at the first step
# moved the losses by up to 1.7% within 10 steps and 3.2% within 50, and single weights by up to
# 2.1. So each step starts from the eager run's state, copied in place, and is held to fp32's few ulps.
TOLERANCE = {"fp32": dict(rtol=1e-5, atol=1e-6), "bf16": dict(rtol=2e-2, atol=1e-2)}


def _copy_state(dst: TorchBackend, src: TorchBackend) -> None:
    ours, theirs = dst._training_state(), src._training_state()
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            a.copy_(b)


def _lockstep(eager: TorchBackend, captured: TorchBackend, schedule, precision: str) -> float:
    """Each step of `schedule` on both backends, the captured one starting from the eager one's state
    (from the second step on); asserts equal losses and states; returns the largest difference."""
    worst = 0.0
    for step, (plan, lr, alpha, n) in enumerate(schedule):
        if step:
            _copy_state(captured, eager)
        for backend in (eager, captured):
            backend.set_estimator_values({"weight": {"n": n}, "activation": {"n": n}})
            backend.train_step(plan, lr, alpha)
        expected, got = eager.pop_stats().loss, captured.pop_stats().loss
        np.testing.assert_allclose(got, expected, **TOLERANCE[precision], err_msg=f"loss at step {step}")
        for a, b in zip(captured._training_state(), eager._training_state()):
            np.testing.assert_allclose(a.float().cpu().numpy(), b.float().cpu().numpy(), **TOLERANCE[precision],
                                       err_msg=f"state at step {step}")
            worst = max(worst, float((a.float() - b.float()).abs().max()))
    return worst


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_captured_steps_equal_eager_steps(precision):
    """50 steps, each one CUDA graph replay from the state the eager step started from, give the
    eager step's loss and state (weights, BatchNorm statistics, momentum), with lr, alpha and n
    changing every step and the last step without the noise module; the captured path did run."""
    eager = _backend(precision, cuda_graph=False, deterministic=True, n=9)
    captured = _backend(precision, cuda_graph=True, deterministic=True, n=9)
    assert captured.describe_step() == "one CUDA graph replay"
    assert eager.describe_step() == "eager (runtime.cuda_graph = false)"
    worst = _lockstep(eager, captured, _schedule(50, 256, 64), precision)
    assert captured._captured.captured == [False, True]
    assert captured._captured.replays == {True: 50 - WARMUP - 1, False: 1}
    print(f"captured vs eager, {precision}: largest state difference a step {worst:.3g}")


def test_new_data_renews_the_captured_step():
    """set_data after captured steps: the next replays read the new images, not the old ones by
    address (a graph of the old data would go on training on it, and its losses would differ)."""
    eager = _backend(cuda_graph=False, deterministic=True, n=9)
    captured = _backend(deterministic=True, n=9)
    _lockstep(eager, captured, _schedule(WARMUP + 2, 256, 64), "fp32")
    replays = captured._captured.replays[True]
    assert replays >= 1
    first = _data()
    inverted = dataclasses.replace(first, train_x=255 - first.train_x)
    for backend in (eager, captured):
        backend.set_data(inverted)
    assert captured._captured.captured == []
    _copy_state(captured, eager)
    _lockstep(eager, captured, _schedule(WARMUP + 3, 256, 64), "fp32")
    assert captured._captured.replays[True] >= 2


def test_captured_step_learns_real_images(cifar10):
    """On a class-balanced 5,000 real training images (500 a class) the captured step learns: the
    training loss falls and top-1 on a class-balanced 1,000 real test images, where the most
    frequent class (and any constant answer) scores 10%, clears 35% after 6 epochs."""
    data = cifar10.subsample(500, 100, seed=0)
    assert np.bincount(data.train_y, minlength=10).tolist() == [500] * 10
    assert np.bincount(data.test_y, minlength=10).tolist() == [100] * 10
    backend = _backend("bf16", data=data, batch=128, n=9)
    first = last = None
    for epoch in range(6):
        for indices, aug in plan_epoch(len(data.train_y), 128, 0, epoch, True):
            backend.train_step(batch_plan(indices, aug), 0.1, 0.05)
        loss = backend.pop_stats().loss
        first, last = first or loss, loss
    assert backend._captured.replays[True] > 0
    assert last < first - 0.3, (first, last)
    assert backend.evaluate()["Top1-Acc"] > 0.35


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
