"""The noise adaptation module and the binarized convolution that uses it."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from backends.pytorch.binconv import BinConv2d  # noqa: E402
from backends.pytorch.noise import NoiseAdaptation  # noqa: E402
from bench.spec import NoiseSpec, Spec  # noqa: E402

NOISE = NoiseSpec(enabled=True)


def _conv(c_in: int = 16, c_out: int = 32, scaling: str = "layer", noise: NoiseSpec = NOISE) -> BinConv2d:
    torch.manual_seed(0)
    return BinConv2d(c_in, c_out, 1, Spec(estimator={"name": "fda"}, noise=noise, model={"scaling": scaling}))


@pytest.mark.parametrize(("d", "k", "hidden"), [(16, 64, 1), (32, 64, 1), (64, 64, 1), (144, 64, 2), (576, 64, 9),
                                                (576, 16, 36)])
def test_shapes_and_hidden_width(d, k, hidden):
    module = NoiseAdaptation(d, k)
    assert module.fc1.weight.shape == (hidden, d) and module.fc2.weight.shape == (d, hidden)
    assert module.fc1.bias is None and module.fc2.bias is None
    assert module(torch.randn(5, 7, d)).shape == (5, 7, d)


def test_init_is_zero_mean_normal_with_variance_one_over_fan_in():
    torch.manual_seed(0)
    module = NoiseAdaptation(4096, k=1)  # 4096 x 4096 weights: tight sample statistics
    for fc in (module.fc1, module.fc2):
        w = fc.weight.detach()
        assert abs(w.mean().item()) < 1e-3
        assert w.std().item() == pytest.approx(1 / math.sqrt(fc.in_features), rel=1e-2)


def test_output_is_mlp_plus_scaled_sine():
    module = NoiseAdaptation(16, sin_scale=0.1)
    t = torch.randn(3, 16)
    expected = torch.relu(t @ module.fc1.weight.T) @ module.fc2.weight.T + 0.1 * torch.sin(t)
    torch.testing.assert_close(module(t), expected)


def test_conv_owns_one_module_for_weights_and_one_for_activations():
    conv = _conv(16, 32)
    assert conv.noise_w.d == 16 * 9 and conv.noise_a.d == 16
    names = [n for n, _ in conv.named_parameters()]
    assert names == ["weight", "noise_w.fc1.weight", "noise_w.fc2.weight", "noise_a.fc1.weight", "noise_a.fc2.weight"]
    assert _conv(noise=NoiseSpec(enabled=False)).noise_w is None


def test_gradients_reach_both_linears_when_alpha_positive():
    conv = _conv()
    conv(torch.randn(2, 16, 8, 8), torch.tensor(0.1)).square().sum().backward()
    for module in (conv.noise_w, conv.noise_a):
        for fc in (module.fc1, module.fc2):
            assert fc.weight.grad is not None and fc.weight.grad.abs().sum() > 0


def test_noise_changes_the_layer_when_alpha_positive():
    conv = _conv()
    w = conv.binary_weight(torch.tensor(0.1))
    assert not torch.equal(w.abs(), torch.full_like(w, conv.scale().item()))


@pytest.mark.parametrize("scaling", ["layer", "channel"])
@pytest.mark.parametrize("case", ["alpha None", "alpha 0", "eval mode"])
def test_alpha_zero_and_eval_mode_are_exactly_binary(scaling, case):
    conv = _conv(scaling=scaling)
    alpha = {"alpha None": None, "alpha 0": torch.tensor(0.0), "eval mode": torch.tensor(0.5)}[case]
    if case == "eval mode":
        conv.eval()
    x = torch.randn(2, 16, 8, 8)
    x[0, 0, 0, 0] = 0.0
    a = conv.binary_input(x, alpha)
    assert set(a.unique().tolist()) == {-1.0, 1.0}
    assert a[0, 0, 0, 0] == 1.0
    w = conv.binary_weight(alpha)
    scale = conv.weight.detach().abs().mean(dim=(1, 2, 3), keepdim=True) if scaling == "channel" \
        else conv.weight.detach().abs().mean()
    torch.testing.assert_close(w, torch.sign(conv.weight.detach()) * scale, rtol=0, atol=0)
    # the layer scales the conv output (exact integer sums of ±1 products), not the weights
    expected = torch.nn.functional.conv2d(torch.where(x >= 0, 1.0, -1.0), torch.sign(conv.weight.detach()),
                                          stride=1, padding=1) * scale.view(1, -1, 1, 1)
    torch.testing.assert_close(conv(x, alpha), expected, rtol=0, atol=0)


def test_scale_is_detached():
    conv = _conv(noise=NoiseSpec(enabled=False))
    assert not conv.scale().requires_grad
    conv.binary_weight().sum().backward()
    # d/dW of sum(sign_est(W) * s) with s constant: s * g(W), g the FDA pseudo-gradient
    assert torch.all(conv.weight.grad > 0)
