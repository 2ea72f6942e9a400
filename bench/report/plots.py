"""PNG plots of a study against the number of Fourier terms n (matplotlib, Agg: no display needed).

Drawn for each profile of a study that has FDA cells with a fixed n at two or more values: top-1
against n and median step time against n, one line per backend (and device, precision) with and
without the noise module, error bars the uncertainty of aggregate.py, the clipped STE dashed.
"""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from bench import store  # noqa: E402
from bench.report.aggregate import is_clipped_ste  # noqa: E402

LINE = ["backend", "device", "precision"]
PANELS = {"top1": ("top-1 accuracy (%)", "top1_mean", "top1_unc"),
          "step": ("median step time (ms)", "step_ms_mean", "step_ms_std")}


def plot_study(agg: pd.DataFrame, study: str, out_dir: Path) -> list[Path]:
    paths = []
    done = agg[agg["runs"] > 0]
    for profile, rows in done.groupby("profile", sort=False):
        fixed = rows[(rows["estimator"] == "fda") & rows["n_end"].isna()]
        if fixed["n"].nunique() < 2:
            continue
        for name, (ylabel, mean, err) in PANELS.items():
            if fixed[mean].notna().sum() < 2:
                continue
            path = out_dir / f"{study}-{profile}-{name}-vs-n.png"
            _plot(fixed, rows[is_clipped_ste(rows)], mean, err, ylabel, f"{study} ({profile})", path)
            paths.append(path)
    return paths


def _plot(fixed: pd.DataFrame, ste: pd.DataFrame, mean: str, err: str, ylabel: str, title: str,
          path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for line, rows in fixed.groupby(LINE + ["noise"], sort=False):
        rows = rows.sort_values("n")
        label = " ".join(str(v) for v in line[:-1]) + (" + noise" if line[-1] else "")
        ax.errorbar(rows["n"].astype(float), rows[mean], yerr=rows[err].fillna(0), marker="o", capsize=3, label=label)
    for line, rows in ste.groupby(LINE, sort=False):
        if pd.notna(rows[mean].iloc[0]):
            ax.axhline(rows[mean].iloc[0], linestyle="--", linewidth=1, color="grey")
            ax.annotate(f"STE {' '.join(line)}", (float(fixed["n"].min()), rows[mean].iloc[0]), fontsize=7,
                        color="grey", va="bottom")
    ax.set_xscale("log", base=2)
    ax.set_xticks([float(n) for n in sorted(fixed["n"].unique())], [str(n) for n in sorted(fixed["n"].unique())])
    ax.set_xlabel("Fourier terms n (fixed)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120)
    plt.close(fig)
    store.atomic_write_bytes(path, png.getvalue())
