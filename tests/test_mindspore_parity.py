"""The MindSpore backend computes what the PyTorch backend computes (CPU, fp32, both frameworks):
same logits from the same weights, same estimator and network gradients, same losses over SGD steps,
and checkpoints that convert either way and back bit for bit.

The measured errors are printed (pytest -s) so they can be quoted.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

ms = pytest.importorskip("mindspore", reason="MindSpore is not installed")
torch = pytest.importorskip("torch", reason="PyTorch is not installed")

from backends.mindspore.backend import MindSporeBackend  # noqa: E402
from backends.mindspore.estimators import make_estimator as ms_estimator  # noqa: E402
from backends.mindspore.estimators import values_tensor  # noqa: E402
from backends.mindspore.loss import smoothed_cross_entropy  # noqa: E402
from backends.pytorch.backend import TorchBackend  # noqa: E402
from backends.pytorch.estimators import make_estimator as torch_estimator  # noqa: E402
from backends.pytorch.loss import label_smoothed_cross_entropy  # noqa: E402
from backends.pytorch.names import torch_to_zoo  # noqa: E402
from bench.convert import convert_checkpoint, read_state  # noqa: E402
from bench.data.augment import normalize_numpy  # noqa: E402
from bench.data.dataset import Cifar10Arrays, DataSource  # noqa: E402
from bench.errors import UserError  # noqa: E402
from oracle import label_smoothed_cross_entropy as reference_loss  # noqa: E402
from oracle import sign  # noqa: E402
from lockstep import sgd_in_lock_step  # noqa: E402
from bench.estimators import (ESTIMATORS, NAMES, ROLES, epoch_values, reference_pseudo_grad,  # noqa: E402
                              runtime_values)
from bench.spec import EstimatorSpec, Spec  # noqa: E402

pytestmark = pytest.mark.mindspore

N, ALPHA, SMOOTHING = 9, 0.1, 0.1
STEPS, BATCH = 5, 16
N_VALUES = ms.Tensor(np.full((len(ROLES), 1), float(N), np.float32))  # FDA's runtime values (n,), both roles


def make_spec(backend: str, seed: int = 0, estimator: dict | None = None) -> Spec:
    return Spec.model_validate({
        "backend": backend, "device": "cpu", "estimator": estimator or {"name": "fda", "n": N, "n_end": 18},
        "noise": {"enabled": True, "k": 16}, "optim": {"lr": 0.1},
        "train": {"epochs": 2, "batch_size": BATCH, "eval_batch_size": 8, "label_smoothing": SMOOTHING, "seed": seed},
    })


def synthetic(n_train: int = 96, n_test: int = 8) -> Cifar10Arrays:
    rng = np.random.default_rng(7)
    return Cifar10Arrays(rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n_train),
                         rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n_test),
                         DataSource("synthetic", "synthetic", "", lossy=False))


@pytest.fixture(scope="module")
def pair() -> tuple[MindSporeBackend, TorchBackend, Cifar10Arrays]:
    """Both backends built from one spec; each test first copies MindSpore's weights into torch."""
    data = synthetic()
    ms_backend, torch_backend = MindSporeBackend(make_spec("mindspore")), TorchBackend(make_spec("torch"))
    for backend in (ms_backend, torch_backend):
        backend.build()
        backend.set_data(data)
    return ms_backend, torch_backend, data


def synced(pair) -> tuple[MindSporeBackend, TorchBackend, Cifar10Arrays]:
    ms_backend, torch_backend, data = pair
    torch_backend.load_state_numpy(ms_backend.state_numpy())
    return ms_backend, torch_backend, data


