"""The fused noise module (noise.py, runtime.fused_estimators) against the op-by-op one: same output,
same gradients, same parameters."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from backends.pytorch.binconv import BinConv2d  # noqa: E402
from backends.pytorch.resnet import BinaryResNet20  # noqa: E402
from bench.spec import NoiseSpec, Spec  # noqa: E402

# (C_in, C_out, k): the model's hidden widths (h = 1 on activations, 2 on weights) and wider ones
SHAPES = pytest.mark.parametrize(("c_in", "c_out", "k"), [(16, 32, 64), (32, 16, 8)], ids=["k64", "k8"])
ALPHAS = pytest.mark.parametrize("alpha", [0.0, 0.3], ids=["alpha0", "alpha0.3"])
PATHS = pytest.mark.parametrize("path", ["weights", "activations"])
FP32 = {"rtol": 1e-5, "atol": 1e-5}
# one bf16 rounding (8 significant bits): 2^-8 relative, under 2^-5 absolute below 8. Absolute too:
# an activation's gradient is the bf16 sum of two rounded terms (the estimator's and the noise's)
# that can cancel.
BF16 = {"rtol": 2.0**-8, "atol": 2.0**-5}


def _spec(fused: bool, k: int = 64) -> Spec:
    return Spec(estimator={"name": "fda", "n": 9}, noise=NoiseSpec(enabled=True, k=k),
                runtime={"fused_estimators": fused})


def _conv_pair(c_in: int, c_out: int, k: int) -> tuple[BinConv2d, BinConv2d]:
    """An op-by-op and a fused convolution with the same parameters."""
    torch.manual_seed(0)
    eager = BinConv2d(c_in, c_out, 1, _spec(False, k))
    fused = BinConv2d(c_in, c_out, 1, _spec(True, k))
    fused.load_state_dict(eager.state_dict())
    return eager, fused


def _binarised(conv: BinConv2d, path: str, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return conv.sign_weight(alpha) if path == "weights" else conv.binary_input(x, alpha)


def _results(conv: BinConv2d, path: str, x: torch.Tensor, alpha: float, seed: int = 1) -> dict[str, torch.Tensor]:
    """The path's output and the gradients of its inputs and of its noise module's linears."""
    conv.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(True)
    out = _binarised(conv, path, x, torch.tensor(alpha))
    # bf16 values, so that a float32 and a bf16 run see the same gradient
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).bfloat16()
    out.backward(grad.to(out.dtype))
    noise, source = (conv.noise_w, conv.weight) if path == "weights" else (conv.noise_a, x)
    return {"output": out.detach(), "input grad": source.grad, "fc1 grad": noise.fc1.weight.grad,
            "fc2 grad": noise.fc2.weight.grad}


def _assert_close(fused: dict[str, torch.Tensor], eager: dict[str, torch.Tensor], tolerance: dict[str, float]) -> None:
    for name, expected in eager.items():
        torch.testing.assert_close(fused[name], expected, **tolerance, msg=lambda m, name=name: f"{name}: {m}")


@PATHS
@ALPHAS
@SHAPES
def test_fused_equals_op_by_op_in_fp32(path, alpha, c_in, c_out, k):
    eager, fused = _conv_pair(c_in, c_out, k)
    x = torch.randn(3, c_in, 8, 8, generator=torch.Generator().manual_seed(2)) * 1.5
    _assert_close(_results(fused, path, x, alpha), _results(eager, path, x, alpha), FP32)


def _bf16_pair(c_in: int, c_out: int, k: int) -> tuple[BinConv2d, BinConv2d, torch.Tensor]:
    """The convolutions of _conv_pair and bf16 activations, as autocast makes them (the previous
    layer's output); the weights stay float32."""
    x = torch.randn(3, c_in, 8, 8, generator=torch.Generator().manual_seed(2)) * 1.5
    return (*_conv_pair(c_in, c_out, k), x.bfloat16())


@PATHS
@ALPHAS
@SHAPES
def test_fused_under_bf16_autocast_is_the_float32_arithmetic_rounded_once(path, alpha, c_in, c_out, k):
    eager, fused, x = _bf16_pair(c_in, c_out, k)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_bf16 = _results(fused, path, x, alpha)
    in_fp32 = _results(eager, path, x.float(), alpha)
    _assert_close({name: t.float() for name, t in in_bf16.items()}, in_fp32, BF16)


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.float() - expected.float()).norm() / expected.float().norm().clamp_min(1e-12)).item()


