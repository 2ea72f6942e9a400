"""Straight-through estimator (Bengio et al. 2013; Hubara et al. 2016, "BinaryNet").

    forward  y = sign(x)
    backward g(x) = 1{|x| <= clip}      (clip = None: g = 1, the model zoo's identity STE)
"""
from __future__ import annotations

import mindspore as ms
from mindspore import Tensor, ops

from backends.mindspore.estimators.base import SignEstimator


class STE(SignEstimator):
    def __init__(self, clip: float | None = 1.0):
        super().__init__()
        self.clip = clip

    def pseudo_grad(self, x: Tensor, n: Tensor) -> Tensor:
        if self.clip is None:
            return ops.ones_like(x)
        return ops.cast(ops.abs(x) <= self.clip, ms.float32)
