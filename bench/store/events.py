"""A run's per-epoch curves in TensorBoard's event format: `tensorboard --logdir results/runs`
shows every run of both backends side by side, live while they train.

The training loop rewrites `<run>/tensorboard/events.out.tfevents.fdabnn` from the run's whole
history after each epoch (atomically, like every store file: a resumed run never logs an epoch
twice), and `fdabnn summary` writes it for records that have none (older runs). Scalars are indexed
by epoch (1-based); an event's wall time is the run's cumulative training time in seconds, so
TensorBoard's "relative" axis reads as time spent training.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter

from bench.metrics import TOP1, TOP5, VALIDATION_LOSS
from bench.store.atomic import atomic_path

EVENTS = Path("tensorboard") / "events.out.tfevents.fdabnn"
# tag -> history key
SCALARS = {
    "test/top1": TOP1, "test/top5": TOP5, "test/loss": VALIDATION_LOSS,
    "train/loss": "train_loss", "train/top1": "train_acc",
    "schedule/lr": "lr_last", "schedule/alpha": "alpha_last", "schedule/n": "n",
    "time/epoch_s": "wall_s",
}


def write_events(run_dir: Path, history: list[dict[str, Any]]) -> Path:
    """Write the curves of `history` (a record's or progress.json's) under `run_dir`."""
    path = Path(run_dir) / EVENTS
    with atomic_path(path, suffix=".part") as tmp, open(tmp, "wb") as fh:
        writer = RecordWriter(fh)
        writer.write(Event(wall_time=0.0, file_version="brain.Event:2").SerializeToString())
        elapsed = 0.0
        for entry in history:
            elapsed += entry.get("wall_s") or 0.0
            values = [Summary.Value(tag=tag, simple_value=float(entry[key])) for tag, key in SCALARS.items()
                      if isinstance(entry.get(key), (int, float)) and not isinstance(entry[key], bool)]
            values += [Summary.Value(tag=f"schedule/{role}/{name}", simple_value=float(value))
                       for role, named in (entry.get("estimator_values") or {}).items()
                       for name, value in named.items()]
            values.append(Summary.Value(tag="time/step_ms_median", simple_value=_median_step(entry)))
            writer.write(Event(wall_time=elapsed, step=entry["epoch"] + 1,
                               summary=Summary(value=values)).SerializeToString())
        fh.flush()
    return path


def _median_step(entry: dict[str, Any]) -> float:
    steps = sorted(entry.get("step_ms", [])[entry.get("warmup_steps", 0):])
    return steps[len(steps) // 2] if steps else math.nan
