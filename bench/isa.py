"""Which instructions oneDNN may use, per framework: `ONEDNN_MAX_CPU_ISA` only where MindSpore runs.

MindSpore 2.10's bundled oneDNN takes a reference code path on AVX-512 CPUs unless capped at AVX2
(about 60 s instead of 2.5 s a training step at batch 128), and reads the cap when the library
loads. PyTorch's oneDNN reads the same variable: capped, it loses AVX512_BF16 and AMX, and a bf16
step here took 4.3 s instead of 0.28 s (fp32 0.40 against 0.38 s). So the suite sets the cap only
for processes that load MindSpore (importing backends.mindspore does, before mindspore is imported)
and gives every child it launches its own backend's setting (`child_env`), so that a PyTorch
training, bench group or micro-benchmark runs at the CPU's own ISA whatever its parent loaded. A
cap the user set is theirs: it applies to both frameworks and is kept. Every record states the
setting in force (bench.environment.RELEVANT_ENV) and the CPU's flags (`cpu_flags`).
"""
from __future__ import annotations

import os
from pathlib import Path

VARIABLE = "ONEDNN_MAX_CPU_ISA"
MINDSPORE_CAP = "AVX2"
SET_BY_SUITE = "FDABNN_ISA_CAP_SET"  # beside the variable when the suite, not the user, set it
# the CPU flags that decide how fast reduced precision runs on oneDNN
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "amx_tile")


def _set_by_user() -> bool:
    return VARIABLE in os.environ and SET_BY_SUITE not in os.environ


def cap_for_mindspore() -> None:
    """This process loads MindSpore: cap oneDNN at AVX2 unless the user chose a cap."""
    if VARIABLE not in os.environ:
        os.environ[VARIABLE] = MINDSPORE_CAP
        os.environ[SET_BY_SUITE] = "1"


def child_env(backend: str) -> dict[str, str | None]:
    """The environment changes a child of `backend` gets (None: unset)."""
    if _set_by_user():
        return {}
    if backend == "mindspore":
        return {VARIABLE: MINDSPORE_CAP, SET_BY_SUITE: "1"}
    return {VARIABLE: None, SET_BY_SUITE: None}


def in_force() -> str:
    """The ISA oneDNN may use in this process, in words."""
    value = os.environ.get(VARIABLE)
    if value is None:
        return "the CPU's own (no cap)"
    return f"{VARIABLE}={value}" + ("" if SET_BY_SUITE in os.environ else " (set by the user)")


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in FLAGS if flag in present]
    except OSError:
        pass
    return []
