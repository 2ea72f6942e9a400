"""Over seeds: one row per cell (same spec but the seed, same resolved device, whichever studies
ran it: a spec in two studies is one cell, every record of it counted).

Only finished runs enter the numbers; diverged, failed and other runs appear in the cell's status.
Records of the same seed (the spec run again) are averaged into that seed: seeds, not records, are
the unit of the statistics (stats.py); how far such repeats disagree is kept as `repeat_spread`.
Metrics (final and best-epoch top-1, top-5, validation loss, median step ms) are means over seeds
with their standard deviation (>= 2 seeds) and, for top-1, the 95% interval of the mean. Step time
is also given relative to the clipped STE of the same profile, backend, device and precision.
"""
from __future__ import annotations

import math

import pandas as pd

from bench.report.frame import ESTIMATOR_ORDER
from bench.report.stats import mean_interval
from bench.spec import PRECISIONS

GROUP = ["profile", "device", "key"]
CELL = ["profile", "label", "variant", "backend", "device", "precision", "network", "binarize", "init", "estimator",
        "clip", "n", "n_end", "noise",
        "epochs", "batch_size", "n_test", "key", "spec"]
METRICS = ["top1", "top5", "val_loss", "best_top1", "step_ms"]
NOT_RUN = ("skipped", "unsupported")  # statuses whose reason a table shows beside the cell
# what a relative step time holds fixed (the network too: VGG-small's step is ~15x ResNet-20's)
SAME_COST = ["profile", "network", "backend", "device", "precision"]
PRECISION_ORDER = {name: i for i, name in enumerate(PRECISIONS)}


def by_cell(frame: pd.DataFrame) -> pd.DataFrame:
    """Aggregate the runs of studies (records without a study are left out)."""
    frame = frame[frame["study"].notna()]
    rows = []
    for _, group in frame.groupby(GROUP, sort=False):
        done = group[group["status"] == "finished"]
        row = group.iloc[0][CELL].to_dict()
        row["studies"] = sorted(group["study"].unique())
        row["runs"] = len(done)
        counts = group["status"].value_counts()
        row["status"] = ", ".join(f"{count} {status}" for status, count in counts.items())
        row["not_run_reason"] = "; ".join(sorted({r for r in group.loc[group["status"].isin(NOT_RUN), "reason"] if r}))
        starts = sorted(done["init_sha256"].dropna().unique())
        if len(starts) > 1:  # seeds of this cell began from different files behind one init.from
            row["status"] += (f" (its runs started from {len(starts)} different checkpoints, sha256 "
                              + ", ".join(s[:12] for s in starts) + ": not comparable seed by seed)")
        shared = int(done["shared"].sum())
        if shared:
            row["status"] += f" ({shared} timed while sharing the device or its cores: step time left out)"
        per_seed = done.groupby("seed")[["top1", "top5", "val_loss", "best_top1"]].mean()
        row["seed_top1"] = per_seed["top1"].dropna().to_dict()
        row["seeds"] = len(row["seed_top1"])
        spreads = done.groupby("seed")["top1"].agg(lambda v: v.max() - v.min() if len(v) > 1 else math.nan)
        row["repeats"] = len(done) - len(per_seed)
        row["repeat_spread"] = spreads.max() if spreads.notna().any() else math.nan
        for metric in METRICS:
            source = done[metric] if metric == "step_ms" else per_seed[metric]
            values = pd.to_numeric(source, errors="coerce").dropna()
            row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) >= 2 else math.nan
        row["top1_ci95"] = mean_interval(list(row["seed_top1"].values()))
        row["step_stale"] = bool(done.loc[done["step_ms"].notna(), "step_stale"].any())
        rows.append(row)
    agg = pd.DataFrame(rows, columns=[*CELL, "studies", "runs", "seeds", "seed_top1", "repeats", "repeat_spread",
                                      "status", "not_run_reason", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std")), "top1_ci95",
                                      "step_stale"])
    agg = agg.astype({"n": "Int64", "n_end": "Int64"})  # None where the estimator has no n (STE)
    agg["step_vs_ste"] = _relative_step(agg)
    return _ordered(agg)


def of_study(agg: pd.DataFrame, study: str) -> pd.DataFrame:
    """The cells `study` ran (a cell another study ran too is the same row in both)."""
    return agg[agg["studies"].map(lambda studies: study in studies)]


def started_from(cell: pd.Series) -> str | None:
    """The init.from a cell started from, None from scratch."""
    return cell["init"] if isinstance(cell["init"], str) and cell["init"] else None


def is_clipped_ste(agg: pd.DataFrame) -> pd.Series:
    """The reference estimator of step times and of the reading: STE clipped at |x| <= 1, no noise
    (binarized: an FP twin has no estimator)."""
    return (agg["estimator"] == "ste") & (agg["clip"] == 1.0) & ~agg["noise"].astype(bool)


def _relative_step(agg: pd.DataFrame) -> pd.Series:
    base = agg[is_clipped_ste(agg)].groupby(SAME_COST)["step_ms_mean"].first()
    if base.empty:
        return pd.Series(math.nan, index=agg.index)
    reference = agg.join(base.rename("ste_ms"), on=SAME_COST)["ste_ms"]
    return agg["step_ms_mean"] / reference


def _ordered(agg: pd.DataFrame) -> pd.DataFrame:
    keys = pd.DataFrame({
        "profile": agg["profile"], "network": agg["network"], "backend": agg["backend"], "device": agg["device"],
        "precision": agg["precision"].map(PRECISION_ORDER), "fp": ~agg["binarize"].astype(bool),
        "init": agg["init"].notna(), "start": agg["init"].fillna(""),
        "estimator": agg["estimator"].map(ESTIMATOR_ORDER),
        "clip": agg["clip"].fillna(-1.0), "schedule": agg["n_end"].notna(), "n": agg["n"],
        "noise": agg["noise"].astype(bool),
    })
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return agg.loc[order].reset_index(drop=True)
