"""What a study's full table says beyond the decision table, generated from the numbers: the spread
over n, the noise module's effect, and the same spec in the two backends. Every comparison is a
difference over seeds with its 95% interval (stats.py); with one seed it is unranked, not resolved.
"""
from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from bench.report.aggregate import started_from
from bench.report.frame import cell_key
from bench.report.stats import METHOD, UNRANKED, difference


def _delta(a: pd.Series, b: pd.Series, paired: bool = True) -> str:
    """b - a in percentage points, with whether it is resolved."""
    diff = difference(a["seed_top1"], b["seed_top1"], paired)
    if diff is None:
        return f"{b['top1_mean'] - a['top1_mean']:+.2f} pp ({UNRANKED})"
    return f"{diff.describe()} ({'resolved' if diff.resolved else 'not resolved'}, {diff.kind} over {diff.seeds})"


def _pairs(agg: pd.DataFrame, field: str) -> Iterator[tuple[pd.Series, pd.Series]]:
    """Pairs of cells of the same profile and device that differ only in `field`."""
    keyed = agg.assign(pair=[cell_key(spec, field) for spec in agg["spec"]])
    for _, group in keyed.groupby(["profile", "device", "pair"], sort=False):
        if len(group) == 2:
            yield group.iloc[0], group.iloc[1]


def _ordered_pairs(agg: pd.DataFrame, field: str, is_second) -> Iterator[tuple[pd.Series, pd.Series]]:
    """The pairs of `_pairs` with the cell for which `is_second` holds second (one side only)."""
    for a, b in _pairs(agg, field):
        if is_second(a) != is_second(b):
            yield (b, a) if is_second(a) else (a, b)


def reading(agg: pd.DataFrame) -> list[str]:
    """Bullet lines for one study's aggregated cells."""
    done = agg[agg["seeds"] > 0]
    if done.empty:
        return ["No cell of this study has finished yet."]
    lines = []
    for (profile, backend, device, precision), group in done.groupby(["profile", "backend", "device", "precision"],
                                                                     sort=False):
        lines.extend(_over_n(group, f"{backend} on {device}, {precision}, profile {profile}"))
    lines += _compared("Noise module (with minus without)",
                       [(off, on, True) for off, on in _pairs(done, "noise.enabled")
                        if on["noise"] and not off["noise"]])
    lines += _compared("Starting from a checkpoint (init.from; from it minus from scratch, unpaired: the seed no longer "
                       "sets the initial weights on one side)",
                       [(fresh, started, False) for fresh, started in _ordered_pairs(done, "init.from",
                                                                                   lambda c: started_from(c) is not None)])
    lines += _compared("Between backends (same spec; a seed starts each framework differently, so unpaired)",
                       [(a, b, False) for a, b in _pairs(done, "backend")])
    lines.append(METHOD)
    return lines


def _compared(what: str, pairs: list[tuple[pd.Series, pd.Series, bool]]) -> list[str]:
    """One line of the ranked pairs; the unranked ones (a side with one seed) only counted."""
    ranked = [f"{b['label']} vs {a['label']}: {_delta(a, b, paired)}" for a, b, paired in pairs
              if difference(a["seed_top1"], b["seed_top1"], paired) is not None]
    unranked = len(pairs) - len(ranked)
    lines = [f"{what}: " + "; ".join(ranked) + "."] if ranked else []
    if unranked:
        lines.append(f"{what}: {unranked} pair(s) with one seed on a side: {UNRANKED}.")
    return lines


def _over_n(group: pd.DataFrame, where: str) -> list[str]:
    lines = []
    fixed = group[(group["estimator"] == "fda") & group["n_end"].isna()]
    for noise, rows in fixed.groupby("noise", sort=False):
        if rows["n"].nunique() < 2:
            continue
        best, worst = rows.loc[rows["top1_mean"].idxmax()], rows.loc[rows["top1_mean"].idxmin()]
        lines.append(f"{where}, FDA with fixed n {'with' if noise else 'without'} noise: over n = "
                     f"{', '.join(str(n) for n in sorted(rows['n']))} the best is n = {best['n']} and the worst "
                     f"n = {worst['n']}: {_delta(worst, best)}.")
    return lines
