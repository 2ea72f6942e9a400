"""The "Step time" section of the summary, from the benchmark's records (results/bench/<suite>/).

Each suite gets a header naming the hardware and versions it ran on, one table per group (backend,
precision, batch, compile) with ratios against STE measured in the same process and rounds, and a
check of the suite's targets against the measured numbers. The model zoo's published step time
stands beside ours, labelled with its own hardware, never in our columns.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench import store
from bench.suite import case_reference, group_id, home_group_id, load_suite, load_variants, step_mode
from bench.errors import UserError
from bench.report.markdown import number, table

MODEL_ZOO_STEP_S = 0.27  # FDA-BNN README: 0.27 s/step, 350 min, "GPU", MindSpore 1.3, batch 128
FDA_CLOSED = ["fda-n1", "fda-n9", "fda-n18", "fda-n64"]
FDA_SUM = ["fda-n1-sum", "fda-n9-sum", "fda-n18-sum", "fda-n64-sum"]
UNFUSED = ["ste-unfused", "fda-n9-unfused"]  # runtime.fused_estimators = false


def benchmark_frame(root: Path) -> pd.DataFrame:
    """Every results/bench/**/*.json (a record or a list of records), flattened to dotted columns."""
    rows = store.bench_records(root)
    if not rows:
        return pd.DataFrame()
    frame = pd.json_normalize(rows)
    # the group (one process, one run) a record comes from: ratios are only taken within one; at home:
    # in the group of its case's own network, not a guest beside another network's or in a later part
    return frame.assign(mode=_modes(frame), group_id=[group_id(row["group"]) for row in rows],
                        at_home=[group_id(row["group"]) == home_group_id(row["group"], row["case"]) for row in rows])


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series([None] * len(frame), index=frame.index)


def _group_name(row: pd.Series) -> str:
    network = row.get("group.network")
    network = f" ({network})" if isinstance(network, str) else ""  # a group of another network than ResNet-20
    part = row.get("group.part")
    network += f", part {int(part)}" if not _missing(part) else ""  # one of a group's processes
    if row.get("group.cuda_graph") is True:
        return f"{row['group.backend']} {row['group.precision']} batch {row['group.batch']} CUDA graph{network}"
    compiled = "torch.compile" if row["group.compile"] else ("graph mode" if row["group.backend"] == "mindspore"
                                                               else "eager")
    return f"{row['group.backend']} {row['group.precision']} batch {row['group.batch']} {compiled}{network}"


def _hardware(runs: pd.DataFrame) -> str:
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        return "no case measured"
    env = ok.iloc[0]
    device = env.get("environment.device")
    name = env.get("environment.device_name") if device == "cuda" else env.get("environment.cpu_model")
    versions = sorted({f"torch {v}" for v in _col(ok, "environment.torch").dropna()}
                      | {f"mindspore {v}" for v in _col(ok, "environment.mindspore").dropna()})
    cuda = _col(ok, "environment.cuda").dropna()
    cuda_text = f", CUDA {cuda.iloc[0]}" if device == "cuda" and len(cuda) else ""
    cpus = env.get("environment.cpu_count")
    cpus = int(cpus) if pd.notna(cpus) else "?"
    return (f"{name} ({device}; host CPU {env.get('environment.cpu_model')}, {cpus} "
            f"logical CPUs), {', '.join(versions)}{cuda_text}, Python {env.get('environment.python')}, "
            f"{env.get('environment.os')}, git {', '.join(sorted(_col(ok, 'environment.git_commit').dropna().unique()))}; measured "
            f"{str(ok['measured_at'].min())[:16]} to {str(ok['measured_at'].max())[:16]}")


def _case_order(case: str) -> int:
    """Rows in the order of bench/suites/estimators.toml (STE first)."""
    labels = list(load_variants())
    return labels.index(case) if case in labels else len(labels)


def _group_table(group: pd.DataFrame) -> str:
    group = group.iloc[sorted(range(len(group)), key=lambda i: _case_order(group["case"].iloc[i]))]
    ok = group[group["status"] == "ok"]
    bases = dict(zip(ok["case"], ok["timing.median_ms"].astype(float)))
    rows = []
    for _, r in group.iterrows():
        base = bases.get(case_reference(r["case"]))  # the clipped STE of the case's network
        if r["status"] != "ok":
            rows.append([r["case"], r["status"], "", "", "", "", "", "", str(r.get("reason", ""))[:120]])
            continue
        share = r.get("data_share")
        rows.append([
            r["case"], "ok", number(r["timing.median_ms"], 2),
            f"{r['timing.p10_ms']:.2f}–{r['timing.p90_ms']:.2f}", number(r["timing.images_per_s"], 0),
            number(r["timing.median_ms"] / base, 2) if base else "-",
            number(r["timing.first_step_ms"], 0),
            f"{share:.1%}" if pd.notna(share) else "-",
            number(r.get("eval.images_per_s"), 0),
        ])
    return table(["case", "status", "median ms", "p10–p90 ms", "img/s", "× STE", "first step ms",
                  "input share", "eval img/s"], rows)


def _modes(frame: pd.DataFrame) -> pd.Series:
    """Each record's step mode: eager, compiled or graph (bench/suite.py: step_mode)."""
    return frame.apply(lambda r: step_mode({"compile": r["group.compile"], "cuda_graph": r.get("group.cuda_graph")}),
                       axis=1)


