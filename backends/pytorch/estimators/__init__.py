"""Sign estimators by name: each binarises to exactly ±1 and replaces sign's zero gradient with a
pseudo-gradient (formulas and references in each module; NumPy references in
bench/estimator_reference.py)."""
from __future__ import annotations

from torch import nn

from backends.pytorch.estimators.approx_sign import ApproxSign
from backends.pytorch.estimators.fda import FdaSign
from backends.pytorch.estimators.ste import SteSign
from bench.errors import UserError
from bench.spec import EstimatorSpec

ESTIMATORS: dict[str, type[SteSign] | type[ApproxSign] | type[FdaSign]] = {
    "ste": SteSign,
    "approx_sign": ApproxSign,
    "fda": FdaSign,
}


def estimator_class(name: str) -> type[SteSign] | type[ApproxSign] | type[FdaSign]:
    if name not in ESTIMATORS:
        raise UserError(f"estimator '{name}': unknown; choose one of {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name]


def make_estimator(spec: EstimatorSpec, fused: bool = False) -> nn.Module:
    """A fresh estimator module configured by spec (clip, n, omega, form); fused: its backward as one
    compiled kernel (core.BackwardKernel), else op by op."""
    return estimator_class(spec.name).from_spec(spec, fused)


__all__ = ["ESTIMATORS", "ApproxSign", "FdaSign", "SteSign", "estimator_class", "make_estimator"]