@PATHS
@ALPHAS
@SHAPES
def test_fused_equals_op_by_op_under_bf16_autocast(path, alpha, c_in, c_out, k):
    """Op by op, autocast runs the linears in bf16 and rounds after every op. The outputs agree to a
    bf16 rounding or two; the gradients in norm only, as the rounding can move a hidden unit's input
    across ReLU's kink, which switches that unit's whole contribution (seen: 7% of fc1's gradient)."""
    eager, fused, x = _bf16_pair(c_in, c_out, k)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_fused, op_by_op = _results(fused, path, x, alpha), _results(eager, path, x, alpha)
    torch.testing.assert_close(in_fused.pop("output"), op_by_op.pop("output"), **BF16)
    for name, expected in op_by_op.items():
        assert in_fused[name].dtype == expected.dtype
        assert _relative_error(in_fused[name], expected) < 0.1, name


@PATHS
def test_alpha_zero_leaves_the_sign_and_the_linears_untouched(path):
    _, fused = _conv_pair(16, 32, 64)
    x = torch.randn(3, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    results = _results(fused, path, x, 0.0)
    assert set(results["output"].unique().tolist()) == {-1.0, 1.0}
    assert not results["fc1 grad"].any() and not results["fc2 grad"].any()


def test_the_whole_conv_matches_including_the_estimators_gradient():
    eager, fused = _conv_pair(16, 32, 64)
    x = torch.randn(3, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    grads = []
    for conv in (eager, fused):
        x_in = x.clone().requires_grad_(True)
        out = conv(x_in, torch.tensor(0.3))
        out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(1)))
        grads.append({"output": out.detach(), "x": x_in.grad, **{n: p.grad for n, p in conv.named_parameters()}})
    _assert_close(grads[1], grads[0], FP32)


def test_fused_follows_the_spec_and_keeps_the_state_dict():
    eager, fused = (BinaryResNet20(_spec(f)) for f in (False, True))
    for model, expected in ((eager, False), (fused, True)):
        convs = [m for m in model.modules() if isinstance(m, BinConv2d)]
        assert {noise.fused for conv in convs for noise in (conv.noise_w, conv.noise_a)} == {expected}
    assert [(n, t.shape) for n, t in fused.state_dict().items()] == \
        [(n, t.shape) for n, t in eager.state_dict().items()]
    assert [n for n, _ in fused.layer1[0].conv1.named_parameters()] == [
        "weight", "noise_w.fc1.weight", "noise_w.fc2.weight", "noise_a.fc1.weight", "noise_a.fc2.weight"]


def test_one_compiled_kernel_serves_every_layer_width():
    """The linears' weights reach the kernel as views: a Parameter's shape would be compiled in as a
    constant, one variant per layer width."""
    from torch._dynamo.utils import counters

    def run(c_in: int) -> None:
        # 5 x 5 pixels: 25 columns, no width's number; dynamo would otherwise compile "columns ==
        # width" in as a relation of the first call (duck sizing) and recompile at the next width
        _results(_conv_pair(c_in, c_in, 64)[1], "activations", torch.randn(2, c_in, 5, 5), 0.3)
        _results(_conv_pair(c_in, c_in, 64)[1], "weights", torch.randn(2, c_in, 5, 5), 0.3)

    run(16)  # one variant for each path (their tensors differ in rank)
    compiled = counters["stats"]["unique_graphs"]
    for c_in in (32, 64):
        run(c_in)
    assert counters["stats"]["unique_graphs"] == compiled


def test_a_compiled_model_inlines_the_fused_binarisation_in_one_graph():
    """runtime.compile: the fused sign-with-noise kernels are looked up in a way dynamo can trace; a
    graph break at every binary convolution would run the model as 37 graphs."""
    model = BinaryResNet20(_spec(True))
    x, alpha = torch.randn(2, 3, 32, 32), torch.tensor(0.1)
    model(x, alpha)  # the kernels' first, eager-side call
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(x, alpha)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


@pytest.mark.slow  # compiling the whole model takes over a minute on 2 cores
def test_a_compiled_model_with_the_noise_module_computes_the_eager_gradients():
    """runtime.compile traces the fused function into the model's graph. Its compiled wrapper once
    made Inductor fail there (ordering the strides of symbolic shapes): only the whole model showed
    it, compiled before any eager call. Inductor may sum in another order, and an activation within
    rounding of 0 may then take the other sign: gradients are compared in norm."""
    torch._dynamo.reset()
    model = BinaryResNet20(_spec(True))
    x, alpha = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(2)), torch.tensor(0.1)
    grads = []
    for forward in (torch.compile(model), model):
        model.zero_grad(set_to_none=True)
        loss = forward(x, alpha).square().mean()
        loss.backward()
        grads.append({"loss": loss.detach(), **{n: p.grad.clone() for n, p in model.named_parameters()}})
    compiled, eager = grads
    for name, expected in eager.items():
        assert _relative_error(compiled[name], expected) < 1e-2, name
