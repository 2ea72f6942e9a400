"""The run record: what record.json holds when a run ends, written by the training loop or, for a
cell whose process died before it could, by the ablation runner (history then from progress.json).
A cell of a Ray study also carries `attempts` (bench/executors/commit.py): each attempt's id, host
and how it ended; the field is absent elsewhere."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import math

from bench.metrics import METRIC_KEYS, TOP1
from bench.spec import Spec
from bench.timing import summarize


def timing_of(history: list[dict[str, Any]], batch_size: int) -> dict[str, Any]:
    """Step-time summary over a run's epochs, each process's warm-up steps excluded."""
    measured, first = [], []
    for epoch in history:
        times, warm = epoch["step_ms"], epoch["warmup_steps"]
        if warm:
            first.append(times[0])
        measured.extend(times[warm:])
    summary = summarize(measured, 0, batch_size)
    summary["first_step_ms"] = first[0] if first else None
    # measured while another training used the same GPU, or the same host's CPU cores: not comparable
    summary["shared"] = any(epoch.get("shared", False) for epoch in history)
    return summary


def best_epoch(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch of highest validation top-1 (the first of ties) and its metrics: what most papers
    report; the final epoch's stays the headline."""
    if not history:
        return {}
    best = max(history, key=lambda epoch: (epoch[TOP1], -epoch["epoch"]))
    return {"epoch": best["epoch"], **{k: best[k] for k in METRIC_KEYS}}


def run_record(spec: Spec, run_dir: Path, environment: dict[str, Any], history: list[dict[str, Any]],
               wall_s: float, status: str, reason: str, peak_memory_bytes: int | None,
               init: dict[str, Any] | None = None) -> dict[str, Any]:
    """`init`: where the weights came from when the spec names init.from (bench/init/source.py:
    path, sha256, source run), else None."""
    final = {k: history[-1][k] for k in METRIC_KEYS} if history else {}
    return {
        "status": status, "reason": reason, "run_id": run_dir.name, "label": spec.label(),
        "spec": spec.to_dict(), "environment": environment, "final": final,
        "best": best_epoch(history),
        "timing": timing_of(history, spec.train.batch_size),
        "peak_memory_bytes": peak_memory_bytes, "init": init,
        "epochs_done": len(history), "wall_s": wall_s, "history": history,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


STATUSES = ("finished", "diverged", "failed", "nonfinite", "skipped", "unsupported")
# the outcomes of a training that ran to its end: running it again reproduces them, so it never does
COMPLETE = ("finished", "diverged")
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "status": str, "reason": str, "run_id": str, "spec": dict, "environment": dict, "final": dict, "timing": dict,
    "epochs_done": int, "wall_s": (int, float), "history": list}


def record_problem(record: Any) -> str | None:
    """Why `record` is not a run record this schema wrote (None when it is): a record that only
    says {"status": "finished"} must not count as a finished run."""
    if not isinstance(record, dict):
        return f"not a record (a JSON {type(record).__name__})"
    missing = [k for k in _FIELDS if k not in record]
    if missing:
        return f"missing {', '.join(missing)}"
    wrong = [k for k, kind in _FIELDS.items() if not isinstance(record[k], kind) or isinstance(record[k], bool)]
    if wrong:
        return f"wrong type of {', '.join(wrong)}"
    if record["status"] not in STATUSES:
        return f"unknown status {record['status']!r}"
    if record["epochs_done"] != len(record["history"]):
        return f"epochs_done {record['epochs_done']} but {len(record['history'])} epochs of history"
    if record["status"] in COMPLETE and (not record["history"] or set(METRIC_KEYS) - set(record["final"])):
        return "finished without history or final metrics"
    for i, epoch in enumerate(record["history"], 1):
        if problem := _epoch_problem(epoch):
            return f"history entry {i}: {problem}"
    if "attempts" in record and (problem := _attempts_problem(record["attempts"])):
        return problem
    wrong = [k for k in METRIC_KEYS if k in record["final"] and not _number(record["final"][k])]
    if wrong:
        return f"final {wrong[0]} is {record['final'][wrong[0]]!r}, not a number"
    # a diverged run's loss may be non-finite (that is why it stopped); a finished one's metrics never are
    if record["status"] == "finished" and not all(math.isfinite(record["final"][k]) for k in METRIC_KEYS):
        return f"finished with a non-finite metric in final {record['final']}"
    return None


