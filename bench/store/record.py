"""The run record: what record.json holds when a run ends, written by the training loop or, for a
cell whose process died before it could, by the ablation runner (history then from progress.json)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.metrics import METRIC_KEYS
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
    return summary


def run_record(spec: Spec, run_dir: Path, environment: dict[str, Any], history: list[dict[str, Any]],
               wall_s: float, status: str, reason: str, peak_memory_bytes: int | None) -> dict[str, Any]:
    final = {k: history[-1][k] for k in METRIC_KEYS} if history else {}
    return {
        "status": status, "reason": reason, "run_id": run_dir.name, "label": spec.label(),
        "spec": spec.to_dict(), "environment": environment, "final": final,
        "timing": timing_of(history, spec.train.batch_size),
        "peak_memory_bytes": peak_memory_bytes,
        "epochs_done": len(history), "wall_s": wall_s, "history": history,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
