"""The PyTorch ResNet-20 against the model zoo's parameter list, its on-device augmentation and loss
against the NumPy references, and the model-zoo-named state round trip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backends.pytorch.augment import augment_batch, normalization_table, normalize  # noqa: E402
from backends.pytorch.backend import TorchBackend  # noqa: E402
from backends.pytorch.loss import label_smoothed_cross_entropy  # noqa: E402
from backends.pytorch.names import torch_to_zoo  # noqa: E402
from backends.pytorch.resnet import BinaryResNet20, shortcut_a  # noqa: E402
import oracle as ref  # noqa: E402
from bench.data.augment import AugParams, augment_numpy, normalize_numpy, plan_epoch  # noqa: E402
from bench.errors import UserError  # noqa: E402
from bench.spec import ModelSpec, NoiseSpec, Spec  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[1] / "backends" / "reference" / "modelzoo-resnet20-params.txt"
# trainable parameters of the model zoo's ResNet-20 (the reference file without moving statistics)
PARAMETER_COUNT = 269_740


def _reference() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in REFERENCE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, shape = line.split(" ", 1)
            rows.append((name, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


def _backend(spec: Spec = Spec(device="cpu")) -> TorchBackend:
    backend = TorchBackend(spec)
    backend.build()
    return backend


def test_state_names_order_and_shapes_match_the_model_zoo():
    state = _backend().state_numpy()
    assert [(k, v.shape) for k, v in state.items()] == _reference()
    assert all(v.dtype == np.float32 for v in state.values())


def test_parameter_count_and_order():
    model = BinaryResNet20(Spec())
    assert sum(p.numel() for p in model.parameters()) == PARAMETER_COUNT
    zoo_params = [n for n, _ in _reference() if ".moving_" not in n]
    mapping = torch_to_zoo(model)
    assert [mapping[n] for n, _ in model.named_parameters()] == zoo_params


def test_noise_modules_add_their_linears_under_shared_names():
    model = BinaryResNet20(Spec(noise=NoiseSpec(enabled=True, k=64)))
    extra = 0
    for name, module in model.named_modules():
        if name.endswith(("conv1", "conv2")) and name.startswith("layer"):
            c_in = module.in_channels
            extra += 2 * (c_in * 9) * max(1, c_in * 9 // 64) + 2 * c_in * max(1, c_in // 64)
    assert sum(p.numel() for p in model.parameters()) == PARAMETER_COUNT + extra
    state = _backend(Spec(device="cpu", noise=NoiseSpec(enabled=True))).state_numpy()
    noise = [k for k in state if ".noise_" in k]
    assert len(noise) == 18 * 4
    assert noise[:4] == [f"layer1.0.conv1.noise_{m}.{fc}.weight" for m in "wa" for fc in ("fc1", "fc2")]
    assert [k for k in state if ".noise_" not in k] == [n for n, _ in _reference()]


def test_architecture_facts():
    model = BinaryResNet20(Spec())
    assert type(model.conv1) is torch.nn.Conv2d and model.conv1.bias is None
    assert model.linear.bias is not None
    block = model.layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    assert block.relu1.weight.item() == 0.25 and block.relu1.weight.numel() == 1
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    x = torch.randn(2, 16, 32, 32)
    short = shortcut_a(x, 32, 2)
    assert short.shape == (2, 32, 16, 16)
    assert torch.equal(short[:, 8:24], x[:, :, ::2, ::2]) and short[:, :8].abs().sum() == 0
    assert short[:, 24:].abs().sum() == 0


@pytest.mark.parametrize("normalization", ["imagenet", "cifar"])
def test_device_augmentation_equals_augment_numpy(normalization):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)
    (_, aug), *_ = plan_epoch(64, 64, seed=3, epoch=0, augment=True)
    aug = AugParams(np.concatenate([aug.offsets[:60], [[0, 0], [8, 8], [0, 8], [8, 0]]]),
                    np.concatenate([aug.flips[:60], [True, False, True, False]]))
    out = augment_batch(torch.from_numpy(images), torch.from_numpy(aug.offsets), torch.from_numpy(aug.flips),
                        normalization_table(normalization, "cpu"))
    expected = augment_numpy(images, aug, normalization)
    assert out.shape == expected.shape and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), expected)
    plain = normalize(torch.from_numpy(images), normalization_table(normalization, "cpu"))  # evaluation's path
    np.testing.assert_array_equal(plain.numpy(), normalize_numpy(images, normalization))


def test_label_smoothed_loss_matches_numpy_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3, size=(32, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=32)
    for eps in (0.0, 0.1, 0.3):
        got = label_smoothed_cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), eps)
        assert got.item() == pytest.approx(ref.label_smoothed_cross_entropy(logits, labels, eps), rel=1e-6)
    # not PyTorch's eps / C variant
    builtin = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), label_smoothing=0.1)
    ours = label_smoothed_cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), 0.1)
    assert abs(builtin.item() - ours.item()) > 1e-4


def test_state_numpy_round_trip_is_bit_identical():
    spec = Spec(device="cpu", noise=NoiseSpec(enabled=True), model=ModelSpec(scaling="channel"))
    source = _backend(spec)
    with torch.no_grad():  # make the BN statistics non-trivial
        for module in source.model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2)
    state = source.state_numpy()
    target = _backend(spec.model_copy(update={"train": spec.train.model_copy(update={"seed": 1})}))
    assert not np.array_equal(target.state_numpy()["conv1.weight"], state["conv1.weight"])
    target.load_state_numpy(state)
    again = target.state_numpy()
    assert list(again) == list(state)
    for name, value in state.items():
        np.testing.assert_array_equal(again[name], value, err_msg=name)
    x = torch.randn(4, 3, 32, 32)
    source.model.eval()
    target.model.eval()
    torch.testing.assert_close(source.model(x), target.model(x), rtol=0, atol=0)


def test_load_state_numpy_refuses_mismatches_listing_them():
    backend = _backend()
    state = backend.state_numpy()
    state["layer1.0.relu1.a"] = state.pop("layer1.0.relu1.w")  # MindSpore 1.x name: accepted
    backend.load_state_numpy(state)
    del state["linear.bias"]
    state["linear.bogus"] = np.zeros(3, np.float32)
    state["conv1.weight"] = np.zeros((16, 3, 5, 5), np.float32)
    with pytest.raises(UserError) as err:
        backend.load_state_numpy(state)
    message = str(err.value)
    assert "missing linear.bias" in message
    assert "unexpected linear.bogus" in message
    assert "mis-shaped conv1.weight (16, 3, 5, 5) (expected (16, 3, 3, 3))" in message
