"""The GPU check's steps, each a child process (stream.run) and the lines of the verdict it gives.

A check is met only by a measurement: a bench target by an "ok" record of this run (the store is
new every time, and the bench runs with --fresh), the tests by a JUnit report with every GPU test
passed and none skipped, the training by a finished record of a new run directory whose top-1
beats the floor measured in the same check.
"""
from __future__ import annotations

import json
import math
import re
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from bench.gpu_check import stream

TRAIN_SPEC = ["backend=torch", "precision=bf16", "estimator.name=fda", "estimator.n=9", "estimator.n_end=18",
              "noise.enabled=true"]
MIN_EPOCHS = 15
PAPER_EPOCHS = 400
TRAIN_STARTUP_S = 45  # interpreter, CUDA, data onto the device, the first compiles and captures
EPOCH_MARGIN = 1.3  # an epoch's estimate from the bench's step time, times this
# the rehearsal's toy sizes: everything but the CUDA-only parts, within a CPU's minutes
REHEARSAL_TRAIN = ["device=cpu", "data.subset=10", "data.test_subset=10", "train.batch_size=16",
                   "train.eval_batch_size=50"]
REHEARSAL_EPOCHS = 2
REHEARSAL_SUITE = {"device": '"cpu"', "warmup": 1, "steps": 1, "rounds": 1, "eval_images": 200, "batch": 16,
                   "startup_s": 15, "case_s": 8, "compiled_case_s": 150}


@dataclass(frozen=True)
class Verdict:
    met: bool
    line: str

    @classmethod
    def not_run(cls, step: str) -> "Verdict":
        return cls(False, f"{_mark(None)}  {step}: no time left before the deadline")


def _mark(met: bool | None) -> str:
    return "met   " if met else "MISSED" if met is False else "NOT MEASURED"