def _hit(frame: pd.DataFrame, backend: str, precision: str, batch: int, mode: str, case: str) -> pd.DataFrame:
    """The record of `case` in its own group of this key (not one of the same label timed beside
    another network's group or in a later part: its run is another)."""
    return frame[frame["at_home"] & (frame["group.backend"] == backend) & (frame["group.precision"] == precision)
                 & (frame["group.batch"] == batch) & (frame["mode"] == mode)
                 & (frame["case"] == case) & (frame["status"] == "ok")]


def _median(frame: pd.DataFrame, backend: str, precision: str, batch: int, mode: str, case: str) -> float | None:
    hit = _hit(frame, backend, precision, batch, mode, case)
    return float(hit["timing.median_ms"].iloc[0]) if len(hit) else None


def _vs_ste(runs: pd.DataFrame, labels: list[str], ste: float, precision: str = "fp32",
            mode: str = "eager") -> dict[str, float]:
    """label -> median / STE's median, PyTorch batch 128, for the labels measured."""
    medians = {c: _median(runs, "torch", precision, 128, mode, c) for c in labels}
    return {c: v / ste for c, v in medians.items() if v}


def _listed(ratios: dict[str, float]) -> str:
    return ", ".join(f"{c} {r:.2f}×" for c, r in ratios.items())


def _targets(runs: pd.DataFrame, device: str) -> list[str]:
    lines = []
    if device == "cpu":
        ste = _median(runs, "torch", "fp32", 128, "eager", "ste")
        if ste:
            closed, sums, unfused = (_vs_ste(runs, labels, ste) for labels in (FDA_CLOSED, FDA_SUM, UNFUSED))
            if closed:
                worst = max(closed.values())
                verdict = "met" if worst <= 1.10 else f"missed by {worst / 1.10 - 1:.0%}"
                lines.append("FDA closed form vs STE, PyTorch fp32 eager, batch 128 (target ≤ 1.10× at every n): "
                             + _listed(closed) + f" — {verdict}.")
            if sums:
                lines.append("Term-sum form for comparison: " + _listed(sums)
                             + " (grows with n; the closed form does not).")
            if unfused:
                lines.append("The same estimators with their backward op by op instead of one fused kernel "
                             "(runtime.fused_estimators = false): " + _listed(unfused) + " the fused STE.")
            noise = _vs_ste(runs, ["fda-n9+noise"], ste)
            if noise:
                ratio = noise["fda-n9+noise"]
                lines.append(f"FDA n=9 with the noise module vs STE, PyTorch fp32 eager, batch 128 (target ≤ 1.15×): "
                             f"{ratio:.2f}× — {'met' if ratio <= 1.15 else f'missed by {ratio / 1.15 - 1:.0%}'}.")
        ms, pt = _median(runs, "mindspore", "fp32", 128, "eager", "ste"), ste
        if ms and pt:
            lines.append(f"MindSpore vs PyTorch, STE fp32 batch 128 on this CPU (target ≤ 2×): {ms:.0f} ms vs "
                         f"{pt:.0f} ms = {ms / pt:.1f}× — {'met' if ms / pt <= 2 else 'missed'}. What the suite "
                         "sets for MindSpore is in the README (oneDNN ISA cap, kernel threads, graph mode); the "
                         "kernels' own speed, layer by layer against PyTorch's, is in the `layers-` tables of the "
                         "micro-benchmarks below.")
    else:
        lines += _gpu_targets(runs)
    return lines


@dataclass(frozen=True)
class TargetCheck:
    """One of issue #10's GPU targets against what the records hold (measured None: no record)."""

    name: str
    measured: float | None
    limit: float
    unit: str
    at_most: bool = True  # the measurement must be <= limit (else >=)

    @property
    def met(self) -> bool:
        return self.measured is not None and (self.measured <= self.limit if self.at_most
                                              else self.measured >= self.limit)

    def line(self) -> str:
        """`name (target ≤ limit): measured — met|missed|not measured`."""
        limit = f"{self.limit:,.0f}" if self.limit == int(self.limit) else f"{self.limit:.2f}"
        head = f"{self.name} (target {'≤' if self.at_most else '≥'} {limit}{self.unit})"
        if self.measured is None:
            return f"{head}: not measured"
        value = f"{self.measured:,.0f}" if abs(self.measured) >= 1000 else f"{self.measured:.2f}"
        return f"{head}: {value}{self.unit} — {'met' if self.met else 'missed'}"


