"""The PyTorch Backend: interface plumbing on synthetic data, then short real trainings on CIFAR-10."""
from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backends import backend_class  # noqa: E402
from backends.base import StepStats  # noqa: E402
from backends.pytorch.backend import TorchBackend  # noqa: E402
from bench.data.augment import batch_plan, plan_epoch, steps_per_epoch  # noqa: E402
from bench.data.dataset import Cifar10Arrays, DataSource  # noqa: E402
from bench.schedules import Schedules  # noqa: E402
from bench.spec import EstimatorSpec, NoiseSpec, OptimSpec, Spec, TrainSpec, build_spec  # noqa: E402


def _synthetic(n_train: int = 64, n_test: int = 24) -> Cifar10Arrays:
    rng = np.random.default_rng(0)
    return Cifar10Arrays(rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n_train),
                         rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n_test),
                         DataSource("synthetic", "synthetic", "", lossy=False))


def _spec(**train) -> Spec:
    return Spec(device="cpu", estimator=EstimatorSpec(name="fda", n=9), noise=NoiseSpec(enabled=True),
                train=TrainSpec(epochs=2, batch_size=16, eval_batch_size=10, **train))


def _ready(spec: Spec, data: Cifar10Arrays) -> tuple[TorchBackend, Schedules]:
    spe = steps_per_epoch(len(data.train_y), spec.train.batch_size, spec.train.max_steps_per_epoch)
    backend = TorchBackend(spec)
    backend.build()
    backend.set_data(data)
    return backend, Schedules(spec, spe)


def _run_epoch(backend: TorchBackend, sched: Schedules, data: Cifar10Arrays, epoch: int,
               steps: int | None = None) -> None:
    spec = backend.spec
    backend.set_estimator_values(sched.estimator_values(epoch))
    plan = plan_epoch(len(data.train_y), spec.train.batch_size, spec.train.seed, epoch, spec.data.augment,
                      spec.train.max_steps_per_epoch)
    for step, (indices, aug) in enumerate(plan):
        if steps is not None and step >= steps:
            break
        g = epoch * sched.steps_per_epoch + step
        backend.train_step(batch_plan(indices, aug), sched.lr(g), sched.alpha(g))


def test_registry_and_environment():
    assert backend_class("torch") is TorchBackend
    assert TorchBackend.unavailable_reason() is None
    versions = TorchBackend.versions()
    assert versions["torch"] == torch.__version__ and {"cuda", "cudnn", "device_name", "threads"} <= set(versions)
    assert TorchBackend(Spec(device="auto")).device in ("cpu", "cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals of a machine without CUDA")
def test_unsupported_device_and_precision_are_refused():
    assert "sees no CUDA" in TorchBackend.unsupported_reason(Spec(device="cuda"))
    # every precision runs on a CPU (fp16 slowly without AVX512_FP16: the estimate says what it costs)
    for precision in ("fp32", "bf16", "fp16"):
        assert TorchBackend.unsupported_reason(Spec(device="cpu", precision=precision)) is None


def test_steps_accumulate_stats_until_popped_and_evaluate_reports_fractions():
    data = _synthetic()
    backend, sched = _ready(_spec(), data)
    _run_epoch(backend, sched, data, 0)
    stats = backend.pop_stats()
    assert isinstance(stats, StepStats) and stats.steps == 4 and stats.count == 64
    assert 0 <= stats.correct <= 64 and np.isfinite(stats.loss_sum) and not stats.nonfinite
    assert stats.loss > 0
    assert backend.pop_stats().count == 0
    metrics = backend.evaluate()
    assert set(metrics) == {"Validation-Loss", "Top1-Acc", "Top5-Acc"}
    assert 0 <= metrics["Top1-Acc"] <= metrics["Top5-Acc"] <= 1 and metrics["Validation-Loss"] > 0
    assert backend.model.training
    assert backend.evaluate() == metrics  # eval mode: no noise, BN statistics frozen


def test_evaluate_loss_is_the_smoothed_loss_over_all_test_images():
    import oracle as ref
    from bench.data.augment import normalize_numpy

    data = _synthetic(n_test=23)  # a partial last batch of 3
    backend, _ = _ready(_spec(), data)
    backend.model.eval()
    with torch.no_grad():
        logits = backend.model(torch.from_numpy(normalize_numpy(data.test_x, "imagenet"))).numpy()
    backend.model.train()
    metrics = backend.evaluate()
    expected = ref.label_smoothed_cross_entropy(logits, data.test_y, 0.1)
    assert metrics["Validation-Loss"] == pytest.approx(expected, rel=1e-5)
    assert metrics["Top1-Acc"] == pytest.approx(np.mean(logits.argmax(1) == data.test_y))


def test_same_seed_same_result_and_checkpoint_resume_is_exact(tmp_path):
    data = _synthetic()
    spec = _spec(max_steps_per_epoch=2)
    straight, sched = _ready(spec, data)
    _run_epoch(straight, sched, data, 0)
    straight.save_checkpoint(tmp_path / "ckpt.pt", {"epoch": 0, "history": [{"loss": 1.5}], "wall_s": 2.0})
    _run_epoch(straight, sched, data, 1)

    resumed, _ = _ready(spec, data)
    meta = resumed.load_checkpoint(tmp_path / "ckpt.pt")
    assert meta == {"epoch": 0, "history": [{"loss": 1.5}], "wall_s": 2.0}
    _run_epoch(resumed, sched, data, 1)
    a, b = straight.state_numpy(), resumed.state_numpy()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not list(tmp_path.glob(".ckpt.pt.*"))  # no temp file left behind

    torch.save(straight.model.state_dict(), tmp_path / "bare.pt")  # a model-only checkpoint loads too
    assert resumed.load_checkpoint(tmp_path / "bare.pt") == {}


