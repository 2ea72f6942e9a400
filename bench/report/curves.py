"""Per-epoch curves of a study: the long CSV of every run's history, and the plot of test top-1 and
training loss per epoch, mean over seeds with a band for their spread (min to max), one line per
variant and one panel row per backend (matplotlib, Agg).

Only finished runs are drawn (diverged ones are listed in the summary instead); the CSV holds every
run with its status, so nothing is hidden from it.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from bench.metrics import TOP1, TOP5, VALIDATION_LOSS
from bench.report.plots import save_png

HISTORY_COLUMNS = ["study", "profile", "backend", "device", "precision", "variant", "seed", "run_id", "status",
                   "epoch", "n", "lr_last", "alpha_last", "train_loss", "train_acc", "test_loss", "test_top1",
                   "test_top5", "epoch_s"]
_RENAMED = {VALIDATION_LOSS: "test_loss", TOP1: "test_top1", TOP5: "test_top5", "wall_s": "epoch_s"}


def history_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run and epoch (1-based), accuracies as fractions as the records keep them."""
    rows = []
    for _, run in runs.iterrows():
        for entry in run["history"]:
            row = {k: run[k] for k in ("study", "profile", "backend", "device", "precision", "variant", "seed",
                                       "run_id", "status")}
            row.update({_RENAMED.get(k, k): v for k, v in entry.items() if _RENAMED.get(k, k) in HISTORY_COLUMNS})
            row["epoch"] = entry["epoch"] + 1
            rows.append(row)
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def plot_curves(history: pd.DataFrame, study: str, out_dir: Path) -> list[Path]:
    paths = []
    for (profile, device, precision), rows in history.groupby(["profile", "device", "precision"], sort=False):
        rows = rows[rows["status"] == "finished"]
        if rows.empty or rows["epoch"].max() < 2:
            continue
        path = out_dir / f"{study}-{profile}-{device}-{precision}-curves.png"
        _plot(rows, f"{study} ({profile}, {device}, {precision}): mean over seeds, band = min to max", path)
        paths.append(path)
    return paths


def _plot(rows: pd.DataFrame, title: str, path: Path) -> None:
    backends = list(dict.fromkeys(rows["backend"]))
    fig, axes = plt.subplots(len(backends), 2, figsize=(11, 3.6 * len(backends)), squeeze=False)
    for (top, loss), backend in zip(axes, backends):
        mine = rows[rows["backend"] == backend]
        for variant, runs in mine.groupby("variant", sort=False):
            for ax, column, scale in ((top, "test_top1", 100.0), (loss, "train_loss", 1.0)):
                per_epoch = runs.groupby("epoch")[column].agg(["mean", "min", "max"]) * scale
                line = ax.plot(per_epoch.index, per_epoch["mean"], marker="o", markersize=3,
                               label=f"{variant} ({runs['seed'].nunique()} seeds)")[0]
                ax.fill_between(per_epoch.index, per_epoch["min"], per_epoch["max"], alpha=0.15,
                                color=line.get_color())
        top.set_ylabel(f"{backend}: test top-1 (%)")
        loss.set_ylabel(f"{backend}: training loss")
        for ax in (top, loss):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        top.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_png(fig, path)
