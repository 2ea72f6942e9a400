"""The MindSpore network a spec names (model.name; bench/networks)."""
from __future__ import annotations

from mindspore import nn

from backends.mindspore.resnet import BinaryResNet20
from backends.mindspore.vgg_small import VggSmall
from bench.spec import Spec

NETWORKS: dict[str, type[nn.Cell]] = {"resnet20": BinaryResNet20, "vgg_small": VggSmall}


def build_network(spec: Spec) -> nn.Cell:
    return NETWORKS[spec.model.name](spec)
