"""The statistics behind every ranking in the report: differences of top-1 over seeds.

A seed fixes a run's initialisation and data order, shared by every variant of a study, so two
cells run with the same seeds are compared seed by seed (paired): the difference's 95% confidence
interval is mean +- t(0.975, k-1) * sd / sqrt(k) over the k common seeds. Cells without common
seeds fall back to Welch's interval. A difference is resolved when its interval excludes zero.
With fewer than two seeds on a side there is no interval: the cells are unranked, whatever the gap.
Repeated records of one seed (the same spec run twice) are averaged into that seed first; they are
not extra seeds.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats as scipy_stats

CONFIDENCE = 0.95
UNRANKED = "one seed: unranked"  # what a comparison says when a side has fewer than two seeds
METHOD = ("Differences are means over seeds with a 95% confidence interval: paired by seed (t over the common "
          "seeds: same initialisation and data order in both cells), else Welch's; resolved when the interval "
          "excludes zero. With one seed a cell is unranked, whatever the gap.")


@dataclass(frozen=True)
class Difference:
    mean: float  # b - a, in the values' unit
    half_width: float  # of the 95% interval
    seeds: int  # common seeds (paired) or the smaller count (Welch)
    kind: str  # "paired" or "Welch"

    @property
    def resolved(self) -> bool:
        return abs(self.mean) > self.half_width

    @property
    def direction(self) -> int:
        """+1 when resolved above zero, -1 below, 0 not resolved."""
        return (1 if self.mean > 0 else -1) if self.resolved else 0

    def describe(self, unit: str = " pp") -> str:
        return f"{self.mean:+.2f} ± {self.half_width:.2f}{unit}"


def _t(dof: float) -> float:
    return float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, dof))


def difference(a: dict[int, float], b: dict[int, float], paired: bool = True) -> Difference | None:
    """b - a from per-seed values; None when either side has fewer than two seeds. paired=False
    where a seed does not mean the same start on both sides (two frameworks initialise apart)."""
    if len(a) < 2 or len(b) < 2:
        return None
    common = sorted(set(a) & set(b))
    if paired and len(common) >= 2:
        deltas = [b[s] - a[s] for s in common]
        sd = statistics.stdev(deltas)
        return Difference(statistics.fmean(deltas), _t(len(common) - 1) * sd / math.sqrt(len(common)),
                          len(common), "paired")
    va, vb = statistics.variance(a.values()) / len(a), statistics.variance(b.values()) / len(b)
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else 1.0
    return Difference(statistics.fmean(b.values()) - statistics.fmean(a.values()), _t(dof) * se,
                      min(len(a), len(b)), "Welch")


def mean_interval(values: list[float]) -> float:
    """Half-width of the 95% interval of the mean of `values` (nan with fewer than two)."""
    if len(values) < 2:
        return math.nan
    return _t(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