def batch(data: Cifar10Arrays, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    return normalize_numpy(data.train_x[:size], "imagenet"), data.train_y[:size].astype(np.int64)


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def test_same_logits_in_eval_and_train_mode(pair):
    ms_backend, torch_backend, data = synced(pair)
    x, _ = batch(data)
    net, model = ms_backend.net, torch_backend.model
    n, alpha = N_VALUES, ms.Tensor(ALPHA)
    net.set_train(False)
    model.eval()
    with torch.no_grad():
        eval_err = relative(net(ms.Tensor(x), n, ms.Tensor(0.0)).asnumpy(), model(torch.from_numpy(x)).numpy())
    net.set_train(True)
    model.train()
    with torch.no_grad():  # BN batch statistics, noise modules on
        ms_logits = net(ms.Tensor(x), n, alpha).asnumpy()
        train_err = relative(ms_logits, model(torch.from_numpy(x), torch.tensor(ALPHA)).numpy())
    print(f"\nlogits max relative error: eval {eval_err:.2e}, train {train_err:.2e}")
    assert eval_err < 1e-4 and train_err < 1e-4


def estimator_cases() -> list:
    """Every estimator at its defaults, FDA in both forms from n = 0, STE's identity too."""
    specs = [EstimatorSpec(name=name, n=0, n_end=18) for name in NAMES]
    specs += [EstimatorSpec(name="fda", n=0, n_end=18, form="sum"), EstimatorSpec(name="ste", clip=None)]
    return [pytest.param(spec, id=ESTIMATORS[spec.name].tag(spec)) for spec in specs]


@pytest.mark.parametrize("spec", estimator_cases())
def test_estimator_input_gradients(spec):
    """Inputs include 0, -0, ±1, values just inside and outside ±1, the region edges (0.1, 1.5) and
    far beyond; the runtime values of epochs 0, 5 and 9 of 10, each role's: one compiled graph serves
    them all (the values are a Tensor input)."""
    rng = np.random.default_rng(0)
    special = [0.0, -0.0, 1.0, -1.0, 1e-8, -1e-8, 0.999999, 1.000001, -1.5, 1.5, 0.1, -0.1, 2.5, 0.5, -0.3,
               50.0, -1e4]
    x = np.concatenate([special, rng.standard_normal(500) * 1.2]).astype(np.float32)
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    estimator = ms_estimator(spec)

    class Loss(ms.nn.Cell):
        def __init__(self):
            super().__init__()
            self.estimator = estimator

        def construct(self, v, values):
            return (self.estimator(v, values) * ms.Tensor(upstream)).sum()

    ms_grad = ms.jit(ms.grad(Loss(), grad_position=0))
    names = ESTIMATORS[spec.name].runtime
    forward = estimator(ms.Tensor(x), ms.Tensor(np.zeros(len(names), np.float32))).asnumpy()
    np.testing.assert_array_equal(forward, sign(x))  # exactly ±1, sign(0) = +1
    worst = 0.0
    for values in [runtime_values(spec, epoch, 10, role) for epoch in (0, 5, 9) for role in ROLES]:
        t_est = torch_estimator(spec)
        t_est.set_values(values)
        tx = torch.from_numpy(x).requires_grad_()
        t_out = t_est(tx)
        np.testing.assert_array_equal(t_out.detach().numpy(), forward)
        (t_out * torch.from_numpy(upstream)).sum().backward()
        got = ms_grad(ms.Tensor(x), ms.Tensor(np.array([values[k] for k in names], np.float32))).asnumpy()
        ref = upstream * reference_pseudo_grad(spec, x, values)
        scale = max(1.0, float(np.abs(ref).max()))
        err_torch, err_ref = np.abs(got - tx.grad.numpy()).max() / scale, np.abs(got - ref).max() / scale
        worst = max(worst, err_torch, err_ref)
        assert err_torch < 1e-5 and err_ref < 1e-5, (values, err_torch, err_ref)
    print(f"\n{ESTIMATORS[spec.name].tag(spec)}: max gradient error {worst:.2e} (vs torch and the NumPy reference)")


@pytest.fixture(scope="module")
def backends_of(pair) -> Callable[[str], tuple[MindSporeBackend, TorchBackend, Cifar10Arrays]]:
    """Both backends built for each estimator (at its defaults; FDA's are `pair`), once per module."""
    built: dict[str, tuple[MindSporeBackend, TorchBackend, Cifar10Arrays]] = {"fda": pair}

    def get(name: str) -> tuple[MindSporeBackend, TorchBackend, Cifar10Arrays]:
        if name not in built:
            data = synthetic()
            ms_backend, torch_backend = (MindSporeBackend(make_spec("mindspore", estimator={"name": name})),
                                         TorchBackend(make_spec("torch", estimator={"name": name})))
            for backend in (ms_backend, torch_backend):
                backend.build()
                backend.set_data(data)
            built[name] = ms_backend, torch_backend, data
        return built[name]
    return get


@pytest.mark.parametrize(("name", "epoch"), [
    pytest.param("fda", 1, id="fda"),
    pytest.param("rbnn", 1, id="rbnn"),  # RBNN: runtime values that differ between weights and activations
    *(pytest.param(name, 1, marks=pytest.mark.slow, id=name) for name in ("swish_sign", "dsq", "ede")),
    pytest.param("reste", 0, marks=pytest.mark.slow, id="reste")])
def test_every_parameter_gradient_after_one_backward(backends_of, name, epoch):
    """The whole network, training mode, noise modules on with alpha > 0; each estimator at its
    runtime values of epoch `epoch` of two, each role's (FDA: n = 18).

    The largest errors are PReLU slopes' (measured 2e-5 to 1.6e-4 with the estimators at their
    defaults): a slope's gradient sums x * dout over the negative inputs, terms of both signs that
    cancel, so the frameworks' ~1e-7 relative rounding differences in dout grow there. ReSTE is
    compared at o = 1 (epoch 0): from o > 1 on its pseudo-gradient jumps at |x| = m (the secant
    m^(1/o) / m beside the power's (1/o) m^((1-o)/o)), and an activation within the frameworks'
    float32 disagreement of ±m takes either side (measured at o = 1.59: 9e-3 through the layers
    below); its pseudo-gradient at every o is compared above.

    What a training step computes beyond this (the optimizer's update, the schedules) is the same
    code for every estimator, compared over five SGD steps below. Those steps are compared for FDA
    only: from the second step on, the two frameworks' ~1e-6 float32 disagreement can flip a binary
    activation and the trajectories part (see there); which steps that hits depends on the seed and
    the estimator, so one backward from one state is the estimators' deterministic parity check."""
    ms_backend, torch_backend, data = backends_of(name)
    torch_backend.load_state_numpy(ms_backend.state_numpy())
    values = epoch_values(ms_backend.spec.estimator, epoch, 2)
    torch_backend.set_estimator_values(values)
    runtime = values_tensor(ms_backend.spec.estimator, values)
    x, y = batch(data)
    net = ms_backend.net
    net.set_train(True)
    params = net.trainable_params()

    def loss_fn(images, labels, n, alpha):
        return smoothed_cross_entropy(net(images, n, alpha), labels, SMOOTHING).mean()

    grad_fn = ms.jit(ms.value_and_grad(loss_fn, None, params))
    ms_loss, ms_grads = grad_fn(ms.Tensor(x), ms.Tensor(y.astype(np.int32)), runtime, ms.Tensor(ALPHA))

    model = torch_backend.model
    model.train()
    model.zero_grad()
    logits = model(torch.from_numpy(x), torch.tensor(ALPHA))
    t_loss = label_smoothed_cross_entropy(logits, torch.from_numpy(y), SMOOTHING)
    t_loss.backward()
    assert abs(float(ms_loss.asnumpy()) - t_loss.item()) < 1e-5
    assert abs(t_loss.item() - reference_loss(logits.detach().numpy(), y, SMOOTHING)) < 1e-5

    zoo = torch_to_zoo(model)
    t_grads = {zoo[name]: p.grad.numpy() for name, p in model.named_parameters()}
    assert {p.name for p in params} == set(t_grads)
    errors = {p.name: float(np.linalg.norm(g.asnumpy() - t_grads[p.name]) / max(np.linalg.norm(t_grads[p.name]), 1e-12))
              for p, g in zip(params, ms_grads)}
    worst = max(errors, key=errors.get)
    print(f"\n{name}: {len(errors)} parameter gradients: max relative error {errors[worst]:.2e} ({worst})")
    assert errors[worst] < 3e-4, {k: v for k, v in errors.items() if v >= 3e-4}


def test_checkpoints_convert_both_ways_bit_identically(pair, tmp_path):
    ms_backend, torch_backend, _ = synced(pair)
    torch_backend.load_state_numpy({k: v * 1.5 for k, v in ms_backend.state_numpy().items()})  # tell them apart
    meta = {"epoch": 3, "history": [{"Top1-Acc": 0.25}]}
    ms_backend.save_checkpoint(tmp_path / "ms.ckpt", meta)
    torch_backend.save_checkpoint(tmp_path / "torch.pt", meta)

    ms_state, torch_state = ms_backend.state_numpy(), torch_backend.state_numpy()

    convert_checkpoint(tmp_path / "ms.ckpt", tmp_path / "ms.pt")
    convert_checkpoint(tmp_path / "ms.pt", tmp_path / "ms-back.ckpt")
    convert_checkpoint(tmp_path / "torch.pt", tmp_path / "torch.ckpt")
    convert_checkpoint(tmp_path / "torch.ckpt", tmp_path / "torch-back.pt")
    for original, files in ((ms_state, ("ms.pt", "ms-back.ckpt")), (torch_state, ("torch.ckpt", "torch-back.pt"))):
        for name in files:
            state, got_meta = read_state(tmp_path / name)
            assert set(state) == set(original) and got_meta == meta
            for key, value in original.items():
                assert state[key].dtype == value.dtype and np.array_equal(state[key], value), (name, key)
    # the converted files load into the other backend (model only: the optimizer stays fresh)
    assert torch_backend.load_checkpoint(tmp_path / "ms.pt") == meta
    assert ms_backend.load_checkpoint(tmp_path / "torch.ckpt") == meta
    for backend, original in ((torch_backend, ms_state), (ms_backend, torch_state)):
        assert all(np.array_equal(v, original[k]) for k, v in backend.state_numpy().items())


def test_conversion_refuses_mismatches(pair, tmp_path):
    _, torch_backend, _ = synced(pair)
    state = torch_backend.model.state_dict()
    state["linear.weight"] = torch.zeros(10, 32)
    state["layer1.0.extra"] = torch.zeros(3)
    del state["bn1.running_mean"]
    torch.save({"model": state}, tmp_path / "bad.pt")
    with pytest.raises(UserError) as err:
        convert_checkpoint(tmp_path / "bad.pt", tmp_path / "bad.ckpt")
    message = str(err.value)
    assert "\n" not in message and not (tmp_path / "bad.ckpt").exists()
    assert "missing bn1.moving_mean" in message and "unexpected layer1.0.extra" in message
    assert "mis-shaped linear.weight (10, 32) (expected (10, 64))" in message
    with pytest.raises(UserError, match="both are torch checkpoints"):
        convert_checkpoint(tmp_path / "bad.pt", tmp_path / "other.pt")


def test_sgd_steps_keep_the_same_losses():
    """Five SGD steps (momentum, weight decay, cosine lr, alpha schedule) on the same batches,
    indices and crops/flips from plan_epoch, from the PyTorch backend's initial weights; the
    MindSpore step is the compiled GRAPH_MODE one.

    Before each step after the first, MindSpore's weights and velocities are copied into torch, so
    every step starts from the same state. Left to run freely, the two trajectories separate after
    one to three steps: a binary network is chaotic under rounding (an activation within the
    frameworks' ~1e-6 float32 disagreement of 0 can take the other sign, and the flip cascades
    through the next layers), as PyTorch alone shows between NCHW and channels-last inputs. That is
    a property of the model, not of either implementation. Even from one state, such a tie hits
    about one step in eight at batch 16 (4 of 30 steps over seeds 0-5 when this was written: loss
    differences 8e-3 to 9e-2, the other 26 below 3e-6); seed 1 (init, order, crops) has none. The
    other estimators' gradients are compared above."""
    data = synthetic()
    ms_backend, torch_backend = MindSporeBackend(make_spec("mindspore", 1)), TorchBackend(make_spec("torch", 1))
    for backend in (ms_backend, torch_backend):
        backend.build()
        backend.set_data(data)
    ms_backend.load_state_numpy(torch_backend.state_numpy())
    losses, updates = sgd_in_lock_step(ms_backend, torch_backend, len(data.train_y), BATCH, STEPS, relative)
    diffs = [abs(a - b) for a, b in losses]
    print(f"\nSGD losses (ms, torch): {[(round(a, 5), round(b, 5)) for a, b in losses]}; max |diff| "
          f"{max(diffs):.2e}; max relative difference of a tensor's update {max(updates)[0]:.2e} ({max(updates)[1]})")
    assert len(losses) == STEPS and all(math.isfinite(a) for a, _ in losses)
    assert max(diffs) < 1e-3 and max(updates)[0] < 1e-2
