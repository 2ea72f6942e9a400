"""Over seeds: one row per cell of a study (same spec but the seed, same resolved device).

Metrics (top-1 and top-5 in %, validation loss, median step ms) are the mean, the standard
deviation (with >= 2 seeds) and the count of the finished runs; a cell's other runs (failed,
nonfinite, ...) appear in its status. The uncertainty of top-1 used by the reading is the seed
standard deviation with >= 2 seeds, else the binomial standard error sqrt(p(1-p)/N_test) of the
single run. Step time is also given relative to the clipped STE of the same study, profile,
backend, device and precision.
"""
from __future__ import annotations

import math

import pandas as pd

from bench.report.frame import ESTIMATOR_ORDER
from bench.spec import PRECISIONS

GROUP = ["study", "profile", "device", "key"]
CELL = ["study", "profile", "label", "backend", "device", "precision", "estimator", "clip", "n", "n_end", "noise",
        "epochs", "batch_size", "n_test", "key", "spec"]
METRICS = ["top1", "top5", "val_loss", "step_ms"]
SAME_COST = ["study", "profile", "backend", "device", "precision"]  # what a relative step time holds fixed
PRECISION_ORDER = {name: i for i, name in enumerate(PRECISIONS)}


def by_cell(frame: pd.DataFrame) -> pd.DataFrame:
    """Aggregate the runs of studies (records without a study are left out)."""
    frame = frame[frame["study"].notna()]
    rows = []
    for _, group in frame.groupby(GROUP, sort=False):
        done = group[group["status"] == "finished"]
        row = group.iloc[0][CELL].to_dict()
        row["runs"] = len(done)
        counts = group["status"].value_counts()
        row["status"] = ", ".join(f"{count} {status}" for status, count in counts.items())
        shared = int(done["shared"].sum())
        if shared:
            row["status"] += f" ({shared} timed while sharing the device: step time left out)"
        for metric in METRICS:
            values = pd.to_numeric(done[metric], errors="coerce").dropna()
            row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
            row[f"{metric}_std"] = values.std(ddof=1) if len(values) >= 2 else math.nan
        row["top1_unc"], row["unc_kind"] = _uncertainty(row)
        rows.append(row)
    agg = pd.DataFrame(rows, columns=[*CELL, "runs", "status", *(f"{m}_{s}" for m in METRICS for s in ("mean", "std")),
                                      "top1_unc", "unc_kind"])
    agg = agg.astype({"n": "Int64", "n_end": "Int64"})  # None where the estimator has no n (STE)
    agg["step_vs_ste"] = _relative_step(agg)
    return _ordered(agg)


def _uncertainty(row: dict) -> tuple[float, str]:
    if row["runs"] >= 2:
        return row["top1_std"], "seed std"
    if row["runs"] == 1 and not math.isnan(row["top1_mean"]):
        p = row["top1_mean"] / 100
        return 100 * math.sqrt(p * (1 - p) / row["n_test"]), "binomial SE"
    return math.nan, ""


def is_clipped_ste(agg: pd.DataFrame) -> pd.Series:
    """The reference estimator of step times and of the reading: STE clipped at |x| <= 1, no noise."""
    return (agg["estimator"] == "ste") & (agg["clip"] == 1.0) & ~agg["noise"].astype(bool)


def _relative_step(agg: pd.DataFrame) -> pd.Series:
    base = agg[is_clipped_ste(agg)].groupby(SAME_COST)["step_ms_mean"].first()
    if base.empty:
        return pd.Series(math.nan, index=agg.index)
    reference = agg.join(base.rename("ste_ms"), on=SAME_COST)["ste_ms"]
    return agg["step_ms_mean"] / reference


def _ordered(agg: pd.DataFrame) -> pd.DataFrame:
    keys = pd.DataFrame({
        "study": agg["study"], "profile": agg["profile"], "backend": agg["backend"], "device": agg["device"],
        "precision": agg["precision"].map(PRECISION_ORDER), "estimator": agg["estimator"].map(ESTIMATOR_ORDER),
        "clip": agg["clip"].fillna(-1.0), "schedule": agg["n_end"].notna(), "n": agg["n"],
        "noise": agg["noise"].astype(bool),
    })
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return agg.loc[order].reset_index(drop=True)
