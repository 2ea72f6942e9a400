"""Step-time statistics, the one place every timing in the suite is summarised.

Step times arrive per step from a StepClock (device-synchronised or device events); the first
`warmup` steps of a process (compilation, allocator and autotuning warm-up) are reported apart and
never mixed into the medians.
"""
from __future__ import annotations

import resource
import sys

import numpy as np


def summarize(step_ms: list[float], warmup: int, batch_size: int) -> dict[str, float | int | None]:
    """Median, p10, p90 over the steps after `warmup`; the first step and the warm-up kept apart."""
    times = np.asarray(step_ms, dtype=np.float64)
    measured = times[warmup:] if len(times) > warmup else times[-1:]
    if len(measured) == 0:
        return {"steps": 0, "warmup_steps": 0, "first_step_ms": None, "median_ms": None,
                "p10_ms": None, "p90_ms": None, "images_per_s": None}
    median = float(np.median(measured))
    return {
        "steps": int(len(measured)),
        "warmup_steps": int(min(warmup, max(len(times) - 1, 0))),
        "first_step_ms": float(times[0]),
        "median_ms": median,
        "p10_ms": float(np.percentile(measured, 10)),
        "p90_ms": float(np.percentile(measured, 90)),
        "images_per_s": batch_size / (median / 1e3) if median > 0 else None,
    }


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
