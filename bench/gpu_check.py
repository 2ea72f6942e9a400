"""`make gpu-check`: the one command to run on a GPU machine (issue #10), within 8 minutes on one
H100 with that machine's own torch (no .venv, no MindSpore).

1. `pytest -m gpu`: the CUDA paths, captured steps equal to eager ones, learning on real images;
2. the core groups of the `gpu` benchmark suite (the captured and the eager step of every core
   estimator, bf16, batch 128, in one process), recorded under results/bench/gpu/;
3. a real short training, FDA n 9 -> 18 with the noise module, bf16, all 50,000 training images,
   SHORT_EPOCHS epochs, that must reach SHORT_TOP1 on all 10,000 test images, recorded under
   results/runs/;
then one line per check and a non-zero exit if any failed. CIFAR-10 is read from $CIFAR10_ROOT, else
from the repository's git-ignored .data/ (a copy that travels to the GPU machine), else downloaded.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

from bench import store
from bench.environment import REPO

SHORT_EPOCHS = 15
# A floor, fixed before any GPU run: a binarized ResNet-20 that learns passes 70% within a few
# epochs of full data; a broken step (no learning, a wrong gradient) stays far below
SHORT_TOP1 = 0.70
SHORT_SPEC = ["backend=torch", "device=cuda", "precision=bf16", "estimator.name=fda", "estimator.n=9",
              "estimator.n_end=18", "noise.enabled=true", f"train.epochs={SHORT_EPOCHS}"]
BENCH_BUDGET_S = 200  # the core groups come first in bench/suites/gpu.toml; later ones are cut


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    seconds: float

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail} ({self.seconds:.0f} s)"


def _run(args: list[str], timeout: float) -> tuple[int, str, float]:
    start = time.monotonic()
    try:
        done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, output = 124, f"timed out after {timeout:.0f} s: {(exc.stdout or b'')[-2000:]!r}"
    sys.stderr.write(output[-6000:])
    return code, output, time.monotonic() - start


def _last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:160] if lines else "no output"


def gpu_tests() -> Check:
    code, output, seconds = _run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                                  "tests/test_torch_gpu.py"], 240)
    return Check("pytest -m gpu", code == 0, _last_line(output), seconds)


def gpu_bench() -> Check:
    code, output, seconds = _run([sys.executable, "-m", "bench.cli", "bench", "--suite", "gpu", "--backends", "torch",
                                  "--budget-s", str(BENCH_BUDGET_S)], BENCH_BUDGET_S + 120)
    return Check("bench-gpu core groups", code == 0, f"records in {store.results_root() / 'bench' / 'gpu'}; "
                 + _last_line(output), seconds)


def short_training() -> Check:
    run_dir = store.results_root() / "runs" / f"gpu-check-fda-n9-18+noise-bf16-e{SHORT_EPOCHS}"
    code, output, seconds = _run([sys.executable, "-m", "bench.cli", "train", *SHORT_SPEC, "--run-dir", str(run_dir)],
                                 300)
    record = store.read_record(run_dir)
    if code != 0 or record is None or record["status"] != "finished":
        return Check("short training", False, _last_line(output), seconds)
    top1 = record["final"]["Top1-Acc"]
    per_epoch = record["wall_s"] / max(1, record["epochs_done"])
    return Check(f"short training ({SHORT_EPOCHS} epochs, FDA n 9->18 + noise, bf16, 50,000 images)",
                 top1 >= SHORT_TOP1, f"top-1 {top1:.2%} on 10,000 test images (floor {SHORT_TOP1:.0%}), "
                 f"{per_epoch:.1f} s an epoch with evaluation; {run_dir}", seconds)


def main() -> int:
    local = REPO / ".data"
    if not os.environ.get("CIFAR10_ROOT") and local.is_dir():
        os.environ["CIFAR10_ROOT"] = str(local)
    checks = [gpu_tests(), gpu_bench(), short_training()]
    code, output, _ = _run([sys.executable, "-m", "bench.cli", "summary"], 120)
    print("\ngpu-check:")
    for check in checks:
        print(check.line())
    print(f"summary: {'rewritten' if code == 0 else 'FAILED: ' + _last_line(output)} (results/summary.md, "
          "results/benchmarks.md)")
    return 0 if all(c.passed for c in checks) and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