@dataclass
class Check:
    """The check's folders: `work` goes into the archive whole."""

    work: Path
    log: Path
    rehearse: bool

    @property
    def store(self) -> Path:
        return self.work / "store"

    def env(self) -> dict[str, str]:
        return {"FDABNN_RESULTS": str(self.store)}

    # ---- 1. the benchmark --------------------------------------------------------------------

    def suite(self) -> str:
        """The gpu suite, or for a rehearsal a copy on the CPU at toy sizes (its own name, so its
        records can never pass for a GPU's)."""
        if not self.rehearse:
            return "gpu"
        from bench.suite import SUITES

        text = (SUITES / "gpu.toml").read_text()
        for key, value in REHEARSAL_SUITE.items():
            text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        path = self.work / "gpu-rehearsal.toml"
        path.write_text(text)
        return str(path)

    def bench(self, timeout: float) -> list[Verdict]:
        budget = max(timeout - 10, 1)
        ended = stream.run(["-m", "bench.cli", "bench", "--suite", self.suite(), "--backends", "torch", "--fresh",
                            "--budget-s", f"{budget:.0f}"], timeout, self.log, self.env())
        from bench.report.benchmark import benchmark_frame, gpu_target_checks

        frame = benchmark_frame(self.store)
        if not frame.empty and self.rehearse:  # the same checks, read off the rehearsal's batch
            frame = frame.assign(**{"group.batch": 128})
        checks = gpu_target_checks(frame)
        ok = int((frame["status"] == "ok").sum()) if not frame.empty else 0
        lines = [Verdict(c.met, f"{_mark(c.met if c.measured is not None else None)}  {c.line()}") for c in checks]
        return lines + [Verdict(ended.returncode == 0 and ok > 0,
                                f"{_mark(ended.returncode == 0 and ok > 0)}  bench: {ok} cases measured, exit "
                                f"{ended.returncode} in {ended.seconds:.0f} s ({ended.last_line()})")]

    # ---- 2. the GPU tests --------------------------------------------------------------------

    def tests(self, timeout: float) -> list[Verdict]:
        report = self.work / "gpu-tests.xml"
        ended = stream.run(["-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-rA", "-s",
                            "tests/test_torch_gpu.py", f"--junitxml={report}"], timeout, self.log)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if report.is_file():
            suite = ElementTree.parse(report).getroot()
            suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
            counts = {k: int(suite.get(k, 0)) for k in counts}
        passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
        met = counts["tests"] > 0 and passed == counts["tests"] and ended.returncode == 0
        detail = "(killed at its limit) " if ended.timed_out else ""
        return [Verdict(met, f"{_mark(met)}  GPU tests (pytest -m gpu): {passed} passed, {counts['failures']} failed, "
                             f"{counts['errors']} errors, {counts['skipped']} skipped of {counts['tests']} {detail}"
                             f"(target: all pass, none skipped) in {ended.seconds:.0f} s")]

    # ---- 3. the floor, 4. the training --------------------------------------------------------

    def floor(self, timeout: float) -> dict | None:
        path = self.work / "floor.json"
        stream.run(["-m", "bench.gpu_check.floor", str(path)], timeout, self.log)
        return json.loads(path.read_text()) if path.is_file() else None

    def epochs(self, seconds_left: float) -> tuple[int, str]:
        """As many epochs as `seconds_left` holds by the bench's captured step and evaluation, at
        least MIN_EPOCHS."""
        if self.rehearse:
            return REHEARSAL_EPOCHS, "rehearsal"
        from bench.report.benchmark import benchmark_frame, gpu_target_checks

        checks = gpu_target_checks(benchmark_frame(self.store))
        step_ms, rate = checks[0].measured, checks[3].measured
        if not step_ms or not rate:
            return MIN_EPOCHS, "no bench step time to size it by"
        epoch_s = EPOCH_MARGIN * (50000 // 128 * step_ms / 1e3 + 10000 / rate)
        fit = math.floor((seconds_left - TRAIN_STARTUP_S) / epoch_s)
        return max(MIN_EPOCHS, fit), f"~{epoch_s:.1f} s an epoch by the bench"

    def train(self, timeout: float, floor: dict | None) -> list[Verdict]:
        from bench import store

        epochs, why = self.epochs(timeout)
        run_dir = self.store / "runs" / f"gpu-check-fda-n9-18+noise-bf16-e{epochs}-{time.strftime('%Y%m%d-%H%M%S')}"
        spec = [*TRAIN_SPEC, *(REHEARSAL_TRAIN if self.rehearse else ["device=cuda"]), f"train.epochs={epochs}"]
        ended = stream.run(["-m", "bench.cli", "train", *spec, "--run-dir", str(run_dir)], timeout, self.log,
                           self.env())
        record, progress = store.read_record(run_dir), store.read_progress(run_dir)
        top1s = [f"{p['Top1-Acc']:.1%}" for p in progress]
        what = f"training, FDA n 9->18 + noise, bf16, {epochs} epochs ({why})"
        if floor is None:
            return [Verdict(False, f"{_mark(None)}  {what}: no floor measured (see the log)")]
        floor_text = (f"floor {floor['top1']:.1%}: a linear classifier of the raw pixels, fitted here on "
                      f"{floor['train_images']:,} images; chance 10%")
        if record is None or record.get("status") != "finished":
            status = record.get("status") if record else f"no record, exit {ended.returncode}"
            return [Verdict(False, f"{_mark(None)}  {what}: {status} after epochs {top1s} ({ended.last_line()})")]
        top1 = record["final"]["Top1-Acc"]
        epoch_s = record["wall_s"] / max(1, record["epochs_done"])
        met = top1 > floor["top1"]
        return [Verdict(met, f"{_mark(met)}  {what}: top-1 {top1:.2%} (target > {floor_text})"),
                Verdict(True, f"        top-1 after each epoch: {', '.join(top1s)}"),
                Verdict(True, f"        {epoch_s:.1f} s an epoch with evaluation: the paper's {PAPER_EPOCHS} epochs "
                              f"would take {PAPER_EPOCHS * epoch_s / 60:.0f} min (the model zoo: 350 min)")]
