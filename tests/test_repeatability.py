"""The same spec and seed give the same run: both backends, each spec in its own process (MindSpore
sets its kernel threads once per process), compared to the last bit; and the per-epoch curves
reach TensorBoard's own reader."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench import store
from bench.metrics import TOP1

TOY = ["device=cpu", "estimator.name=fda", "noise.enabled=true", "data.subset=4", "data.test_subset=4",
       "train.batch_size=8", "train.max_steps_per_epoch=4", "train.eval_batch_size=40", "train.epochs=2"]


def _train(backend: str, run_dir, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", "train", f"backend={backend}", *TOY, *extra,
                           "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "FDABNN_RESULTS": str(run_dir.parent)})


def _metrics(run_dir) -> list[tuple]:
    record = store.read_record(run_dir)
    assert record["status"] == "finished", record["reason"]
    return [(e["train_loss"], e["train_acc"], e["Validation-Loss"], e[TOP1]) for e in record["history"]]


@pytest.mark.parametrize("backend", ["torch", pytest.param("mindspore", marks=[pytest.mark.mindspore, pytest.mark.slow])])
def test_same_spec_and_seed_repeat_bit_for_bit(backend, cifar10, tmp_path):
    if backend == "mindspore":
        pytest.importorskip("mindspore", reason="MindSpore is not installed")
    for name in ("a", "b"):
        done = _train(backend, tmp_path / name)
        assert done.returncode == 0, done.stderr[-2000:]
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    if backend == "mindspore":
        environment = json.loads((tmp_path / "a" / store.ENVIRONMENT).read_text())
        assert environment["threads"] == "1"  # runtime.deterministic (the default) -> one kernel thread


@pytest.mark.mindspore
def test_mindspore_threads_that_cannot_repeat_are_refused(tmp_path):
    pytest.importorskip("mindspore", reason="MindSpore is not installed")
    done = _train("mindspore", tmp_path / "run", "runtime.threads=2")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "runtime.threads=2 with runtime.deterministic=true" in done.stderr
    assert not (tmp_path / "run").exists()


def test_curves_reach_tensorboard(cifar10, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert _train("torch", tmp_path / "run").returncode == 0
    history = store.read_record(tmp_path / "run")["history"]
    events = EventAccumulator(str(tmp_path / "run" / store.EVENTS.parent))
    events.Reload()
    top1 = events.Scalars("test/top1")
    assert [(e.step, round(e.value, 6)) for e in top1] == [(h["epoch"] + 1, round(h[TOP1], 6)) for h in history]
    assert {"train/loss", "test/loss", "schedule/lr", "schedule/n", "time/step_ms_median"} <= set(
        events.Tags()["scalars"])