def gpu_target_checks(runs: pd.DataFrame) -> list[TargetCheck]:
    """Issue #10's step-time targets: FDA n=9 (+ noise), bf16, batch 128, the captured step (CUDA graph)."""
    def median(mode: str, case: str) -> float | None:
        return _median(runs, "torch", "bf16", 128, mode, case) if not runs.empty else None

    graph, ste = median("graph", "fda-n9+noise"), median("graph", "ste")
    checks = [TargetCheck("Captured step (one CUDA graph), FDA n=9 + noise, bf16, batch 128", graph, 3, " ms")]
    for case, limit in (("fda-n9", 1.10), ("fda-n9+noise", 1.15)):
        value = median("graph", case)
        checks.append(TargetCheck(f"{case} vs STE, captured, bf16", value / ste if value and ste else None,
                                  limit, "×"))
    rate = None
    if graph:
        rate = _hit(runs, "torch", "bf16", 128, "graph", "fda-n9+noise").iloc[0].get("eval.images_per_s")
    checks.append(TargetCheck("Evaluation", float(rate) if rate is not None and pd.notna(rate) else None,
                              50000, " img/s", at_most=False))
    shares = _col(runs, "data_share").dropna() if not runs.empty else pd.Series(dtype=float)
    checks.append(TargetCheck("Input pipeline share of a step on the GPU, largest case",
                              float(shares.max()) * 100 if len(shares) else None, 5, "%"))
    return checks


def _gpu_targets(runs: pd.DataFrame) -> list[str]:
    """Issue #10's targets as sentences, with the eager step beside and the projected paper run."""
    checks = gpu_target_checks(runs)
    graph, eager = checks[0].measured, _median(runs, "torch", "bf16", 128, "eager", "fda-n9+noise")
    if graph is None:
        return []
    beside = f"; the eager step of the same run: {eager:.2f} ms ({eager / graph:.1f}× slower)" if eager else ""
    lines = [f"{checks[0].line()}{beside}."] + [f"{c.line()}." for c in checks[1:] if c.measured is not None]
    rate = checks[3].measured
    if rate:
        paper_min = (400 * (50000 // 128) * graph / 1e3 + 400 * 10000 / rate) / 60
        lines.append(f"Projected paper-profile run (400 epochs × 390 steps × {graph:.2f} ms + 400 evaluations of "
                     f"10,000 images): {paper_min:.0f} min, beside the model zoo's 350 min "
                     f"({350 / paper_min:.0f}× faster).")
    return lines


def _unmeasured_groups(suite: str, runs: pd.DataFrame) -> list[str]:
    """The suite file's groups that have no record here (an interrupted or budget-cut run)."""
    try:
        groups = load_suite(suite).groups
    except UserError:
        return []
    seen = set(runs["group_id"])
    return [g.id for g in groups if g.id not in seen]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def step_time_section(bench: pd.DataFrame) -> str:
    if bench.empty:
        return ""
    lines = ["## Step time", "",
             "Measured by `fdabnn bench` (`make bench-cpu`, `make bench-gpu`): train-step time on real CIFAR-10 "
             "batches (gather, on-device augmentation, forward, backward, optimizer step). The cases of a group are "
             "built in one process and timed in interleaved rounds after untimed warm-up steps, so × STE is a ratio "
             "measured in the same run (against the clipped STE of the case's own network: `fp`, the full-precision "
             "twin, against the binarized ResNet-20's STE, so what the binarization costs is 1 / its ratio); step boundaries are CUDA events on GPU and device-synchronised host clocks "
             "on CPU; medians, with p10–p90. First step: the first step of the process (compilation included). "
             "Input share: the gather + augment alone, relative to the step. Eval img/s: one measurement per group, "
             "the median of whole evaluations after untimed ones (EVAL_TIMED, EVAL_WARMUP in bench/benchmark.py; "
             "every estimator runs the same binary forward in eval mode; a CUDA-graph evaluation is captured in "
             "the untimed ones).", "",
             f"Reference, not ours: the model zoo reports {MODEL_ZOO_STEP_S} s/step (350 min of training) for "
             "FDA-BNN on an unnamed GPU with MindSpore 1.3, batch 128.", ""]
    if not (bench["device"] == "cuda").any():
        lines += ["No GPU numbers: the store holds no records of the `gpu` suite. `make bench-gpu` on a machine "
                  "with CUDA adds them; it is written to run there unchanged but has not been run on a GPU yet.", ""]
    for suite, runs in bench.groupby("suite", sort=True):
        device = str(runs["device"].iloc[0])
        lines += [f"### Suite `{suite}` ({device})", "", f"Hardware and software: {_hardware(runs)}.", ""]
        targets = _targets(runs, device)
        if targets:
            lines += ["Targets:", ""] + [f"- {t}" for t in targets] + [""]
        missing = _unmeasured_groups(str(suite), runs)
        if missing:
            lines += [f"Not measured in this store: {', '.join(missing)}. Running the suite again measures them "
                      "(measured groups are skipped).", ""]
        runs = runs.assign(_group=runs.apply(_group_name, axis=1))
        for name, group in runs.groupby("_group", sort=False):
            outcomes = set(zip(group["status"], _col(group, "reason").fillna("")))
            if len(outcomes) == 1 and next(iter(outcomes))[0] != "ok":  # nothing measured, for one reason
                status, reason = next(iter(outcomes))
                lines += [f"#### {name}", "", f"All {len(group)} cases {status}: {reason}", ""]
                continue
            lines += [f"#### {name}", "", _group_table(group), ""]
    return "\n".join(lines)
