"""The networks a spec can name (model.name), each described once, framework-neutral, in a module of
its own: resnet20.py (the FDA-BNN model zoo's, the default) and vgg_small.py (IR-Net's). What they
share (BatchNorm's constants, the noise module's shape) is in layers.py. Each backend builds them in
backends/<backend>/<name>.py.
"""
from __future__ import annotations

from typing import Any

from bench.networks import resnet20, vgg_small
from bench.networks.layers import noise_k

NETWORKS = {module.NAME: module for module in (resnet20, vgg_small)}
NAMES = tuple(NETWORKS)


def forward_macs(name: str, num_classes: int = 10) -> int:
    """Multiply-accumulates of one image's forward pass through network `name`."""
    return NETWORKS[name].forward_macs(num_classes)


def _network_of(shapes: dict[str, tuple[int, ...]]) -> str:
    """VGG-small's stem is conv0; ResNet-20 has none."""
    return vgg_small.NAME if "conv0.weight" in shapes else resnet20.NAME


def recorded_model(meta: Any) -> dict[str, Any]:
    """The model fields a checkpoint's meta states that its tensors' shapes do not tell: binarize and
    scaling, from the run's spec (meta["spec"]["model"]) or, in a converted file, meta["model"]."""
    if not isinstance(meta, dict):
        return {}
    spec = meta.get("spec")
    model = meta.get("model") or (spec.get("model") if isinstance(spec, dict) else None)
    return {k: v for k, v in model.items() if k in ("binarize", "scaling")} if isinstance(model, dict) else {}


def model_of_state(shapes: dict[str, tuple[int, ...]], meta: Any = None) -> dict[str, Any]:
    """The model fields a state and its checkpoint's meta tell: the network from its stem (conv0:
    VGG-small, else ResNet-20), binarize and scaling as the meta records them (recorded_model)."""
    return {"name": _network_of(shapes), **recorded_model(meta)}


def spec_tree_for_state(shapes: dict[str, tuple[int, ...]], meta: Any = None) -> dict:
    """The spec fields that shape the model a state was saved from (model zoo names; PyTorch's work
    too, the noise and classifier names being the same): the network from its stem (conv0: VGG-small,
    else ResNet-20), the noise module present iff *.noise_* tensors are, its k reproducing every hidden
    width (fc1.weight is (h, d)), the class count the classifier bias's length; whether the
    convolutions are binarized and how they are scaled leave the shapes alike, so they come from the
    checkpoint's `meta` (recorded_model), else the defaults."""
    model = model_of_state(shapes, meta)
    pairs = [(shape[0], shape[1]) for key, shape in shapes.items()
             if key.endswith(".fc1.weight") and ".noise_" in key and len(shape) == 2]
    noise = any(".noise_" in key for key in shapes)
    tree: dict = {"noise": {"enabled": noise, "k": noise_k(pairs) if noise else 64},
                  "model": model}
    bias = shapes.get(f"{NETWORKS[model['name']].CLASSIFIER}.bias")
    if bias is not None and len(bias) == 1 and bias[0] >= 2:
        tree["model"]["num_classes"] = bias[0]
    if tree["model"].get("binarize") is False:
        del tree["noise"]  # a full-precision twin has no noise module
    return tree
