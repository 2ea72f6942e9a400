"""Every estimator bench/estimators.py describes, in both backends, against its own NumPy reference:
what a newly described estimator gets checked by without a line of test written for it. Its runtime
values are checked at the epochs 0, E/2 and E - 1 of its schedule, for each role, against the
formulas as the papers and the authors' code write them."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from bench.environment import REPO
from bench.estimators import (ESTIMATORS, NAMES, ROLES, canonical, epoch_values, reference_pseudo_grad, relevant,
                              runtime_values, sign, variant_label)
from bench.schedules import Schedules
from bench.spec import EstimatorSpec, Spec, build_spec

# 0, -0, ±1 exactly, just inside and outside ±1, the other estimators' region edges (ReSTE's m = 0.1
# and c = 1.5), far outside (where cosh overflows float32), and a spread in between
SPECIAL = [0.0, -0.0, 1.0, -1.0, 1e-7, -1e-7, 0.5, -0.5, 0.999, -0.999, 1.001, -1.001, 0.1, -0.1, 0.1000001,
           -0.0999999, 1.5, -1.5, 1.5000001, -2.0, 3.0, -7.5, 50.0, -50.0, 1e4, -1e4]
X = np.concatenate([SPECIAL, np.linspace(-2, 2, 201)]).astype(np.float32)
G = np.random.default_rng(0).normal(size=X.shape).astype(np.float32)
EPOCHS = 10


def specs() -> list:
    """Each estimator at its defaults; FDA also at n = 3 -> 18, so its n changes."""
    out = [pytest.param(EstimatorSpec(name=name), id=name) for name in NAMES]
    return out + [pytest.param(EstimatorSpec(name="fda", n=3, n_end=18), id="fda-n3-18")]


def schedule_points(spec: EstimatorSpec) -> list[dict[str, float]]:
    """Its distinct runtime values at epochs 0, E/2 and E - 1 of EPOCHS, both roles."""
    points: list[dict[str, float]] = []
    for epoch in (0, EPOCHS // 2, EPOCHS - 1):
        for role in ROLES:
            if (values := runtime_values(spec, epoch, EPOCHS, role)) not in points:
                points.append(values)
    return points


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
    # only values off their defaults are shown; an unset shared t_min is the estimator's own
    assert build_spec({"estimator.name": "rbnn", "estimator.t_min": 0.01}).label() == "torch-rbnn-fp32"
    assert build_spec({"estimator.name": "ede", "estimator.t_min": 0.01}).label() == "torch-ede-tmin0.01-fp32"
    assert build_spec({"estimator.name": "reste", "estimator.o_end": 2.0}).label() == "torch-reste-o2-fp32"
    assert build_spec({"estimator.name": "dsq", "estimator.dsq_alpha": 0.5}).label() == "torch-dsq-a0.5-fp32"
    assert build_spec({"estimator.name": "swish_sign", "estimator.beta": 2.0}).label() == "torch-swish_sign-b2-fp32"
    ede = {"estimator.name": "ede"}
    assert canonical(build_spec(ede).to_dict()) == canonical(build_spec({**ede, "estimator.t_min": 0.1}).to_dict())


def test_schedules_follow_the_authors_formulas():
    """Epochs 0, E/2 and E - 1 of E = 10 (pure Python)."""
    def ramp(t_min: float, epoch: int) -> float:  # IR-Net's and RBNN's cpt_tk, Tmax = 10
        return 10 ** (math.log10(t_min) + (1 - math.log10(t_min)) * epoch / EPOCHS)

    for epoch in (0, 5, 9):
        values = {name: epoch_values(EstimatorSpec(name=name, n=9, n_end=18), epoch, EPOCHS) for name in NAMES}
        for name in ("ste", "approx_sign", "swish_sign", "dsq"):
            assert values[name] == {"weight": {}, "activation": {}}
        assert values["fda"]["weight"] == values["fda"]["activation"] == {"n": round(9 + 9 * epoch / 9)}
        t = ramp(0.1, epoch)
        for role in ROLES:
            assert values["ede"][role] == pytest.approx({"t": t, "k": max(1 / t, 1)}, rel=1e-12)
            o = 1 + 2 * (1 - math.cos(math.pi * epoch / (2 * EPOCHS)))
            assert values["reste"][role] == pytest.approx({"o": o}, rel=1e-12)
        t = ramp(0.01, epoch)
        assert values["rbnn"]["weight"] == pytest.approx({"t": t, "k": max(1 / t, 1)}, rel=1e-12)
        assert values["rbnn"]["activation"] == pytest.approx({"t": max(t, 1), "k": 1.0}, rel=1e-12)
    # the ends: EDE from 0.1 (k = 10), RBNN's weights from 0.01 (k = 100), ReSTE from o = 1
    assert epoch_values(EstimatorSpec(name="ede"), 0, EPOCHS)["weight"] == pytest.approx({"t": 0.1, "k": 10.0})
    assert epoch_values(EstimatorSpec(name="rbnn"), 0, EPOCHS)["weight"] == pytest.approx({"t": 0.01, "k": 100.0})
    assert epoch_values(EstimatorSpec(name="reste"), 0, EPOCHS)["weight"] == {"o": 1.0}
    assert epoch_values(EstimatorSpec(name="ede", t_min=1e-3), 0, EPOCHS)["weight"] == pytest.approx(
        {"t": 1e-3, "k": 1e3})
    # FDA's n keeps the training loop's schedule
    spec = build_spec({"n": 9, "n_end": 18, "epochs": 7})
    sched = Schedules(spec, 5)
    expected = [9, 10, 12, 14, 15, 16, 18]  # round(9 + 9 e / 6), halves to even
    assert [sched.estimator_values(e)["activation"]["n"] for e in range(7)] == expected
    assert [sched.n(e) for e in range(7)] == expected
    assert all(set(epoch_values(EstimatorSpec(name=n), 0, 1)["weight"]) == set(ESTIMATORS[n].runtime) for n in NAMES)


@pytest.mark.parametrize("spec", specs())
@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
def test_torch_matches_the_reference(spec, fused):
    torch = pytest.importorskip("torch")
    from backends.pytorch.estimators import make_estimator

    estimator = make_estimator(spec, fused)
    for values in schedule_points(spec):
        estimator.set_values(values)
        x = torch.from_numpy(X).requires_grad_(True)
        y = estimator(x)
        y.backward(torch.from_numpy(G))
        np.testing.assert_array_equal(y.detach().numpy(), sign(X))
        expected = G * reference_pseudo_grad(spec, X, values)
        assert np.isfinite(x.grad.numpy()).all(), values
        np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-5, atol=1e-5 * max(1, np.abs(expected).max()),
                                   err_msg=str(values))


@pytest.mark.mindspore
@pytest.mark.parametrize("spec", specs())
def test_mindspore_matches_the_reference(spec):
    if importlib.util.find_spec("mindspore") is None:
        pytest.skip("mindspore is not installed")
    import mindspore as ms

    from backends.mindspore.estimators import make_estimator

    estimator = make_estimator(spec)

    @ms.jit
    def forward_backward(x, g, values):
        y, vjp = ms.vjp(estimator, x, values)
        return y, vjp(g)[0]

    for values in schedule_points(spec):
        vector = ms.Tensor(np.array([values[name] for name in ESTIMATORS[spec.name].runtime], np.float32))
        y, dx = forward_backward(ms.Tensor(X), ms.Tensor(G), vector)
        expected = G * reference_pseudo_grad(spec, X, values)
        np.testing.assert_array_equal(y.asnumpy(), sign(X))
        assert np.isfinite(dx.asnumpy()).all(), values
        np.testing.assert_allclose(dx.asnumpy(), expected, rtol=1e-5, atol=1e-5 * max(1, np.abs(expected).max()),
                                   err_msg=str(values))
