"""swish_sign: g(x) = beta (2 - beta x tanh(beta x / 2)) / (1 + cosh(beta x)) (bench/estimators.py).

Written in e = exp(-beta |x|) (g is even): 1 / (1 + cosh u) = 2 e / (1 + e)^2 and
tanh(u / 2) = (1 - e) / (1 + e) with u = beta |x|. cosh(beta x) itself overflows float32 past
beta |x| ~ 89, and inf / inf would make the gradient NaN; e only underflows to 0, where g is 0.
"""
from __future__ import annotations

import torch
from torch import Tensor


def pseudo_grad(x: Tensor, values: Tensor, beta: float) -> Tensor:
    u = beta * x.abs()
    e = torch.exp(-u)
    return beta * (2 * e / (1 + e) ** 2) * (2 - u * (1 - e) / (1 + e))