def _attempts_problem(attempts: Any) -> str | None:
    if not isinstance(attempts, list) or not attempts:
        return "attempts is not a list of attempts"
    for entry in attempts:
        if not (isinstance(entry, dict) and isinstance(entry.get("attempt"), int)
                and all(isinstance(entry.get(k), (str, type(None))) for k in ("host", "ended"))):
            return f"attempts entry {entry!r} lacks an attempt number, host or end"
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _epoch_problem(epoch: Any) -> str | None:
    """What the summary reads of an epoch: its number, metrics and step times."""
    if not isinstance(epoch, dict):
        return f"a JSON {type(epoch).__name__}, not an epoch"
    if not isinstance(epoch.get("epoch"), int) or isinstance(epoch.get("epoch"), bool):
        return "no epoch number"
    wrong = [k for k in METRIC_KEYS if not _number(epoch.get(k))]
    if wrong:
        return f"{wrong[0]} is {epoch.get(wrong[0])!r}, not a number"
    if not isinstance(epoch.get("step_ms"), list) or not all(_number(t) for t in epoch["step_ms"]):
        return "step_ms is not a list of numbers"
    if not isinstance(epoch.get("warmup_steps"), int):
        return "warmup_steps is not a whole number"
    return None


def meta_problem(meta: Any) -> str | None:
    """Why a checkpoint's meta (what the training loop saved beside the weights: epoch, history,
    wall_s and the spec) cannot be resumed from or reported; None when it can. A model-only
    checkpoint (the model zoo's, a converted one) has an empty meta."""
    if not isinstance(meta, dict):
        return f"its metadata is a {type(meta).__name__}, not a table"
    if "epoch" in meta and (not isinstance(meta["epoch"], int) or isinstance(meta["epoch"], bool) or meta["epoch"] < 0):
        return f"its metadata's epoch is {meta['epoch']!r}, not a whole number >= 0"
    if "history" in meta:
        if not isinstance(meta["history"], list):
            return "its metadata's history is not a list"
        for i, epoch in enumerate(meta["history"], 1):
            if problem := _epoch_problem(epoch):
                return f"its metadata's history entry {i}: {problem}"
    if "wall_s" in meta and not _number(meta["wall_s"]):
        return f"its metadata's wall_s is {meta['wall_s']!r}, not a number"
    if "spec" in meta and not isinstance(meta["spec"], dict):
        return "its metadata's spec is not a table"
    return None


BENCH_TIMING = ("median_ms", "p10_ms", "p90_ms", "images_per_s")


def bench_record_problem(record: Any) -> str | None:
    """Why `record` is not a benchmark record bench/benchmark.py wrote (None when it is): the group
    and case it names, and for a measured case its step-time summary."""
    if not isinstance(record, dict):
        return f"not a record (a JSON {type(record).__name__})"
    if not all(isinstance(record.get(k), str) for k in ("case", "status")):
        return "no case or status"
    group = record.get("group")
    if not (isinstance(group, dict) and isinstance(group.get("backend"), str) and isinstance(group.get("precision"), str)
            and isinstance(group.get("batch"), int) and isinstance(group.get("compile"), bool)):
        return "no group (backend, precision, batch, compile)"
    if record["status"] == "ok":
        timing = record.get("timing")
        if not isinstance(timing, dict) or not all(_number(timing.get(k)) and math.isfinite(timing[k])
                                                   for k in BENCH_TIMING) or not timing["median_ms"] > 0:
            return f"measured without finite step times ({', '.join(BENCH_TIMING)})"
    return None
