"""Sign estimators by name: estimator NAME is the function `pseudo_grad` of the module NAME.py in
this folder (the names come from bench/estimators.py), wrapped by core.py in a parameter-free Cell,
y = estimator(x, values), with sign's forward and that pseudo-gradient as its bprop."""
from __future__ import annotations

import importlib

import mindspore as ms
import numpy as np
from mindspore import Tensor

from backends.mindspore.estimators.core import SignEstimator, binary_sign
from bench.estimators import ROLES, estimator
from bench.spec import EstimatorSpec


def make_estimator(spec: EstimatorSpec) -> SignEstimator:
    """A fresh estimator Cell for `spec`; an unknown name raises and lists the known ones."""
    estimator(spec.name)
    return SignEstimator(spec, importlib.import_module(f"{__name__}.{spec.name}").pseudo_grad)


def values_tensor(spec: EstimatorSpec, values: dict[str, dict[str, float]]) -> Tensor:
    """The runtime values {role: {name: value}} (bench.estimators.epoch_values) as the float32
    (roles, R) Tensor the model takes: one row per role in ROLES order, R = the estimator's values in
    its `runtime` order (R = 0 for an estimator without any)."""
    names = estimator(spec.name).runtime
    if any(set(values[role]) != set(names) for role in ROLES):
        raise ValueError(f"{spec.name} takes the runtime values ({', '.join(names)}) per role; got {values}")
    return Tensor(np.array([[values[role][name] for name in names] for role in ROLES], np.float32).reshape(
        len(ROLES), len(names)), ms.float32)


__all__ = ["SignEstimator", "binary_sign", "make_estimator", "values_tensor"]
