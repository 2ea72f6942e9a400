"""How long a study will take, told before it starts.

A cell's time is its start-up (interpreter, framework import, data, model build: always the
constant in ablations/profiles.toml, records do not hold it) plus its epochs. Epoch time comes from
the store when it holds records of the same backend, profile and device (the median of their wall
time per epoch, evaluation included; records of the same network only). Otherwise, on a GPU, from
the benchmark records of a GPU
(`make bench-gpu`: the variant's median step at the same backend and precision, scaled linearly
with the batch size, and the measured eval throughput); without those a GPU study is "unknown",
never estimated from CPU numbers. On a CPU, from the per-backend constants in
ablations/profiles.toml (measured on the 2-core development machine): seconds per step at batch
128, scaled linearly with the batch size, and an evaluation costing a third of a step per 128 test
images (forward only). Those constants are ResNet-20's: another network's step is taken to cost them
times its forward multiply-accumulates over ResNet-20's (bench.networks.forward_macs: VGG-small
~15x), a first guess until records of it exist.
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bench.data.augment import steps_per_epoch
from bench.data.dataset import split_sizes
from bench.networks import forward_macs
from bench.studies import Cell, CostModel
from bench.suite import bench_case


@dataclass(frozen=True)
class Estimate:
    seconds: dict[str, float]  # run_id -> estimated seconds still to go
    sources: dict[str, str]  # backend -> where its numbers came from

    @property
    def total_s(self) -> float:
        return sum(self.seconds.values())  # nan when any cell's is unknown

    def describe(self, cells: list[Cell], slots: int = 1) -> str:
        by_backend: dict[str, list[float]] = defaultdict(list)
        for cell in cells:
            by_backend[cell.spec.backend].append(self.seconds[cell.run_id])
        parts = [f"{backend}: {len(times)} cells, ~{format_duration(statistics.median(times))} each "
                 f"({self.sources[backend]})" for backend, times in by_backend.items()]
        text = f"estimated duration ~{format_duration(self.total_s / max(1, min(slots, len(cells))))}"
        if slots > 1:
            text += (f" with {slots} cells at once ({format_duration(self.total_s)} of cell time; assumes they do "
                     "not slow each other, which on shared CPU cores they do)")
        return text + ": " + "; ".join(parts)


def format_duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "unknown"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def network_cost_factor(name: str) -> float:
    """A step of network `name` in steps of ResNet-20 (the constants'), by forward arithmetic."""
    return forward_macs(name) / forward_macs("resnet20")


def _epoch_s_from_constants(cell: Cell, cost: CostModel) -> float:
    train = cell.spec.train
    num_train, num_test = split_sizes(cell.spec.data.subset, cell.spec.data.test_subset)
    steps = steps_per_epoch(num_train, train.batch_size, train.max_steps_per_epoch)
    factor = network_cost_factor(cell.spec.model.name)
    return factor * (steps * cost.step_s(cell.spec.precision, train.batch_size) + num_test / 3 * cost.step_s(
        cell.spec.precision, 1))


def _epoch_s_from_gpu_bench(cell: Cell, bench: list[dict[str, Any]]) -> float | None:
    spec = cell.spec
    case = bench_case(spec.to_dict())
    hits = [r for r in bench if r.get("device") == "cuda" and r.get("status") == "ok" and r.get("case") == case
            and r["group"]["backend"] == spec.backend and r["group"]["precision"] == spec.precision]
    if not hits:
        return None
    best = min(hits, key=lambda r: r["timing"]["median_ms"] / r["group"]["batch"])  # the fastest path measured
    num_train, num_test = split_sizes(spec.data.subset, spec.data.test_subset)
    steps = steps_per_epoch(num_train, spec.train.batch_size, spec.train.max_steps_per_epoch)
    step_s = best["timing"]["median_ms"] / 1e3 * spec.train.batch_size / best["group"]["batch"]
    eval_rate = (best.get("eval") or {}).get("images_per_s")
    return steps * step_s + (num_test / eval_rate if eval_rate else 0.0)


def _epoch_s_from_records(records: list[dict[str, Any]]) -> float | None:
    return statistics.median(r["wall_s"] / r["epochs_done"] for r in records) if records else None


def estimate(cells: list[Cell], epochs_done: dict[str, int], costs: dict[str, CostModel],
             records: list[dict[str, Any]], bench: list[dict[str, Any]] | None = None) -> Estimate:
    """Seconds to go for each of `cells` (`epochs_done` of them already checkpointed), from the
    store's `records` of the same backend, profile and device, else (GPU) from the `bench` records
    of a GPU, else (CPU) from `costs`."""
    seconds, sources = {}, {}
    for cell in cells:
        spec = cell.spec
        similar = [r for r in records if r.get("profile") == cell.profile and r["spec"]["backend"] == spec.backend
                   and r["spec"]["device"] == spec.device and r["spec"].get("precision", "fp32") == spec.precision
                   and r["spec"].get("model", {}).get("name", "resnet20") == spec.model.name and r.get("epochs_done")]
        cost = costs[spec.backend]
        epoch_s = _epoch_s_from_records(similar)
        if epoch_s is None and spec.device == "cuda":
            epoch_s = _epoch_s_from_gpu_bench(cell, bench or [])
            sources[spec.backend] = ("from this store's GPU benchmark (make bench-gpu)" if epoch_s is not None else
                                     "unknown: no GPU benchmark record of this variant yet; run `make bench-gpu` "
                                     "first (CPU numbers say nothing about a GPU)")
            epoch_s = math.nan if epoch_s is None else epoch_s
        elif epoch_s is None:
            epoch_s = _epoch_s_from_constants(cell, cost)
            factors = ", ".join(f"{p} {f:g}x" for p, f in cost.precision_factor.items())
            sources[spec.backend] = "from the constants in ablations/profiles.toml" + (
                f" (a step in {factors} fp32's on that CPU)" if factors else "")
        else:
            sources[spec.backend] = f"from {len(similar)} earlier records of profile {cell.profile}"
        epochs_left = spec.train.epochs - epochs_done.get(cell.run_id, 0)
        seconds[cell.run_id] = cost.startup_s + max(epochs_left, 0) * epoch_s
    return Estimate(seconds, sources)
