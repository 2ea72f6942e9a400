"""PNG plots of a study's cells (matplotlib, Agg: no display needed); per-epoch curves: curves.py.

- Against the number of Fourier terms n, for each profile with FDA cells at two or more fixed n:
  top-1 (error bars: 95% interval of the mean over seeds) and median step time (error bars: sd over
  seeds), one line per backend (and device, precision) with and without the noise module, the
  clipped STE dashed.
- The decision plot, one panel per backend: final top-1 (mean, 95% interval over seeds) against the
  step time relative to the clipped STE from the benchmark of the same device (step_cost.py).
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
from bench.report.step_cost import step_cost  # noqa: E402

LINE = ["backend", "device", "precision"]
PANELS = {"top1": ("top-1 accuracy (%), bars: 95% interval over seeds", "top1_mean", "top1_ci95"),
          "step": ("median step time (ms), bars: sd over seeds", "step_ms_mean", "step_ms_std")}


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
    save_png(fig, path)


def plot_decision(agg: pd.DataFrame, bench: pd.DataFrame, study: str, out_dir: Path) -> list[Path]:
    paths = []
    for (profile, device, precision), cells in agg[agg["seeds"] > 0].groupby(["profile", "device", "precision"],
                                                                            sort=False):
        costs = [step_cost(bench, device, c["backend"], precision, c["spec"]) for _, c in cells.iterrows()]
        cells = cells.assign(cost=[c.ratio if c else float("nan") for c in costs],
                             stale=[bool(c and c.stale) for c in costs])
        cells = cells[cells["cost"].notna()]
        if cells.empty:
            continue
        backends = list(dict.fromkeys(cells["backend"]))
        fig, axes = plt.subplots(1, len(backends), figsize=(5.6 * len(backends), 4.2), squeeze=False)
        for ax, backend in zip(axes[0], backends):
            mine = cells[cells["backend"] == backend]
            ax.errorbar(mine["cost"], mine["top1_mean"], yerr=mine["top1_ci95"].fillna(0), fmt="o", capsize=3)
            for _, c in mine.iterrows():
                ax.annotate(c["variant"] + (" (stale cost)" if c["stale"] else ""), (c["cost"], c["top1_mean"]),
                            fontsize=7, xytext=(4, 4), textcoords="offset points")
            ax.set_xlabel("step time × clipped STE (benchmark, same device)")
            ax.set_ylabel("final top-1 (%), bars: 95% interval over seeds")
            ax.set_title(f"{backend}", fontsize=9)
            ax.grid(alpha=0.3)
        fig.suptitle(f"{study} ({profile}, {device}, {precision}): accuracy against cost; up and left is better",
                     fontsize=9)
        fig.tight_layout()
        path = out_dir / f"{study}-{profile}-{device}-{precision}-decision.png"
        save_png(fig, path)
        paths.append(path)
    return paths


def save_png(fig: plt.Figure, path: Path) -> None:
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    store.atomic_write_bytes(path, png.getvalue())
