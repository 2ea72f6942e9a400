"""What a variant costs per step, for the decision table: its time relative to the clipped STE in
the benchmark (`fdabnn bench`) of the same device, backend and precision, measured in one process
and interleaved rounds, rather than the studies' own step times (cells timed apart, sometimes
sharing the machine).

A variant is looked up under its own label, else with its n schedule dropped (FDA n 9 -> 18 is
timed at n = 9: the closed form's cost does not depend on n). A benchmark record is stale when the
backend's kernel code (KERNEL_PATHS) changed in a commit its own commit does not contain; a stale
ratio is shown marked, never as current. Where git cannot tell (no repository, an unknown commit)
the ratio is shown unmarked with its commit in the benchmark file.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from bench.environment import git
from bench.suite import bench_case

# the files whose change invalidates a backend's step times: estimators, noise module, binary conv
KERNEL_PATHS = {backend: [f"backends/{folder}/estimators", f"backends/{folder}/noise.py",
                          f"backends/{folder}/binconv.py"]
                for backend, folder in (("torch", "pytorch"), ("mindspore", "mindspore"))}


@dataclass(frozen=True)
class StepCost:
    ratio: float  # median step / the clipped STE's, same group
    case: str  # the benchmark case it was read from
    batch: int
    stale: bool | None  # None: git cannot tell

    def describe(self) -> str:
        text = f"{self.ratio:.2f}×"
        return text + " (stale)" if self.stale else text


@lru_cache(maxsize=None)
def kernel_commit(backend: str) -> str | None:
    """The last commit that changed `backend`'s kernel code, or None."""
    return git("log", "-1", "--format=%H", "--", *KERNEL_PATHS.get(backend, [])) or None


@lru_cache(maxsize=None)
def is_stale(backend: str, commit: str | None) -> bool | None:
    """Whether a measurement at `commit` predates `backend`'s current kernels (None: unknown). A
    '+dirty' commit counts as its base commit (its uncommitted edits are unknown)."""
    latest = kernel_commit(backend)
    if not commit or latest is None:
        return None
    base = commit.removesuffix("+dirty")
    if git("cat-file", "-e", f"{base}^{{commit}}") is None:
        return None
    return git("merge-base", "--is-ancestor", latest, base) is None


def step_cost(bench: pd.DataFrame, device: str, backend: str, precision: str, spec_tree: dict) -> StepCost | None:
    """The benchmark's ratio to the clipped STE for this variant, or None when the benchmark has no
    such case: from the step a study runs (one CUDA graph where measured, else eager; MindSpore's
    graph mode), at the largest batch measured."""
    group = _group(bench, device, backend, precision)
    if group is None:
        return None
    medians = group.groupby("case")["timing.median_ms"].median()
    case = bench_case(spec_tree)
    if case not in medians or "ste" not in medians:
        return None
    stale = _staleness(backend, group[group["case"].isin([case, "ste"])])
    return StepCost(float(medians[case] / medians["ste"]), case, int(group["group.batch"].iloc[0]), stale)


def precision_cost(bench: pd.DataFrame, device: str, backend: str, precision: str, spec_tree: dict,
                   reference: str = "fp32") -> StepCost | None:
    """The benchmark's step of this variant in `precision` against the same case in `reference`
    precision, same device, backend, step mode and batch (the cpu suite puts the precisions beside
    each other in one process: bench/suites/cpu.toml); None when either is not measured."""
    group = _group(bench, device, backend, precision)
    base = _group(bench, device, backend, reference)
    if group is None or base is None:
        return None
    base = base[(base["mode"] == group["mode"].iloc[0]) & (base["group.batch"] == group["group.batch"].iloc[0])]
    case = bench_case(spec_tree)
    mine, theirs = group[group["case"] == case], base[base["case"] == case]
    if mine.empty or theirs.empty:
        return None
    ratio = float(mine["timing.median_ms"].median() / theirs["timing.median_ms"].median())
    return StepCost(ratio, case, int(group["group.batch"].iloc[0]), _staleness(backend, pd.concat([mine, theirs])))


def _group(bench: pd.DataFrame, device: str, backend: str, precision: str) -> pd.DataFrame | None:
    """The ok records of the step a study runs (one CUDA graph where measured, else eager;
    MindSpore's graph mode) at the largest batch measured; None when there are none."""
    if bench.empty:
        return None
    group = bench[(bench["device"] == device) & (bench["group.backend"] == backend)
                  & (bench["group.precision"] == precision) & (bench["status"] == "ok")]
    group = group[group["mode"] == ("graph" if (group["mode"] == "graph").any() else "eager")]
    if group.empty:
        return None
    return group[group["group.batch"] == group["group.batch"].max()]


def _staleness(backend: str, records: pd.DataFrame) -> bool | None:
    stale = [is_stale(backend, c) for c in records["environment.git_commit"].dropna().unique()]
    return True if any(stale) else (None if None in stale or not stale else False)
