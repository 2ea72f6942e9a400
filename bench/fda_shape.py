"""Two facts about FDA's pseudo-gradient that explain when its training diverges, computed from the
NumPy reference (bench/estimators.py), not asserted:

- its peak: g(0) = 4 w (n+1) / pi (every cosine is 1 at x = 0), so for w = 0.1 the backward
  amplifies gradients (g(0) > 1, where STE passes them at 1) from n = 7 on, and more with every term;
- its sign: the closed form sin(2(n+1) w x) / (2 sin(w x)) first crosses zero at
  x = pi / (2 (n+1) w), inside the clip |x| <= 1 from n = 15 on (for w = 0.1): there the
  pseudo-gradient points against the sign function's slope.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.estimators import fda_reference

GRID = np.linspace(0.0, 1.0, 100_001)  # |x| <= 1, where FDA's pseudo-gradient is non-zero
N_SEARCHED = 1024


def peak(n: int, omega: float) -> float:
    return float(fda_reference(np.zeros(1), n, omega)[0])


def first_negative(n: int, omega: float) -> float | None:
    """The smallest x in [0, 1] where g(x) < 0, or None."""
    below = np.flatnonzero(fda_reference(GRID, n, omega) < 0)
    return float(GRID[below[0]]) if below.size else None


@dataclass(frozen=True)
class Facts:
    omega: float
    amplifies_from: int | None  # the smallest n with g(0) > 1
    negative_from: int | None  # the smallest n with g < 0 somewhere in |x| <= 1

    def describe(self) -> str:
        w = self.omega
        parts = [f"with omega = {w:g}, FDA's pseudo-gradient peaks at x = 0 with g(0) = 4 omega (n+1) / pi"]
        if self.amplifies_from is not None:
            n = self.amplifies_from
            parts.append(f"above 1 (it amplifies the gradient where STE passes it at 1) from n = {n} on "
                         f"(g(0) = {peak(n, w):.2f} at n = {n}, {peak(32, w):.2f} at n = 32)")
        if self.negative_from is not None:
            n = self.negative_from
            parts.append(f"it turns negative inside |x| <= 1 from n = {n} on (first at |x| = "
                         f"{first_negative(n, w):.3f} for n = {n}, {first_negative(32, w):.3f} for n = 32), pushing "
                         "latent values against the sign function's slope")
        return "; ".join(parts) + " (computed from the NumPy reference, bench/fda_shape.py)."


def facts(omega: float = 0.1) -> Facts:
    amplifies = next((n for n in range(N_SEARCHED) if peak(n, omega) > 1.0), None)
    negative = next((n for n in range(N_SEARCHED) if first_negative(n, omega) is not None), None)
    return Facts(omega, amplifies, negative)
