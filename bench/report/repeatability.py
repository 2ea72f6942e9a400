"""Does the same spec with the same seed give the same result? From every spec the store holds two
or more finished records of (same seed, same resolved device), grouped by backend and kernel
threads: MindSpore's CPU kernels repeat only with one thread (backends/mindspore/backend.py)."""
from __future__ import annotations

import pandas as pd

from bench.report.markdown import table


def repeatability_section(frame: pd.DataFrame) -> str:
    done = frame[frame["status"] == "finished"]
    repeated = done.groupby(["key", "seed", "device"]).filter(lambda g: len(g) > 1)
    if repeated.empty:
        return ""
    rows, verdicts = [], []
    for (backend, threads), runs in repeated.groupby(["backend", repeated["threads"].fillna("?")], sort=True):
        spreads = runs.groupby(["key", "seed", "device"])["top1"].agg(lambda v: v.max() - v.min())
        identical = int(runs.groupby(["key", "seed", "device"])["val_loss"].agg(lambda v: v.nunique() == 1).sum())
        rows.append([backend, threads, len(spreads), identical, f"{spreads.max():.2f}", f"{spreads.median():.2f}"])
        verdicts.append(f"{backend}, {threads} kernel thread(s): "
                        + ("every repeat identical." if identical == len(spreads) else
                           f"{len(spreads) - identical} of {len(spreads)} repeats differ, by up to "
                           f"{spreads.max():.2f} pp top-1: not repeatable with these settings."))
    return "\n".join([
        "## Run-to-run repeatability", "",
        "Specs run more than once with the same seed on the same device (e.g. a cell shared by two studies), by "
        "backend and kernel threads of the runs. Identical: the same validation loss to the last bit.", "",
        table(["backend", "kernel threads", "repeated (spec, seed)", "identical", "max top-1 spread (pp)",
               "median spread (pp)"], rows)] + [f"- {v}" for v in verdicts] + [""])
