"""Sign estimators by name (Larq-style registry): ste, approx_sign, fda. Each is a parameter-free
Cell, y = estimator(x, n), with sign's forward and its own pseudo-gradient (formulas in each module)."""
from __future__ import annotations

from collections.abc import Callable

from backends.mindspore.estimators.approx_sign import ApproxSign
from backends.mindspore.estimators.base import SignEstimator, binary_sign
from backends.mindspore.estimators.fda import FDA
from backends.mindspore.estimators.ste import STE
from bench.errors import UserError
from bench.spec import EstimatorSpec

_REGISTRY: dict[str, Callable[[EstimatorSpec], SignEstimator]] = {
    "ste": lambda spec: STE(spec.clip),
    "approx_sign": lambda spec: ApproxSign(),
    "fda": lambda spec: FDA(spec.omega, spec.form, spec.n if spec.n_end is None else spec.n_end),
}


def make_estimator(spec: EstimatorSpec) -> SignEstimator:
    """A fresh estimator Cell for `spec`; an unknown name raises and lists the known ones."""
    if spec.name not in _REGISTRY:
        raise UserError(f"estimator '{spec.name}': unknown; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[spec.name](spec)


__all__ = ["SignEstimator", "binary_sign", "make_estimator", "STE", "ApproxSign", "FDA"]
