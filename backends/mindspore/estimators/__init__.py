"""Sign estimators by name: estimator NAME is the function `pseudo_grad` of the module NAME.py in
this folder (the names come from bench/estimators.py), wrapped by core.py in a parameter-free Cell,
y = estimator(x, n), with sign's forward and that pseudo-gradient as its bprop."""
from __future__ import annotations

import importlib

from backends.mindspore.estimators.core import SignEstimator, binary_sign
from bench.estimators import estimator
from bench.spec import EstimatorSpec


def make_estimator(spec: EstimatorSpec) -> SignEstimator:
    """A fresh estimator Cell for `spec`; an unknown name raises and lists the known ones."""
    estimator(spec.name)
    return SignEstimator(spec, importlib.import_module(f"{__name__}.{spec.name}").pseudo_grad)


__all__ = ["SignEstimator", "binary_sign", "make_estimator"]
