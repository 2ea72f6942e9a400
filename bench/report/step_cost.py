"""What a variant costs per step, for the decision table: its time relative to the clipped STE in
the benchmark (`fdabnn bench`) of the same device, backend and precision, measured in one process
and interleaved rounds, rather than the studies' own step times (cells timed apart, sometimes
sharing the machine).

A variant is looked up under its own label, else with its n schedule dropped (FDA n 9 -> 18 is
timed at n = 9: the closed form's cost does not depend on n), in the first group of the benchmark
that measured it beside STE in the same process (a group's part, or VGG-small's group timing ResNet-20's
STE, is a run of its own): the study's precision first, the captured step (CUDA graph) before the
eager one, the largest batch first. A ratio read at another precision than the study's says so.

A benchmark record is stale when the backend's kernel code (KERNEL_PATHS) changed in a commit its
own commit does not contain; a stale
ratio is shown marked, never as current. Where git cannot tell (no repository, an unknown commit)
the ratio is shown unmarked with its commit in the benchmark file.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from bench.environment import git
from bench.suite import bench_case, reference_case

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
    precision: str | None = None  # the benchmark's precision where it is not the study's

    def describe(self) -> str:
        text = f"{self.ratio:.2f}×" + (f" ({self.precision})" if self.precision else "")
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
    """The benchmark's ratio to the clipped STE for this variant, or None when no group measured it
    beside STE: from the step a study runs (one CUDA graph where measured, else eager; MindSpore's
    graph mode), in the first group that has it (module docstring)."""
    if bench.empty:
        return None
    ok = _steps(bench, device, backend)
    case, ste = bench_case(spec_tree), reference_case(spec_tree)
    keys = ok[["group.precision", "mode", "group.batch", "group_id"]].drop_duplicates().itertuples(index=False)
    for measured, mode, batch, gid in sorted(keys, key=lambda k: (k[0] != precision, k[1] != "graph", -k[2], k[3])):
        group = ok[ok["group_id"] == gid]  # one process: the variant's and STE's steps from one run
        medians = group.set_index("case")["timing.median_ms"]
        if case in medians and ste in medians:
            verdict = _staleness(backend, group[group["case"].isin([case, ste])])
            return StepCost(float(medians[case] / medians[ste]), case, int(batch), verdict,
                            None if measured == precision else measured)
    return None


def precision_cost(bench: pd.DataFrame, device: str, backend: str, precision: str, spec_tree: dict,
                   reference: str = "fp32") -> StepCost | None:
    """The benchmark's step of this variant in `precision` against the same case in `reference`
    precision, same device, backend, step mode and batch (the cpu suite puts the precisions beside
    each other in one process: bench/suites/cpu.toml), the captured step and the largest batch
    first; None when no such pair was measured."""
    if bench.empty:
        return None
    case = bench_case(spec_tree)
    ok = _steps(bench, device, backend)
    # precisions are timed beside each other in a network's own group, not in its parts or another's
    ok = ok[(ok["case"] == case) & ok["at_home"]]
    mine, theirs = ok[ok["group.precision"] == precision], ok[ok["group.precision"] == reference]
    pairs = set(mine[["mode", "group.batch"]].itertuples(index=False)) & set(
        theirs[["mode", "group.batch"]].itertuples(index=False))
    for mode, batch in sorted(pairs, key=lambda k: (k[0] != "graph", -k[1])):
        a = mine[(mine["mode"] == mode) & (mine["group.batch"] == batch)]
        b = theirs[(theirs["mode"] == mode) & (theirs["group.batch"] == batch)]
        ratio = float(a["timing.median_ms"].median() / b["timing.median_ms"].median())
        return StepCost(ratio, case, int(batch), _staleness(backend, pd.concat([a, b])))
    return None


def _steps(bench: pd.DataFrame, device: str, backend: str) -> pd.DataFrame:
    """The ok records of this device and backend of the step a study runs (captured or eager)."""
    return bench[(bench["device"] == device) & (bench["group.backend"] == backend) & (bench["status"] == "ok")
                 & bench["mode"].isin(["graph", "eager"])]


def _staleness(backend: str, records: pd.DataFrame) -> bool | None:
    stale = [is_stale(backend, c) for c in records["environment.git_commit"].dropna().unique()]
    return True if any(stale) else (None if None in stale or not stale else False)
