"""PyTorch sign estimators against the NumPy references of bench/estimators.py (tests/oracle.py)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import oracle as ref  # noqa: E402
from backends.pytorch.estimators import estimator_function, make_estimator  # noqa: E402
from backends.pytorch.estimators.fda import closed as fda_closed  # noqa: E402
from backends.pytorch.estimators.fda import term_sum as fda_term_sum  # noqa: E402
from bench.errors import UserError  # noqa: E402
from bench.estimators import NAMES, ROLES, reference_pseudo_grad, runtime_values  # noqa: E402
from bench.spec import EstimatorSpec  # noqa: E402

# 0, -0, ±1 exactly, just inside and outside ±1, far outside, and a spread in between
SPECIAL = [0.0, -0.0, 1.0, -1.0, 1e-7, -1e-7, 0.5, -0.5, 0.999, -0.999, 1.001, -1.001, 1.5, -2.0, 3.0, -7.5]
X = np.concatenate([SPECIAL, np.linspace(-3, 3, 601)]).astype(np.float32)

CASES = [
    ("ste", EstimatorSpec(name="ste", clip=1.0), {"clip": 1.0}),
    ("ste", EstimatorSpec(name="ste", clip=0.5), {"clip": 0.5}),
    ("ste", EstimatorSpec(name="ste", clip=None), {"clip": None}),
    ("approx_sign", EstimatorSpec(name="approx_sign"), {}),
    ("fda", EstimatorSpec(name="fda", n=9), {"n": 9}),
    ("fda", EstimatorSpec(name="fda", n=0, omega=0.3), {"n": 0, "omega": 0.3}),
    ("fda", EstimatorSpec(name="fda", n=9, form="sum"), {"n": 9}),
    ("fda", EstimatorSpec(name="fda", n=18, form="sum"), {"n": 18}),
]
IDS = ["ste", "ste-clip0.5", "ste-identity", "approx_sign", "fda-n9", "fda-n0-w0.3", "fda-n9-sum", "fda-n18-sum"]


def _input_grad(estimator: torch.nn.Module, x: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    estimator(x).backward(grad_out)
    return x.grad


FUSED = pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])


@FUSED
@pytest.mark.parametrize(("name", "spec", "kwargs"), CASES, ids=IDS)
def test_input_gradient_matches_numpy_reference(name, spec, kwargs, fused):
    rng = np.random.default_rng(0)
    grad_out = rng.normal(size=X.shape).astype(np.float32)
    grad = _input_grad(make_estimator(spec, fused), torch.from_numpy(X), torch.from_numpy(grad_out))
    expected = grad_out.astype(np.float64) * ref.pseudo_grad(name, X, **kwargs)
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(128, 16, 32, 32), (7, 64, 8, 8), (64, 576)])
def test_fused_backward_matches_eager_on_every_shape(shape):
    """One dynamic-shape kernel serves activation- and weight-shaped tensors alike."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2)) * 1.5
    grad_out = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    for spec in (EstimatorSpec(name="ste"), EstimatorSpec(name="fda", n=9), EstimatorSpec(name="fda", n=64)):
        fused = _input_grad(make_estimator(spec, fused=True), x, grad_out)
        eager = _input_grad(make_estimator(spec, fused=False), x, grad_out)
        torch.testing.assert_close(fused, eager, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("name", "spec", "kwargs"), CASES, ids=IDS)
def test_forward_is_exactly_plus_minus_one(name, spec, kwargs):
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        out = make_estimator(spec)(torch.from_numpy(X).to(dtype))
        assert out.dtype == dtype
        np.testing.assert_array_equal(out.float().numpy(), ref.sign(X))
    assert make_estimator(spec)(torch.tensor([0.0, -0.0])).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("n", [0, 1, 4, 9, 18, 64])