def test_nonfinite_loss_is_flagged():
    data = _synthetic()
    backend, sched = _ready(_spec(), data)
    with torch.no_grad():
        backend.model.linear.bias.fill_(float("nan"))
    _run_epoch(backend, sched, data, 0, steps=1)
    assert backend.pop_stats().nonfinite


def test_bf16_autocast_trains_on_cpu():
    data = _synthetic(n_train=16, n_test=10)
    backend, sched = _ready(_spec(max_steps_per_epoch=1).model_copy(update={"precision": "bf16"}), data)
    _run_epoch(backend, sched, data, 0)
    assert np.isfinite(backend.pop_stats().loss)
    assert np.isfinite(backend.evaluate()["Validation-Loss"])


# ---- short real training ------------------------------------------------------------------------
# 100 training and 50 test images per class (stratified), batch 50, Adam 2e-3 on a cosine, so 20
# steps an epoch. Measured top-1 on the 500 held-out images (chance 10 %), and time on 2 threads:
#   ste           10 epochs, 200 steps: 0.342 (torch 2.13, AMD EPYC), 0.344 in 42 s (torch 2.11, Xeon, 2 cores)
#   fda n=9+noise  8 epochs, 160 steps: 0.332 (torch 2.13, AMD EPYC), 0.316 in 54 s (torch 2.11, Xeon, 2 cores)
# The thresholds keep ~10 points of margin for other CPUs and library versions.
TRAIN_PER_CLASS, TEST_PER_CLASS, BATCH = 100, 50, 50


@pytest.mark.parametrize(("estimator", "noise", "epochs", "threshold"), [
    # STE's learning is also shown by the MindSpore twin and the studies: slow, for make test's 15 minutes
    pytest.param(EstimatorSpec(name="ste", clip=1.0), False, 10, 0.22, marks=pytest.mark.slow),
    (EstimatorSpec(name="fda", n=9), True, 8, 0.22),
    # the estimators of the field (bench/estimators.py), each with its schedule over the 8 epochs;
    # swish_sign (peak gradient beta = 5) learns slowest: 0.228 measured (torch 2.13, 2 busy cores)
    pytest.param(EstimatorSpec(name="swish_sign"), False, 8, 0.18, marks=pytest.mark.slow),
    *(pytest.param(EstimatorSpec(name=name), False, 8, 0.22, marks=pytest.mark.slow)
      for name in ("dsq", "ede", "reste", "rbnn")),
], ids=["ste", "fda-n9+noise", "swish_sign", "dsq", "ede", "reste", "rbnn"])
def test_short_training_beats_chance_on_held_out_images(cifar10, estimator, noise, epochs, threshold):
    data = cifar10.subsample(TRAIN_PER_CLASS, TEST_PER_CLASS, seed=0)
    spec = Spec(device="cpu", estimator=estimator, noise=NoiseSpec(enabled=noise),
                optim=OptimSpec(name="adam", lr=2e-3, weight_decay=1e-4),
                train=TrainSpec(epochs=epochs, batch_size=BATCH, eval_batch_size=500))
    backend, sched = _ready(spec, data)
    start = time.perf_counter()
    for epoch in range(epochs):
        _run_epoch(backend, sched, data, epoch)
    train = backend.pop_stats()
    metrics = backend.evaluate()
    print(f"\n{spec.label()}: {sched.total_steps} steps in {time.perf_counter() - start:.1f} s, "
          f"train acc {train.accuracy:.3f}, {metrics}")
    assert not train.nonfinite
    assert metrics["Top1-Acc"] > threshold


def test_steps_are_captured_only_where_cuda_graphs_can_run():
    from backends.pytorch.captured_step import unavailable_reason
    from bench.suite import load_suite

    assert unavailable_reason("cpu", "fp32", False) == "CUDA graphs need a CUDA device"
    assert unavailable_reason("cuda", "fp16", False).startswith("fp16's GradScaler")
    assert unavailable_reason("cuda", "bf16", True).startswith("runtime.compile")
    assert unavailable_reason("cuda", "bf16", False) is None
    assert TorchBackend(build_spec({"device": "cpu"})).describe_step() == "eager (CUDA graphs need a CUDA device)"
    # bench-gpu times the captured and the eager step of the same estimators in one run, interleaved
    suite = load_suite("gpu")
    graph = suite.groups[0]
    assert graph.id == "torch-bf16-b128-graph" and "fda-n9+noise" in graph.estimators
    assert graph.cases() == [(label, {}) for label in graph.estimators] + [
        (label, {"cuda_graph": False}) for label in ("ste", "fda-n9", "fda-n9+noise")]
    assert suite.case_spec(graph, "ste").runtime.cuda_graph
    assert not suite.case_spec(graph, "ste", {"cuda_graph": False}).runtime.cuda_graph
