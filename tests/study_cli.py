"""Running tiny studies through the real `fdabnn ablate` (PyTorch, real CIFAR-10, smoke profile), for
the runner's and the executors' tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import backends
import pytest
from bench import store
from bench.environment import REPO

CELL_TIMEOUT_S = 180  # a smoke cell takes ~10 s on the 2-core dev machine; generous for a loaded one

NEEDS_DATA_AND_TORCH = [
    pytest.mark.skipif(not os.environ.get("CIFAR10_ROOT"),
                       reason="CIFAR10_ROOT is not set: point it at a CIFAR-10 copy (make test does)"),
    pytest.mark.skipif(backends.unavailable_reason("torch") is not None,
                       reason=f"the torch backend is unavailable: {backends.unavailable_reason('torch')}"),
]


# The runner's and executors' tests are about cells' lives (resume, retries, isolation), not their
# kernels: the op-by-op backward spares each cell's process the seconds of compiling the fused one
# (its cells are labelled "-unfused"; the kernels have tests of their own). base="" keeps the fused
# backward where cells must last long enough to overlap (test_executors' serial comparisons).
BASE = "[base]\nruntime.fused_estimators = false\n"


def study(tmp_path: Path, grid: str, backends_line: str = 'backends = ["torch"]', base: str = BASE) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(f'title = "Tiny"\nquestion = "Does the runner hold?"\n{backends_line}\n{base}{grid}')
    return path


def ablate(path: Path, results: Path, *extra: str, fault: str = "", wait: bool = True,
           env: dict[str, str] | None = None):
    """`fdabnn ablate STUDY --profile smoke --device cpu *extra` into `results`: the finished process,
    or, with wait=False, the running one (stdout and stderr together); `env` adds to the environment."""
    env = {**os.environ, "FDABNN_RESULTS": str(results), "FDABNN_FAULT": fault, **(env or {})}
    command = [sys.executable, "-m", "bench.cli", "ablate", str(path), "--profile", "smoke", "--device", "cpu", *extra]
    if not wait:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=10 * CELL_TIMEOUT_S)


def launches(run_dir: Path) -> int:
    """How often a cell's process was started (the launcher heads each start in train.log)."""
    return (run_dir / store.LOG).read_text().count("\n=== ")