def test_fda_closed_form_equals_term_sum(n):
    x = torch.from_numpy(X)
    closed = fda_closed(x, torch.tensor(float(n)), 0.1)
    summed = fda_term_sum(x, n, 0.1, n)
    np.testing.assert_allclose(closed.numpy(), summed.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(closed.numpy(), ref.fda_grad(X, n, 0.1), rtol=1e-5, atol=1e-5)
    assert closed[0].item() == pytest.approx(4 * 0.1 / np.pi * (n + 1))  # the limit at x = 0


def test_fda_sum_form_masks_terms_above_n():
    est = make_estimator(EstimatorSpec(name="fda", n=4, n_end=18, form="sum"))
    x = torch.from_numpy(X)
    ones = torch.ones_like(x)
    np.testing.assert_allclose(_input_grad(est, x, ones).numpy(), ref.fda_grad(X, 4), rtol=1e-5, atol=1e-6)
    est.set_values({"n": 18})
    np.testing.assert_allclose(_input_grad(est, x, ones).numpy(), ref.fda_grad(X, 18), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="n <= 18"):
        est.set_values({"n": 19})


@FUSED
@pytest.mark.parametrize(("name", "spec", "kwargs"), CASES, ids=IDS)
def test_bf16_autocast_keeps_fp32_estimator_arithmetic(name, spec, kwargs, fused):
    """Under bf16 autocast, x and grad are bf16; the pseudo-gradient must be the fp32 one rounded
    once to bf16 at the end, which bf16 arithmetic (e.g. cos of a bf16 argument) would not give."""
    x16 = torch.from_numpy(X).bfloat16()
    g16 = torch.from_numpy(np.random.default_rng(1).normal(size=X.shape).astype(np.float32)).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        grad = _input_grad(make_estimator(spec, fused), x16, g16)
    assert grad.dtype == torch.bfloat16
    fp32 = _input_grad(make_estimator(spec, fused), x16.float(), g16.float())
    torch.testing.assert_close(grad, fp32.bfloat16(), rtol=0, atol=0)


def test_fda_bf16_arithmetic_would_differ():
    """The test above has teeth: the FDA gradient computed in bf16 is visibly different."""
    x16 = torch.from_numpy(X).bfloat16()
    in_bf16 = fda_closed(x16, torch.tensor(9.0, dtype=torch.bfloat16), 0.1)
    in_fp32 = fda_closed(x16.float(), torch.tensor(9.0), 0.1).bfloat16()
    assert not torch.equal(in_bf16, in_fp32)


@FUSED
@pytest.mark.parametrize(("name", "spec", "kwargs"), CASES, ids=IDS)
def test_backward_leaves_grad_output_unchanged(name, spec, kwargs, fused):
    x = torch.from_numpy(X).requires_grad_(True)
    grad_out = torch.linspace(-1, 1, len(X))
    kept = grad_out.clone()
    make_estimator(spec, fused)(x).backward(grad_out)
    torch.testing.assert_close(grad_out, kept, rtol=0, atol=0)


@FUSED
def test_fda_n_change_under_compile_neither_recompiles_nor_breaks_the_graph(fused):
    from torch._dynamo.testing import CompileCounter

    torch.compiler.reset()
    est = make_estimator(EstimatorSpec(name="fda", n=9), fused)
    counter = CompileCounter()

    def grad_of(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        compiled(x).sum().backward()
        return x.grad

    compiled = torch.compile(est, backend=counter, fullgraph=True)
    x = torch.from_numpy(X)
    np.testing.assert_allclose(grad_of(x).numpy(), ref.fda_grad(X, 9), rtol=1e-5, atol=1e-5)
    est.set_values({"n": 18})
    np.testing.assert_allclose(grad_of(x).numpy(), ref.fda_grad(X, 18), rtol=1e-5, atol=1e-5)
    assert counter.frame_count == 1
    torch.compiler.reset()


def test_registry_lists_known_names_on_unknown():
    assert NAMES == ("ste", "approx_sign", "fda", "swish_sign", "dsq", "ede", "reste", "rbnn")
    for name in NAMES:  # every described estimator has its PyTorch pseudo-gradient
        assert issubclass(estimator_function(name), torch.autograd.Function)
    with pytest.raises(UserError, match="ste, approx_sign, fda, swish_sign, dsq, ede, reste, rbnn"):
        estimator_function("sign_swish")


def test_runtime_values_are_refused_unless_the_estimators_own():
    with pytest.raises(ValueError, match=r"takes the runtime values \(t, k\); got \(n\)"):
        make_estimator(EstimatorSpec(name="ede")).set_values({"n": 9})
    with pytest.raises(ValueError, match=r"takes the runtime values \(\)"):
        make_estimator(EstimatorSpec(name="ste")).set_values({"n": 9})


def test_fda_closed_form_compiles_one_variant_for_every_n():
    """The fused backward of FDA's closed form is one compiled variant whatever n and n_end a spec
    has (n is a runtime value; n_max is read only by the term sum), so a bench group of many n never
    passes dynamo's limit of 8 variants and silently falls back to op by op."""
    from torch._C._dynamo.eval_frame import _debug_get_cache_entry_list

    torch._dynamo.reset()
    code = estimator_function("fda").kernel.eager.__code__
    x, grad_out = torch.from_numpy(X[:64].copy()), torch.ones(64)
    counts = []
    for n, n_end in ((1, None), (9, None), (18, None), (64, None), (9, 18), (3, 40)):
        estimator = make_estimator(EstimatorSpec(name="fda", n=n, n_end=n_end), fused=True)
        grad = _input_grad(estimator, x, grad_out)
        np.testing.assert_allclose(grad.numpy(), ref.pseudo_grad("fda", X[:64], n=n), rtol=2e-5, atol=2e-5)
        counts.append(len(_debug_get_cache_entry_list(code)))
    assert counts == [1] * len(counts)
    make_estimator(EstimatorSpec(name="fda", n=9, form="sum"), fused=True)(x.clone().requires_grad_()).sum().backward()
    assert len(_debug_get_cache_entry_list(code)) == 2  # the term sum is a variant of its own (unrolled)
    torch._dynamo.reset()


def test_scheduled_estimators_compile_one_variant_whatever_their_values():
    """EDE's t and k, ReSTE's o and RBNN's t and k change every epoch (RBNN's per role too): each
    estimator's fused backward stays one compiled variant, its modules' buffers overwritten in place."""
    from torch._C._dynamo.eval_frame import _debug_get_cache_entry_list

    torch._dynamo.reset()
    x, grad_out = torch.from_numpy(X[:64].copy()), torch.ones(64)
    for name in ("ede", "reste", "rbnn"):
        spec = EstimatorSpec(name=name)
        code = estimator_function(name).kernel.eager.__code__
        modules = {role: make_estimator(spec, fused=True, role=role) for role in ROLES}
        counts = []
        for epoch in (0, 3, 5, 9):
            for role, module in modules.items():
                values = runtime_values(spec, epoch, 10, role)
                module.set_values(values)
                expected = reference_pseudo_grad(spec, X[:64], values)
                np.testing.assert_allclose(_input_grad(module, x, grad_out).numpy(), expected, rtol=2e-5, atol=2e-5)
                counts.append(len(_debug_get_cache_entry_list(code)))
        assert counts == [1] * len(counts), name
    torch._dynamo.reset()
