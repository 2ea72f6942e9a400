"""A short reading of a study's numbers, generated from them, saying what they cannot separate.

A difference in top-1 counts as resolved when it exceeds twice the larger uncertainty of the two
cells (aggregate.py: seed standard deviation with >= 2 seeds, else the binomial standard error of a
single run on N_test images). Below that, the text says the difference is not resolved rather than
ranking the cells.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import pandas as pd

from bench.data.dataset import split_sizes
from bench.report.aggregate import is_clipped_ste
from bench.report.frame import cell_key
from bench.spec import build_spec

RESOLUTION = 2.0  # times the larger of the two cells' uncertainties
METHOD = ("A top-1 difference counts as resolved when it exceeds twice the larger uncertainty of the two "
          "cells: the standard deviation over seeds with two or more seeds, else the binomial standard "
          "error sqrt(p(1-p)/N_test) of a single run.")


SINGLE_SEED = ("Cells run with one seed: there, \"resolved\" means beyond the test-set sampling noise only. The "
               "seed-to-seed spread of training itself, which such a run does not measure, is often larger on short "
               "budgets; rerun with SEEDS=0,1,2 before ranking estimators on these numbers.")


def threshold(a: pd.Series, b: pd.Series) -> float:
    return RESOLUTION * max(a["top1_unc"], b["top1_unc"])


def _delta(a: pd.Series, b: pd.Series) -> str:
    """b - a in percentage points, with whether it is resolved."""
    diff, limit = b["top1_mean"] - a["top1_mean"], threshold(a, b)
    verdict = "resolved" if abs(diff) > limit else "not resolved"
    return f"{diff:+.2f} pp ({verdict}; resolution {limit:.2f} pp)"


def _pairs(agg: pd.DataFrame, field: str) -> Iterator[tuple[pd.Series, pd.Series]]:
    """Pairs of finished cells of the same profile and device that differ only in `field`."""
    keyed = agg.assign(pair=[cell_key(spec, field) for spec in agg["spec"]])
    for _, group in keyed.groupby(["profile", "device", "pair"], sort=False):
        if len(group) == 2:
            yield group.iloc[0], group.iloc[1]


def reading(agg: pd.DataFrame) -> list[str]:
    """Bullet lines for one study's aggregated cells."""
    done = agg[agg["runs"] > 0]
    if done.empty:
        return ["No cell of this study has finished yet."]
    lines = [_budget(profile, group) for profile, group in done.groupby("profile", sort=False)]
    for (profile, backend, device, precision), group in done.groupby(["profile", "backend", "device", "precision"],
                                                                     sort=False):
        where = f"{backend} on {device}, {precision}, profile {profile}"
        lines.extend(_against_ste(group, where))
        lines.extend(_over_n(group, where))
        lines.extend(_step_cost(group, where))
    noise = [f"{on['label']} vs {off['label']}: {_delta(off, on)}"
             for off, on in _pairs(done, "noise.enabled") if on["noise"] and not off["noise"]]
    if noise:
        lines.append("Noise module (with minus without): " + "; ".join(noise) + ".")
    both = [f"{a['label']} -> {b['label']}: {_delta(a, b)}" for a, b in _pairs(done, "backend")]
    if both:
        lines.append("Between backends (same spec): " + "; ".join(both) + ".")
    lines.append(METHOD)
    if (done["runs"] < 2).any():
        lines.append(SINGLE_SEED)
    return lines


def _budget(profile: str, group: pd.DataFrame) -> str:
    spec = build_spec(group.iloc[0]["spec"])
    n_train, n_test = split_sizes(spec.data.subset, spec.data.test_subset)
    text = (f"Profile {profile}: {spec.train.epochs} epoch(s) on {n_train:,} training images, tested on "
            f"{n_test:,}, up to {int(group['runs'].max())} seed(s) per cell.")
    if spec.train.epochs < 400 or n_train < 50000:
        text += (" At this budget the numbers compare the variants with each other only; they cannot be set "
                 "against the paper's accuracies (400 epochs, full data).")
    return text


def _against_ste(group: pd.DataFrame, where: str) -> list[str]:
    base = group[is_clipped_ste(group)]
    if base.empty:
        return []
    ste = base.iloc[0]
    above, below, unresolved = [], [], []
    for _, row in group.drop(index=base.index).iterrows():
        diff = row["top1_mean"] - ste["top1_mean"]
        if abs(diff) > threshold(ste, row):
            (above if diff > 0 else below).append(f"{row['label']} ({diff:+.2f} pp)")
        else:
            unresolved.append(abs(diff))
    text = f"{where}: clipped STE reaches {ste['top1_mean']:.2f}% top-1."
    if above:
        text += " Resolved above it: " + ", ".join(above) + "."
    if below:
        text += " Resolved below it: " + ", ".join(below) + "."
    if unresolved:
        text += (f" {len(unresolved)} cell(s) differ from it by at most {max(unresolved):.2f} pp, "
                 "which this study does not resolve.")
    return [text]


def _over_n(group: pd.DataFrame, where: str) -> list[str]:
    lines = []
    fixed = group[(group["estimator"] == "fda") & group["n_end"].isna()]
    for noise, rows in fixed.groupby("noise", sort=False):
        if rows["n"].nunique() < 2:
            continue
        best, worst = rows.loc[rows["top1_mean"].idxmax()], rows.loc[rows["top1_mean"].idxmin()]
        spread = best["top1_mean"] - worst["top1_mean"]
        verdict = "resolved" if spread > threshold(best, worst) else "not resolved"
        lines.append(f"{where}, FDA with fixed n {'with' if noise else 'without'} noise: top-1 over "
                     f"n = {', '.join(str(n) for n in sorted(rows['n']))} spans {spread:.2f} pp, best at "
                     f"n = {best['n']}, worst at n = {worst['n']} ({verdict}; resolution "
                     f"{threshold(best, worst):.2f} pp).")
    return lines


def _step_cost(group: pd.DataFrame, where: str) -> list[str]:
    timed = group[group["step_vs_ste"].notna()]
    if timed.empty or len(timed) < 2:
        return []
    slow = timed.loc[timed["step_vs_ste"].idxmax()]
    fast = timed.loc[timed["step_vs_ste"].idxmin()]
    if math.isclose(slow["step_vs_ste"], fast["step_vs_ste"]):
        return []
    return [f"{where}: step time ranges from {fast['step_vs_ste']:.2f}x ({fast['label']}) to "
            f"{slow['step_vs_ste']:.2f}x ({slow['label']}) the clipped STE's step."]
