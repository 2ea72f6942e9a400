"""The MindSpore backend on its own: model zoo names, refusals, the shortcut's gradient in both
execution modes, device augmentation, checkpoints, and short trainings (synthetic, then real data).

GRAPH_MODE compiles take seconds, so one trained backend is shared by the tests of this module.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ms = pytest.importorskip("mindspore", reason="MindSpore is not installed")

from backends import backend_class  # noqa: E402
from backends.base import StepStats  # noqa: E402
from backends.mindspore.augment import augment, normalization_constants  # noqa: E402
from backends.mindspore.backend import MindSporeBackend  # noqa: E402
from backends.mindspore.checkpoint import write_ckpt  # noqa: E402
from backends.mindspore.resnet import BasicBlock, BinaryResNet20, subsample2  # noqa: E402
from bench.networks.resnet20 import Block  # noqa: E402
from bench.data.augment import augment_numpy, batch_plan, plan_epoch, steps_per_epoch  # noqa: E402
from bench.data.dataset import Cifar10Arrays, DataSource  # noqa: E402
from bench.errors import UserError  # noqa: E402
from bench.schedules import Schedules  # noqa: E402
from bench.spec import Spec  # noqa: E402

pytestmark = pytest.mark.mindspore

REFERENCE = Path(__file__).resolve().parent.parent / "backends" / "reference" / "modelzoo-resnet20-params.txt"


def reference_shapes() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in REFERENCE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape = line.split(" ", 1)
            shapes[name] = tuple(int(v) for v in shape.strip("()").split(",") if v.strip())
    return shapes


def synthetic(n_train: int = 48, n_test: int = 21, seed: int = 0) -> Cifar10Arrays:
    rng = np.random.default_rng(seed)
    return Cifar10Arrays(rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n_train),
                         rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n_test),
                         DataSource("synthetic", "synthetic", "", lossy=False))


def make_spec(**tree) -> Spec:
    base = {"backend": "mindspore", "device": "cpu", "estimator": {"name": "fda", "n": 9, "n_end": 18},
            "noise": {"enabled": True}, "train": {"epochs": 2, "batch_size": 16, "eval_batch_size": 8}}
    return Spec.model_validate(base | tree)


def run_steps(backend: MindSporeBackend, data: Cifar10Arrays, epoch: int, steps: int) -> list[StepStats]:
    spec = backend.spec
    spe = steps_per_epoch(len(data.train_y), spec.train.batch_size)
    sched = Schedules(spec, spe)
    backend.set_estimator_values(sched.estimator_values(epoch))
    out = []
    for step, (indices, aug) in enumerate(plan_epoch(len(data.train_y), spec.train.batch_size, spec.train.seed,
                                                     epoch, spec.data.augment)):
        if step == steps:
            break
        g = epoch * spe + step
        backend.train_step(batch_plan(indices, aug), sched.lr(g), sched.alpha(g))
        out.append(backend.pop_stats())
    return out


@pytest.fixture(scope="module")
def trained() -> tuple[MindSporeBackend, Cifar10Arrays, list[StepStats]]:
    """A GRAPH_MODE backend (FDA n 9->18, noise on) after two steps on synthetic data."""
    data = synthetic()
    backend = MindSporeBackend(make_spec())
    backend.build()
    backend.set_data(data)
    return backend, data, run_steps(backend, data, epoch=1, steps=2)


def test_registry_versions_and_device():
    assert backend_class("mindspore") is MindSporeBackend
    assert MindSporeBackend.unavailable_reason() is None
    versions = MindSporeBackend.versions()
    assert versions["mindspore"] == ms.__version__ and versions["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert MindSporeBackend(make_spec(device="auto")).device in ("cpu", "cuda")


def test_parameter_names_are_the_model_zoos():
    def shapes_of(noise: dict) -> dict[str, tuple[int, ...]]:
        return {p.name: tuple(p.shape) for p in BinaryResNet20(make_spec(noise=noise)).get_parameters()}

    shapes = shapes_of({"enabled": False})
    assert shapes == reference_shapes()  # names, shapes and nothing else
    with_noise = shapes_of({"enabled": True, "k": 16})
    extra = {k: v for k, v in with_noise.items() if k not in shapes}
    assert len(extra) == 18 * 4
    assert extra["layer1.0.conv1.noise_w.fc1.weight"] == (9, 144)  # h = 144 // 16
    assert extra["layer1.0.conv1.noise_a.fc2.weight"] == (16, 1)  # h = max(1, 16 // 16)
    assert extra["layer3.2.conv2.noise_a.fc1.weight"] == (4, 64)


@pytest.mark.skipif(MindSporeBackend.unsupported_reason(Spec(backend="mindspore", device="cuda")) is None,
                    reason="checks the refusals of a machine where MindSpore has no GPU")
def test_unsupported_reasons_without_gpu():
    cuda = MindSporeBackend.unsupported_reason(make_spec(device="cuda"))
    assert cuda.startswith("MindSpore GPU unavailable: ")
    assert "bf16" in MindSporeBackend.unsupported_reason(make_spec(precision="bf16"))
    assert MindSporeBackend.unsupported_reason(make_spec(precision="bf16", device="auto")) is not None
    assert MindSporeBackend.unsupported_reason(make_spec(precision="fp16")) is None
    assert MindSporeBackend.unsupported_reason(make_spec()) is None
    assert MindSporeBackend(make_spec(device="auto")).device == "cpu"


def test_device_augmentation_matches_the_reference():
    data = synthetic(40, 1)
    mean, std = normalization_constants("imagenet")
    for indices, aug in plan_epoch(40, 16, seed=3, epoch=0, augment=True):
        plan = np.stack([aug.offsets[:, 0], aug.offsets[:, 1]], axis=1).astype(np.int32)
        got = augment(ms.Tensor(data.train_x), ms.Tensor(indices.astype(np.int32)), ms.Tensor(plan),
                      ms.Tensor(aug.flips), mean, std).asnumpy()
        np.testing.assert_array_equal(got, augment_numpy(data.train_x[indices], aug, "imagenet"))


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_downsampling_shortcut_gradient_in_both_modes(mode):
    """The option-A shortcut's backward: exactly the upstream gradient at the kept pixels of the
    middle channels, zero elsewhere, on every call (MindSpore 2.10's x[:, :, ::2, ::2] backward
    crashes in PYNATIVE, and ops.pad's backward returns stale values from the second GRAPH call)."""
    ms.set_context(mode=ms.PYNATIVE_MODE if mode == "pynative" else ms.GRAPH_MODE)
    block = BasicBlock(Block(16, 32, 2), make_spec(noise={"enabled": False}))
    block.set_train(True)

    class ShortcutOnly(ms.nn.Cell):
        def __init__(self):
            super().__init__()
            self.channel_pad = block.channel_pad

        def construct(self, x, go):
            return (self.channel_pad(subsample2(x)) * go).sum()

    rng = np.random.default_rng(0)
    grad = ms.grad(ShortcutOnly(), grad_position=0)
    grad = ms.jit(grad) if mode == "graph" else grad
    for _ in range(3):
        x = rng.standard_normal((4, 16, 8, 8)).astype(np.float32)
        go = rng.standard_normal((4, 32, 4, 4)).astype(np.float32)
        expected = np.zeros_like(x)
        expected[:, :, ::2, ::2] = go[:, 8:24]
        np.testing.assert_array_equal(grad(ms.Tensor(x), ms.Tensor(go)).asnumpy(), expected)


def test_graph_training_steps(trained):
    backend, data, stats = trained
    assert len(stats) == 2 and all(s.count == 16 and s.steps == 1 and not s.nonfinite for s in stats)
    assert all(0.5 < s.loss < 10 for s in stats)
    assert backend.pop_stats().count == 0  # popped


def test_zero_learning_rate_changes_only_bn_statistics(trained):
    backend, data, _ = trained
    before = backend.state_numpy()
    indices, aug = next(plan_epoch(len(data.train_y), 16, 0, 5, True))
    backend.train_step(batch_plan(indices, aug), 0.0, 0.05)
    backend.pop_stats()
    after = backend.state_numpy()
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed and all(k.endswith(("moving_mean", "moving_variance")) for k in changed)


def test_weights_loaded_after_compilation_are_used(trained):
    """Parameter.set_data would leave the compiled step reading the old weights; loading must
    write into them. With a zero classifier every logit is 0 and the smoothed loss is ln(10)."""
    backend, data, _ = trained
    state = backend.state_numpy()
    zero_head = {**state, "linear.weight": np.zeros_like(state["linear.weight"]),
                 "linear.bias": np.zeros_like(state["linear.bias"])}
    backend.load_state_numpy(zero_head)
    indices, aug = next(plan_epoch(len(data.train_y), 16, 0, 6, True))
    backend.train_step(batch_plan(indices, aug), 0.0, 0.05)
    assert backend.pop_stats().loss == pytest.approx(np.log(10), abs=1e-5)
    backend.load_state_numpy(state)


def test_evaluate_counts_every_test_image(trained):
    backend, data, _ = trained
    before = backend.state_numpy()
    metrics = backend.evaluate()  # 21 images in batches of 8: the last batch is partial
    assert all(np.array_equal(v, before[k]) for k, v in backend.state_numpy().items())  # eval-mode BN
    assert set(metrics) == {"Validation-Loss", "Top1-Acc", "Top5-Acc"}
    for key in ("Top1-Acc", "Top5-Acc"):
        assert abs(metrics[key] * 21 - round(metrics[key] * 21)) < 1e-9  # a count of 21 images
    assert 0 <= metrics["Top1-Acc"] <= metrics["Top5-Acc"] <= 1 and np.isfinite(metrics["Validation-Loss"])
    assert backend.evaluate() == metrics  # eval mode: no BN statistics update, deterministic
    assert backend.net.training  # back in training mode


def test_checkpoint_round_trip_with_optimizer_state(trained, tmp_path):
    backend, _, _ = trained
    path = tmp_path / "run" / "checkpoint.ckpt"
    backend.save_checkpoint(path, {"epoch": 1, "history": [{"Top1-Acc": 0.5}]})
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.ckpt"]  # no temporary left behind
    fresh = MindSporeBackend(backend.spec)
    fresh.build()
    assert fresh.load_checkpoint(path) == {"epoch": 1, "history": [{"Top1-Acc": 0.5}]}
    for name, value in backend.state_numpy().items():
        np.testing.assert_array_equal(fresh.state_numpy()[name], value)
    saved, loaded = backend._training_state(), fresh._training_state()
    assert set(saved) == set(loaded) and "optimizer.learning_rate" in saved
    assert any(k.startswith("optimizer.accum.") for k in saved)
    for name in saved:
        np.testing.assert_array_equal(loaded[name].asnumpy(), saved[name].asnumpy())


def test_model_zoo_layout_checkpoint_loads(trained, tmp_path):
    """A model-only .ckpt under the reference names, the PReLU slopes spelled reluK.a as MindSpore
    1.x may have written them; loading keeps the optimizer fresh and returns empty meta."""
    rng = np.random.default_rng(1)
    state = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in reference_shapes().items()}
    zoo = {(k[:-1] + "a" if k.endswith("relu1.w") else k): v for k, v in state.items()}
    write_ckpt(tmp_path / "fdabnn.ckpt", zoo, meta=None)
    backend = MindSporeBackend(make_spec(noise={"enabled": False}))
    backend.build()
    assert backend.load_checkpoint(tmp_path / "fdabnn.ckpt") == {}
    for name, value in state.items():
        np.testing.assert_array_equal(backend.state_numpy()[name], value)


