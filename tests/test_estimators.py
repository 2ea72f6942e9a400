"""Every estimator bench/estimators.py describes, in both backends, against its own NumPy reference:
what a newly described estimator gets checked by without a line of test written for it."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bench.environment import REPO
from bench.estimators import ESTIMATORS, NAMES, canonical, reference_pseudo_grad, relevant, sign, variant_label
from bench.spec import EstimatorSpec, Spec, build_spec

# 0, -0, ±1 exactly, just inside and outside ±1, far outside, and a spread in between
SPECIAL = [0.0, -0.0, 1.0, -1.0, 1e-7, -1e-7, 0.5, -0.5, 0.999, -0.999, 1.001, -1.001, 1.5, -2.0, 3.0, -7.5]
X = np.concatenate([SPECIAL, np.linspace(-3, 3, 301)]).astype(np.float32)
G = np.random.default_rng(0).normal(size=X.shape).astype(np.float32)


def specs() -> list:
    """Each estimator at its defaults, and at a second n where it reads n."""
    out = []
    for name, est in ESTIMATORS.items():
        out.append(pytest.param(EstimatorSpec(name=name), id=name))
        if est.uses_n:
            out.append(pytest.param(EstimatorSpec(name=name, n=3), id=f"{name}-n3"))
    return out


def test_every_estimator_has_a_pseudo_gradient_in_each_backend():
    for backend in ("pytorch", "mindspore"):
        for name in NAMES:
            assert (REPO / "backends" / backend / "estimators" / f"{name}.py").is_file(), (backend, name)


def test_labels_are_distinct_and_carry_only_what_matters():
    labels = {variant_label(Spec(estimator={"name": name})) for name in NAMES}
    assert len(labels) == len(NAMES)
    ste = build_spec({"estimator.name": "ste", "estimator.n": 1})
    assert ste.label() == "torch-ste-fp32" and not relevant(ste.estimator, "n")
    assert relevant(build_spec({}).estimator, "n")
    # STE with another (meaningless) n is the same model: one cell identity
    assert canonical(ste.to_dict()) == canonical(build_spec({"estimator.name": "ste"}).to_dict())
    assert build_spec({"n": 9, "n_end": 18, "noise": True, "fused": False}).label() == "torch-fda-n9-18+noise-unfused-fp32"


@pytest.mark.parametrize("spec", specs())
@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
def test_torch_matches_the_reference(spec, fused):
    torch = pytest.importorskip("torch")
    from backends.pytorch.estimators import make_estimator

    x = torch.from_numpy(X).requires_grad_(True)
    y = make_estimator(spec, fused)(x)
    y.backward(torch.from_numpy(G))
    np.testing.assert_array_equal(y.detach().numpy(), sign(X))
    np.testing.assert_allclose(x.grad.numpy(), G * reference_pseudo_grad(spec, X), rtol=1e-5, atol=1e-5)


@pytest.mark.mindspore
@pytest.mark.parametrize("spec", specs())
def test_mindspore_matches_the_reference(spec):
    if importlib.util.find_spec("mindspore") is None:
        pytest.skip("mindspore is not installed")
    import mindspore as ms

    from backends.mindspore.estimators import make_estimator

    estimator = make_estimator(spec)
    n = ms.Tensor(float(spec.n), ms.float32)

    @ms.jit
    def forward_backward(x, g):
        y, vjp = ms.vjp(estimator, x, n)
        return y, vjp(g)[0]

    y, dx = forward_backward(ms.Tensor(X), ms.Tensor(G))
    np.testing.assert_array_equal(y.asnumpy(), sign(X))
    np.testing.assert_allclose(dx.asnumpy(), G * reference_pseudo_grad(spec, X), rtol=1e-5, atol=1e-5)
