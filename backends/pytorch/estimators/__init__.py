"""Sign estimators by name: estimator NAME is the function `pseudo_grad` of the module NAME.py in
this folder (the names come from bench/estimators.py), wrapped by core.py in the exact ±1 forward
and the fp32 backward."""
from __future__ import annotations

import importlib
from functools import lru_cache

import torch

from backends.pytorch.estimators.core import SignEstimator, binary_sign, sign_function
from bench.estimators import estimator
from bench.spec import EstimatorSpec


@lru_cache(maxsize=None)
def estimator_function(name: str) -> type[torch.autograd.Function]:
    """The autograd Function of estimator `name`; an unknown name raises and lists the known ones."""
    estimator(name)
    return sign_function(name, importlib.import_module(f"{__name__}.{name}").pseudo_grad)


def make_estimator(spec: EstimatorSpec, fused: bool = False, role: str = "weight") -> SignEstimator:
    """A fresh estimator module configured by spec, for the binarised weights or activations (`role`,
    whose runtime values may differ); fused: its backward as one compiled kernel."""
    return SignEstimator(spec, estimator_function(spec.name), fused, role)


__all__ = ["SignEstimator", "binary_sign", "estimator_function", "make_estimator"]