def test_load_state_refusals(trained):
    backend, _, _ = trained
    state = backend.state_numpy()
    aliased = {(k[:-1] + "a" if k.endswith(".relu2.w") else k): v for k, v in state.items()}
    backend.load_state_numpy(aliased)  # reluK.a accepted for reluK.w
    with pytest.raises(UserError, match="both reluK.a and reluK.w"):
        backend.load_state_numpy({**state, "layer1.0.relu1.a": state["layer1.0.relu1.w"]})
    broken = {k: v for k, v in state.items() if k != "bn1.gamma"}
    broken["linear.weight"] = np.zeros((10, 32), np.float32)
    broken["extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(UserError) as err:
        backend.load_state_numpy(broken)
    message = str(err.value)
    assert "\n" not in message
    assert "missing bn1.gamma" in message and "unexpected extra.weight" in message
    assert "mis-shaped linear.weight (10, 32) (expected (10, 64))" in message


def test_pynative_training_step():
    data = synthetic(16, 8)
    backend = MindSporeBackend(make_spec(runtime={"mode": "pynative"}, noise={"enabled": False}))
    backend.build()
    backend.set_data(data)
    (stats,) = run_steps(backend, data, epoch=0, steps=1)
    assert stats.count == 16 and np.isfinite(stats.loss)
    ms.set_context(mode=ms.GRAPH_MODE)


def test_fp16_training_step_on_cpu():
    data = synthetic(16, 8)
    backend = MindSporeBackend(make_spec(precision="fp16", noise={"enabled": False}))
    backend.build()
    backend.set_data(data)
    before = backend.state_numpy()
    (stats,) = run_steps(backend, data, epoch=0, steps=1)
    assert stats.count == 16 and np.isfinite(stats.loss)
    assert not np.array_equal(before["conv1.weight"], backend.state_numpy()["conv1.weight"])
    assert backend._training_state()["optimizer.loss_scaler.scale_value"].asnumpy() == 2.0 ** 16


def test_short_training_on_real_images(cifar10):
    data = cifar10.subsample(5, 3)  # 50 training and 30 test images, stratified
    spec = make_spec(train={"epochs": 1, "batch_size": 16, "eval_batch_size": 16})
    backend = MindSporeBackend(spec)
    backend.build()
    backend.set_data(data)
    stats = run_steps(backend, data, epoch=0, steps=3)
    assert [s.count for s in stats] == [16, 16, 16] and all(np.isfinite(s.loss) for s in stats)
    metrics = backend.evaluate()
    assert 0 <= metrics["Top1-Acc"] <= metrics["Top5-Acc"] <= 1 and 1 < metrics["Validation-Loss"] < 10


# The PyTorch twin's short training (tests/test_torch_backend.py): 100 training and 50 test images per
# class, batch 50, Adam 2e-3 on a cosine, 8 epochs of 20 steps, each estimator's schedule running
# over them; top-1 on the 500 held-out images must clear chance (10 %) clearly.
@pytest.mark.slow
@pytest.mark.parametrize("name", ["swish_sign", "dsq", "ede", "reste", "rbnn"])
def test_short_training_beats_chance_with_each_estimator(cifar10, name):
    data = cifar10.subsample(100, 50, seed=0)
    epochs = 8
    spec = make_spec(estimator={"name": name}, noise={"enabled": False},
                     optim={"name": "adam", "lr": 2e-3, "weight_decay": 1e-4},
                     train={"epochs": epochs, "batch_size": 50, "eval_batch_size": 500})
    backend = MindSporeBackend(spec)
    backend.build()
    backend.set_data(data)
    stats = [s for epoch in range(epochs) for s in run_steps(backend, data, epoch, steps=len(data.train_y))]
    metrics = backend.evaluate()
    print(f"\n{spec.label()}: {len(stats)} steps, {metrics}")
    assert all(np.isfinite(s.loss) for s in stats) and metrics["Top1-Acc"] > 0.22
