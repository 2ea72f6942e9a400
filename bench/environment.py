"""Where a number was measured: hardware, OS, Python, framework versions, git commit, settings."""
from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# Environment variables that change speed or numerics; recorded when set.
RELEVANT_ENV = ("ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
                "CIFAR10_ROOT", "OPENBLAS_CORETYPE", "GLOG_v")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git(*args: str) -> str | None:
    """`git args` in the repository: its output, or None where git fails or is missing."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> str:
    # the code's state: measurements written into results/ do not make the code "dirty"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results")
    return (git("rev-parse", "HEAD") or "unknown") + ("+dirty" if dirty else "")


def describe(framework_versions: dict[str, str] | None = None) -> dict[str, Any]:
    from bench import isa

    return {
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "env": {k: os.environ[k] for k in RELEVANT_ENV if k in os.environ},
        "onednn_isa": isa.in_force(),
        "cpu_flags": isa.cpu_flags(),
        **(framework_versions or {}),
    }
