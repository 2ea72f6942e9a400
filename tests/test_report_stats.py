"""The statistics behind every ranking: paired and Welch intervals against scipy's own tests."""
from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from bench.report.stats import difference, mean_interval


def test_paired_interval_agrees_with_scipys_paired_t_test():
    a, b = {0: 20.0, 1: 21.0, 2: 22.5}, {0: 22.0, 1: 22.4, 2: 24.9}
    diff = difference(a, b)
    assert diff.kind == "paired" and diff.seeds == 3
    assert diff.mean == pytest.approx(1.9333, abs=1e-4)
    p = scipy_stats.ttest_rel(list(b.values()), list(a.values())).pvalue
    assert diff.resolved == (p < 0.05)
    # at the interval's edge the t test's p value is exactly 0.05
    t = diff.mean / (diff.half_width / scipy_stats.t.ppf(0.975, 2))
    assert 2 * scipy_stats.t.sf(abs(t), 2) == pytest.approx(p)


def test_welch_without_common_seeds():
    a, b = {0: 20.0, 1: 21.0, 2: 22.0}, {3: 30.0, 4: 31.0, 5: 29.0}
    diff = difference(a, b)
    assert diff.kind == "Welch" and diff.resolved
    p = scipy_stats.ttest_ind(list(b.values()), list(a.values()), equal_var=False).pvalue
    assert p < 0.05
    assert difference(a, b, paired=False).kind == "Welch"


def test_one_seed_is_unranked_however_large_the_gap():
    assert difference({0: 10.0}, {0: 90.0}) is None
    assert math.isnan(mean_interval([50.0]))


def test_a_gap_inside_the_seed_noise_is_not_resolved():
    diff = difference({0: 20.0, 1: 25.0, 2: 18.0}, {0: 21.0, 1: 22.0, 2: 21.0})
    assert not diff.resolved
