"""The PyTorch network a spec names (model.name; bench/networks)."""
from __future__ import annotations

from torch import nn

from backends.pytorch.resnet import BinaryResNet20
from backends.pytorch.vgg_small import VggSmall
from bench.spec import Spec

NETWORKS: dict[str, type[nn.Module]] = {"resnet20": BinaryResNet20, "vgg_small": VggSmall}


def build_network(spec: Spec) -> nn.Module:
    return NETWORKS[spec.model.name](spec)
