"""`fdabnn summary`: every record in the store -> results/summary.md, its linked files, plots.

summary.md opens with the answer: per study and device, the decision table (decision.py) and the
sentences generated from it, with the decision plot. Then the diverged runs, run-to-run
repeatability, where the numbers were measured (hardware, OS, framework versions, precision,
profile, data source and checksum, git commit, from the records' own environments), each study in
full (table over seeds with final and best-epoch accuracy, plots against n, per-epoch curves,
reading), stand-alone runs, study wall times and the published references. The benchmark and
micro-benchmark tables live in results/benchmarks.md, linked from the summary.

Also written: results/<study>.csv (one row per cell), results/<study>-history.csv (one row per run
and epoch) and, for records that lack them, the runs' TensorBoard curves (bench/store/events.py).
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from bench import store
from bench.report.aggregate import by_cell, of_study
from bench.report.benchmark import benchmark_frame, step_time_section
from bench.report.curves import history_frame, plot_curves
from bench.report.decision import decision_sections
from bench.report.precision import precision_sections
from bench.report.diverged import diverged_section
from bench.report.frame import records_frame
from bench.report.markdown import number, table
from bench.report.micro import micro_section
from bench.report.plots import plot_decision, plot_study
from bench.report.reading import reading
from bench.report.references import references_section
from bench.report.repeatability import repeatability_section
from bench.report.sessions import cluster_section, sessions_section

SUMMARY = "summary.md"
BENCHMARKS = "benchmarks.md"
CSV_COLUMNS = ["profile", "label", "variant", "backend", "device", "precision", "network", "binarize", "init",
               "estimator", "clip", "n", "n_end",
               "noise", "epochs", "batch_size", "n_test", "seeds", "runs", "repeats", "repeat_spread", "status",
               "top1_mean", "top1_std", "top1_ci95", "top5_mean", "top5_std", "val_loss_mean", "val_loss_std",
               "best_top1_mean", "best_top1_std", "step_ms_mean", "step_ms_std", "step_vs_ste"]
TABLE = ["cell", "device", "profile", "seeds", "top-1 % (final)", "top-1 % (best epoch)", "top-5 %", "test loss",
         "step ms", "step / STE", "status"]


def write_summary(root: Path | None = None) -> list[Path]:
    """Write the summary, benchmarks.md, CSVs and plots under `root` (the results store); return
    their paths, the summary first."""
    root = root or store.results_root()
    store.require_writable(root)
    records, unreadable = store.scan(root)
    _backfill_events(records)
    frame, stale = records_frame(records)
    agg = by_cell(frame)
    bench = benchmark_frame(root)
    written: list[Path] = []
    answers, studies = [], []
    for study in sorted(frame["study"].dropna().unique()):
        cells, runs = of_study(agg, study), frame[frame["study"] == study]
        history = history_frame(runs)
        csv, history_csv = root / f"{study}.csv", root / f"{study}-history.csv"
        store.atomic_write_bytes(csv, cells[CSV_COLUMNS].to_csv(index=False, float_format="%.6g").encode())
        store.atomic_write_bytes(history_csv, history.to_csv(index=False, float_format="%.6g").encode())
        decision_plots = plot_decision(cells, bench, study, root)
        plots = plot_study(cells, study, root) + plot_curves(history, study, root)
        written += [csv, history_csv, *decision_plots, *plots]
        answers.append(_answer(study, cells, runs, bench, decision_plots, root))
        studies.append(_study_section(study, cells, runs, csv, history_csv, plots, root))
    benchmarks = root / BENCHMARKS
    store.atomic_write_bytes(benchmarks, _benchmarks_page(bench, root).encode())
    parts = [_title(frame, stale, unreadable, store.bench_scan(root)[1]),
             "## Which estimator, and what does it cost?", "",
             *(answers or ["No study has a finished run yet: run `make ablation-estimators`.", ""]),
             diverged_section(frame), repeatability_section(frame), _environment(frame),
             "## Studies in full\n", *studies, _standalone_section(frame), sessions_section(root),
             cluster_section(root),
             f"## Benchmarks\n\nStep-time and micro-benchmark tables, with the hardware they ran on: "
             f"[{BENCHMARKS}]({BENCHMARKS}).\n", references_section()]
    summary = root / SUMMARY
    store.atomic_write_bytes(summary, "\n".join(p for p in parts if p).encode())
    return [summary, benchmarks, *written]


def _backfill_events(records: list[dict]) -> None:
    """TensorBoard curves for runs recorded before the training loop wrote them."""
    for record in records:
        run_dir = Path(record["run_dir"])
        if record["history"] and not (run_dir / store.EVENTS).exists():
            store.write_events(run_dir, record["history"])


def _benchmarks_page(bench: pd.DataFrame, root: Path) -> str:
    parts = ["# Benchmarks: step time and estimator micro-benchmarks", "",
             f"Generated by `fdabnn summary` on {time.strftime('%Y-%m-%d %H:%M')}; the answer is in "
             f"[{SUMMARY}]({SUMMARY}).", "",
             step_time_section(bench) or "No benchmark record yet: `make bench-cpu` or `make bench-gpu`.\n",
             micro_section(root)]
    return "\n".join(p for p in parts if p)


def _answer(study: str, cells: pd.DataFrame, runs: pd.DataFrame, bench: pd.DataFrame, plots: list[Path],
            root: Path) -> str:
    title = _distinct(runs, "study_title")
    lines = []
    for where, body in [*precision_sections(cells, bench), *decision_sections(cells, bench, study)]:
        lines += [f"### {title} (`{study}`): {where}", "", body]
    lines += [f"![{p.stem}]({p.relative_to(root)})" for p in plots]
    return "\n".join(lines) + "\n"


def _distinct(frame: pd.DataFrame, column: str) -> str:
    values = [str(v) for v in frame[column].dropna().unique()]
    return ", ".join(sorted(values)) if values else "-"


def _title(frame: pd.DataFrame, stale: list[str], unreadable: list[str], unreadable_bench: list[str]) -> str:
    lines = ["# Results: sign-gradient estimators on binarized CIFAR-10 networks (ResNet-20, VGG-small)", "",
             f"Generated by `fdabnn summary` on {time.strftime('%Y-%m-%d %H:%M')} from {len(frame)} run records "
             f"({int(frame['study'].notna().sum())} in studies). Where they ran: "
             "[below](#where-these-numbers-were-measured).", ""]
    if unreadable:
        lines += [f"Not counted: {len(unreadable)} run file(s) that could not be read (torn or not of the record "
                  "schema); `fdabnn ablate` runs such a cell again from its last checkpoint: "
                  + "; ".join(unreadable) + ".", ""]
    if unreadable_bench:
        lines += [f"Not counted: {len(unreadable_bench)} benchmark file(s) under bench/ that could not be used; "
                  "`fdabnn bench` measures such a case again: " + "; ".join(unreadable_bench) + ".", ""]
    if stale:
        lines += [f"Left out: {len(stale)} record(s) whose spec this version no longer accepts: "
                  + ", ".join(stale) + ".", ""]
    if frame.empty:
        lines += ["No run has been recorded yet: run `make ablation-<study>`.", ""]
    return "\n".join(lines)


def _environment(frame: pd.DataFrame) -> str:
    if frame.empty:
        return ""
    cpus = frame.dropna(subset=["cpu_model"]).drop_duplicates(["cpu_model", "cpu_count"])
    hardware = ", ".join(f"{r.cpu_model} ({r.cpu_count} cores)" for r in cpus.itertuples())
    data = frame.dropna(subset=["data_checksum"]).drop_duplicates("data_checksum")
    sources = "; ".join(
        f"`{r.data_path}` ({r.data_format}, sha256 {r.data_checksum})"
        + (" — a lossy JPEG copy of CIFAR-10, not the official release: accuracies are close to, not identical "
           "with, those on the official data" if r.data_lossy else "")
        for r in data.itertuples())
    lines = [
        "## Where these numbers were measured", "",
        f"- Hardware: CPU {hardware or '-'}; GPU {_distinct(frame, 'gpu')}",
        f"- Devices used: {_distinct(frame, 'device')}",
        f"- OS: {_distinct(frame, 'os')}; Python {_distinct(frame, 'python')}",
        f"- Frameworks: {_distinct(frame, 'frameworks')}",
        "- oneDNN ISA on CPU: " + ("; ".join(f"{backend} {_distinct(runs, 'onednn_isa')}" for backend, runs in
                                             frame[frame["device"] == "cpu"].groupby("backend")) or "-"),
        f"- Precision: {_distinct(frame, 'precision')}; profiles: {_distinct(frame, 'profile')}",
        f"- Data: {sources or '-'}",
        f"- Code: git commit {_distinct(frame, 'git_commit')}",
        "",
    ]
    return "\n".join(lines)


def _standalone_section(frame: pd.DataFrame) -> str:
    """Runs of `fdabnn train` outside any study, one row each."""
    runs = frame[frame["study"].isna()]
    if runs.empty:
        return ""
    rows = [[r["label"], r["seed"], r["device"], r["epochs"], r["status"], number(r["top1"], 2), number(r["top5"], 2),
             number(r["step_ms"], 0), f"`{r['run_id']}`"] for _, r in runs.iterrows()]
    return "\n".join(["## Stand-alone runs", "",
                      "Runs of `fdabnn train` that belong to no study (final top-1 and top-5 in %, median step ms).",
                      "", table(["run", "seed", "device", "epochs", "status", "top-1 %", "top-5 %", "step ms",
                                 "run directory"], rows), ""])


def _stale(cell: pd.Series) -> str:
    return " (stale)" if cell["step_stale"] and pd.notna(cell["step_ms_mean"]) else ""


def _study_section(study: str, cells: pd.DataFrame, runs: pd.DataFrame, csv: Path, history_csv: Path,
                   plots: list[Path], root: Path) -> str:
    title, question = _distinct(runs, "study_title"), _distinct(runs, "study_question")
    lines = [f"### Study {study}: {title}", "", question, ""]
    rows = [[
        c["label"], c["device"], c["profile"], c["seeds"], number(c["top1_mean"], 2, c["top1_std"]),
        number(c["best_top1_mean"], 2, c["best_top1_std"]), number(c["top5_mean"], 2, c["top5_std"]),
        number(c["val_loss_mean"], 3, c["val_loss_std"]), number(c["step_ms_mean"], 0) + _stale(c),
        number(c["step_vs_ste"], 2) + _stale(c),
        c["status"] + (f" (also in {', '.join(s for s in c['studies'] if s != study)})" if len(c["studies"]) > 1
                       else ""),
    ] for _, c in cells.iterrows()]
    lines += [table(TABLE, rows),
              "Mean ± standard deviation over seeds (a seed run twice counts once, averaged); final: the last "
              "epoch, the headline; best epoch: the epoch of highest test top-1, what most papers report; test "
              "loss: label-smoothed, final epoch; step ms: the study's own median step time (warm-up steps "
              "excluded; runs timed while another training shared the device, or other processes kept a CPU's cores busy, left out), step / STE against the "
              "clipped STE of the same backend, device, precision and profile; (stale): timed before the current "
              "kernel code of its backend (the decision table's step cost is from the benchmark). All numbers: "
              f"[{csv.name}]({csv.name}); every epoch of every run: [{history_csv.name}]({history_csv.name}); "
              "curves of each run in TensorBoard: `tensorboard --logdir results/runs`.", ""]
    lines += [f"![{p.stem}]({p.relative_to(root)})" for p in plots]
    if plots:
        lines.append("")
    lines += ["Reading:", ""] + [f"- {line}" for line in reading(cells)] + [""]
    return "\n".join(lines)
