"""The noise module's shortcut (noise.shortcut: sin, linear, none = None; paper Table 4) in both backends,
forward and backward, against the NumPy formula of tests/oracle.py on tiny inputs that include 0,
±1 and values beyond; the PyTorch fused kernel too. Both backends matching one formula is their
parity for this part of the model."""
from __future__ import annotations

import numpy as np
import pytest

from bench.networks.layers import NOISE_SHORTCUTS
from bench.estimators import variant_label
from bench.spec import EstimatorSpec, Spec, build_spec
from oracle import noise_e, noise_e_grads, pseudo_grad, sign

D, K, SCALE, ALPHA = 8, 4, 0.3, 0.25  # hidden width max(1, 8 // 4) = 2
SHORTCUTS = pytest.mark.parametrize("shortcut", [*NOISE_SHORTCUTS, None], ids=[*NOISE_SHORTCUTS, "none"])


def _inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """t (3, D) with 0, ±1 and |t| > 1 in its first row; fc1's and fc2's weights; an upstream gradient."""
    rng = np.random.default_rng(0)
    t = rng.standard_normal((3, D)) * 1.5
    t[0, :6] = [0.0, 1.0, -1.0, 2.5, -3.0, 0.5]
    w1, w2 = rng.standard_normal((D // K, D)), rng.standard_normal((D, D // K))
    return t, w1, w2, rng.standard_normal((3, D))


def _close(actual: np.ndarray, expected: np.ndarray, tol: float) -> None:
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


def test_label_names_the_shortcut_only_when_not_the_papers():
    spec = {"estimator.name": "fda", "noise.enabled": True}
    assert variant_label(build_spec(spec)) == "fda-n9+noise"
    assert variant_label(build_spec({**spec, "noise.shortcut": "linear"})) == "fda-n9+noise-linear"
    assert variant_label(build_spec({**spec, "noise.shortcut": None})) == "fda-n9+noise-none"
    assert variant_label(build_spec({"estimator.name": "fda", "noise.shortcut": None})) == "fda-n9"


def test_run_directories_named_before_the_shortcut_existed_keep_their_names():
    import hashlib
    import json

    from bench.spec import DIGEST_SINCE

    spec = build_spec({"estimator.name": "fda", "noise.enabled": True})
    before = spec.to_dict()
    for section, name in DIGEST_SINCE:  # what a spec was before noise.shortcut (and later fields)
        del before[section][name]
        if not before[section]:  # a section added since (init) was not in the older trees at all
            del before[section]
    assert spec.digest() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:10]
    assert build_spec({"estimator.name": "fda", "noise.enabled": True, "noise.shortcut": "linear"}).digest() != \
        spec.digest()


# ---- PyTorch ----------------------------------------------------------------------------------

@SHORTCUTS
def test_torch_module_matches_the_formula(shortcut):
    torch = pytest.importorskip("torch")
    from backends.pytorch.noise import NoiseAdaptation

    t, w1, w2, g = _inputs()
    module = NoiseAdaptation(D, K, SCALE, shortcut=shortcut).double()
    with torch.no_grad():
        module.fc1.weight.copy_(torch.from_numpy(w1))
        module.fc2.weight.copy_(torch.from_numpy(w2))
    x = torch.from_numpy(t).requires_grad_()
    out = module(x)
    out.backward(torch.from_numpy(g))
    _close(out.detach().numpy(), noise_e(t, w1, w2, shortcut, SCALE), 1e-12)
    for got, expected in zip((x.grad, module.fc1.weight.grad, module.fc2.weight.grad),
                             noise_e_grads(t, w1, w2, shortcut, SCALE, g)):
        _close(got.numpy(), expected, 1e-12)


@SHORTCUTS
@pytest.mark.parametrize("fused", [False, True], ids=["op-by-op", "fused"])
def test_torch_binarize_matches_the_formula(shortcut, fused):
    """sign_est(t) + alpha e(t) over the columns of t, as the binary convolution calls it, with FDA's
    pseudo-gradient: the fused kernel (noise.py `binarized`, torch.compile) and op by op."""
    torch = pytest.importorskip("torch")
    from backends.pytorch.estimators import make_estimator
    from backends.pytorch.noise import NoiseAdaptation

    t, w1, w2, g = _inputs()
    module = NoiseAdaptation(D, K, SCALE, fused=fused, shortcut=shortcut)
    with torch.no_grad():
        module.fc1.weight.copy_(torch.from_numpy(w1))
        module.fc2.weight.copy_(torch.from_numpy(w2))
    estimator = make_estimator(EstimatorSpec(name="fda", n=9), fused)
    # vectors along dim -2: (1, D, 3), each column one row of t
    x = torch.from_numpy(t.T[None].copy()).float().requires_grad_()
    out = module.binarize(estimator, x, torch.tensor(ALPHA))
    out.backward(torch.from_numpy(g.T[None].copy()).float())
    expected = sign(t) + ALPHA * noise_e(t, w1, w2, shortcut, SCALE)
    dt, dw1, dw2 = noise_e_grads(t, w1, w2, shortcut, SCALE, g)
    _close(out.detach().numpy()[0].T, expected, 1e-5)
    _close(x.grad.numpy()[0].T, g * pseudo_grad("fda", t, n=9) + ALPHA * dt, 1e-5)
    _close(module.fc1.weight.grad.numpy(), ALPHA * dw1, 1e-5)
    _close(module.fc2.weight.grad.numpy(), ALPHA * dw2, 1e-5)


def test_torch_conv_builds_the_specs_shortcut():
    pytest.importorskip("torch")
    from backends.pytorch.binconv import BinConv2d

    conv = BinConv2d(16, 16, 1, Spec(noise={"enabled": True, "shortcut": "linear"}))
    assert conv.noise_w.shortcut == conv.noise_a.shortcut == "linear"


# ---- MindSpore ----------------------------------------------------------------------------------

@pytest.mark.mindspore
@SHORTCUTS
def test_mindspore_module_matches_the_formula(shortcut):
    """In GRAPH_MODE (ms.jit), where the shortcut is a constant of the compiled graph."""
    ms = pytest.importorskip("mindspore")
    from backends.mindspore.noise import NoiseAdaptation

    t, w1, w2, g = _inputs()
    module = NoiseAdaptation(D, K, SCALE, shortcut=shortcut)
    module.fc1.weight.set_data(ms.Tensor(w1.astype(np.float32)))
    module.fc2.weight.set_data(ms.Tensor(w2.astype(np.float32)))
    upstream = ms.Tensor(g.astype(np.float32))

    class Loss(ms.nn.Cell):
        def __init__(self):
            super().__init__()
            self.module = module

        def construct(self, x):
            return (self.module(x) * upstream).sum()

    params = [module.fc1.weight, module.fc2.weight]
    x = ms.Tensor(t.astype(np.float32))
    _close(module(x).asnumpy(), noise_e(t, w1, w2, shortcut, SCALE), 1e-5)
    dt, (dw1, dw2) = ms.jit(ms.grad(Loss(), grad_position=0, weights=params))(x)
    for got, expected in zip((dt, dw1, dw2), noise_e_grads(t, w1, w2, shortcut, SCALE, g)):
        _close(got.asnumpy(), expected, 1e-5)


@pytest.mark.mindspore
def test_mindspore_conv_builds_the_specs_shortcut():
    pytest.importorskip("mindspore")
    from backends.mindspore.binconv import BinConv2d

    conv = BinConv2d(16, 16, 1, Spec(backend="mindspore", noise={"enabled": True, "shortcut": None}))
    assert conv.noise_w.shortcut is None and conv.noise_a.shortcut is None
