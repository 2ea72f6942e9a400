"""fda: g(x) = (4 w / pi) sum_{i=0..n} cos((2i+1) w x) for |x| <= 1, else 0 (bench/estimators.py).

form="closed" evaluates the sum with the Dirichlet-kernel identity
    sum_{i=0..n} cos((2i+1) a) = sin(2 (n+1) a) / (2 sin a),    a = w x,
whose limit at sin a = 0 (x = 0 inside |x| <= 1, since w |x| < pi) is n+1; its cost is two sines
whatever n. form="sum" is the term-by-term loop, the definition the paper writes. It cannot loop a
data-dependent number of times inside a graph, so it unrolls `n_max + 1` terms (the largest n the
run will set) and masks terms i > n; with a fixed n its cost is exactly n+1 terms.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def closed(x: Tensor, n: Tensor | int, omega: float) -> Tensor:
    """(4w/pi) sin(2(n+1)wx) / (2 sin(wx)), n+1 where sin(wx) = 0, zero for |x| > 1."""
    terms = n + 1
    s = torch.sin(omega * x)
    # twice the series; where sin(wx) = 0 the quotient is 0/0 but where() takes the limit 2(n+1)
    twice = torch.where(s == 0, 2 * terms, torch.sin((2 * omega) * terms * x) / s)
    return torch.where(x.abs() <= 1, (2 * omega / math.pi) * twice, 0.0)


def term_sum(x: Tensor, n: Tensor | int, omega: float, n_max: int) -> Tensor:
    """(4w/pi) sum_{i=0..n} cos((2i+1)wx), zero for |x| > 1; unrolled to n_max+1 terms, i > n masked."""
    total = torch.zeros_like(x)
    for i in range(n_max + 1):
        total = total + torch.cos(((2 * i + 1) * omega) * x) * (i <= n)
    return torch.where(x.abs() <= 1, (4 * omega / math.pi) * total, 0.0)


def pseudo_grad(x: Tensor, values: Tensor, omega: float, form: str, n_max: int | None) -> Tensor:
    n = values[0]  # values = (n,)
    return closed(x, n, omega) if form == "closed" else term_sum(x, n, omega, n_max)
