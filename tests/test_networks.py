"""The networks a spec names (bench/networks): VGG-small beside ResNet-20 and the full-precision twin
of each, in the spec, labels, digests, studies, estimates and state recognition; the PyTorch
VGG-small's layout and initialisation (its parity with MindSpore: tests/test_vgg_small_parity.py)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bench.estimate import network_cost_factor
from bench.networks import forward_macs, spec_tree_for_state
from bench.spec import Spec, build_spec, load_spec
from bench.studies import expand, load_profiles, load_study

VGG_SMALL_PARAMETERS = 4_660_106  # conv0..conv5, six BatchNorms' gammas and betas, fc 8192 -> 10 with bias


def test_resnet20_labels_and_digests_are_what_they_were():
    # digests and labels of the default network name the stored runs' directories
    assert Spec().digest() == "71eb921a06" and Spec().label() == "torch-fda-n9-fp32"
    assert load_spec(None, ["estimator=ste"]).digest() == "0dd5c18ca5"
    assert load_spec(None, ["model.binarize=true"]).digest() == Spec().digest()


def test_labels_name_the_network_and_the_fp_twin():
    assert load_spec(None, ["model.name=vgg_small", "estimator=ste"]).label() == "torch-vgg_small-ste-fp32"
    assert load_spec(None, ["model.binarize=false"]).label() == "torch-fp-fp32"
    assert load_spec(None, ["model.name=vgg_small", "model.binarize=false", "noise=true"]).label() == \
        "torch-vgg_small-fp-fp32"


def test_an_fp_twin_ignores_the_binarization_fields():
    """Reset to their defaults, so an estimators x binarize grid trains the FP twin once."""
    specs = [load_spec(None, ["model.binarize=false", *extra]) for extra in
             ([], ["estimator=ste"], ["estimator=dsq", "noise=true", "fused=false"], ["n=3", "alpha=0.5"])]
    assert len({s.digest() for s in specs}) == 1
    assert all(s.to_dict() == specs[0].to_dict() for s in specs)
    assert not specs[2].noise.enabled and specs[2].runtime.fused_estimators
    assert specs[0].digest() != Spec().digest()
    with pytest.raises(Exception, match="estimator.name"):  # validated as given all the same
        load_spec(None, ["model.binarize=false", "estimator=nope"])


def test_a_grid_crossing_estimators_and_binarize_holds_one_fp_cell(tmp_path: Path):
    study = tmp_path / "s.toml"
    study.write_text('title = "T"\nquestion = "Q?"\nbackends = ["torch"]\n[[grid]]\n'
                     'estimator.name = ["ste", "fda", "dsq"]\nmodel.binarize = [true, false]\n')
    cells = expand(load_study(str(study)), load_profiles().profiles["smoke"], seeds=(0,))
    assert sorted(c.spec.label() for c in cells) == ["torch-dsq-fp32", "torch-fda-n9-fp32", "torch-fp-fp32",
                                                     "torch-ste-fp32"]
    on_vgg = expand(load_study(str(study)), load_profiles().profiles["smoke"], seeds=(0,), arch="vgg_small")
    assert len(on_vgg) == 4 and {c.spec.model.name for c in on_vgg} == {"vgg_small"}
    assert {c.run_id for c in on_vgg}.isdisjoint(c.run_id for c in cells)


def test_vgg_small_is_fifteen_resnet20s_of_arithmetic():
    assert forward_macs("resnet20") == 40_551_040 and forward_macs("vgg_small") == 607_600_640
    assert network_cost_factor("vgg_small") == pytest.approx(15.0, rel=0.01)


def test_state_recognition_tells_the_network_and_the_fp_twin():
    pytest.importorskip("torch")
    from backends.pytorch.names import torch_to_zoo
    from backends.pytorch.vgg_small import VggSmall

    model = VggSmall(build_spec({"model": {"name": "vgg_small", "num_classes": 7}, "noise": {"enabled": True, "k": 32},
                                 "runtime": {"fused_estimators": False}}))
    state = model.state_dict()
    shapes = {zoo: tuple(state[name].shape) for name, zoo in torch_to_zoo(model).items()}
    assert spec_tree_for_state(shapes) == {"noise": {"enabled": True, "k": 32},
                                           "model": {"name": "vgg_small", "num_classes": 7}}
    resnet = {"conv1.weight": (16, 3, 3, 3), "linear.bias": (10,)}
    assert spec_tree_for_state(resnet)["model"] == {"name": "resnet20", "num_classes": 10}
    meta = {"spec": {"model": {"name": "vgg_small", "binarize": False, "scaling": "channel"}}}
    fp = spec_tree_for_state({"conv0.weight": (128, 3, 3, 3), "fc.bias": (10,)}, meta)
    assert fp == {"model": {"name": "vgg_small", "binarize": False, "scaling": "channel", "num_classes": 10}}


def test_torch_vgg_small_layout_and_initialisation():
    torch = pytest.importorskip("torch")
    from backends.pytorch.binconv import BinConv2d, RealConv2d
    from backends.pytorch.vgg_small import VggSmall

    torch.manual_seed(0)
    model = VggSmall(Spec(model={"name": "vgg_small"}))
    assert sum(p.numel() for p in model.parameters()) == VGG_SMALL_PARAMETERS
    assert type(model.conv0) is torch.nn.Conv2d and model.conv0.bias is None
    assert all(isinstance(getattr(model, f"conv{i}"), BinConv2d) for i in range(1, 6))
    assert model.fc.in_features == 8192 and float(model.fc.bias.detach().abs().max()) == 0.0
    assert float(model.fc.weight.detach().std()) == pytest.approx(0.01, rel=0.05)
    # IR-Net's N(0, 2 / fan_out), fan_out = C_out * 9
    assert float(model.conv5.weight.detach().std()) == pytest.approx(math.sqrt(2 / (512 * 9)), rel=0.02)
    model.eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and bool(torch.isfinite(out).all())
    twin = VggSmall(Spec(model={"name": "vgg_small", "binarize": False}))
    assert all(type(getattr(twin, f"conv{i}")) is RealConv2d for i in range(1, 6))
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in model.named_parameters()]
    assert not np.array_equal(twin(torch.ones(1, 3, 32, 32)).detach().numpy(), np.zeros((1, 10)))
