"""`fdabnn bench`: train-step time and eval throughput of every estimator, per backend, precision,
batch size and compile flag, on real CIFAR-10 batches.

How a number is measured (the one harness, shared with training through Backend.clock):
- a suite (bench/suites/<name>.toml, read by bench/suite.py) lists groups; a group (backend,
  precision, batch, compile) runs in its own process (bench/launcher.py), so a crash or a
  framework's global state stays inside it;
- all cases of a group (one per estimator variant) are built side by side, warmed up (the first
  step, where compilation happens, is recorded apart), then timed in interleaved rounds (A B C ...
  A B C ...), so ratios between cases come from the same run under the same machine state;
- step boundaries are device events on CUDA and synchronise-then-host-clock on CPU; every step
  time is kept; medians, p10, p90 and images/s come from bench.timing.summarize;
- the input pipeline (gather + augment on the device) is timed alone to report its share of a step;
- eval throughput is measured once per group: in eval mode every estimator runs the same exactly
  binary forward (the noise module is off), so it does not depend on the case.
Each case's record is written atomically under results/bench/<suite>/; a rerun skips groups whose
records are all there (--fresh measures again).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import backends
from bench import isa, store
from bench.data.augment import batch_plan, plan_epoch
from bench.data.cifar10 import load_for_spec
from bench.environment import describe
from bench.errors import Unsupported, UserError
from bench.launcher import run_child
from bench.spec import build_spec
from bench.suite import Group, Suite, case_reference, group_id, load_suite
from bench.timing import summarize


MEASURED = ("ok", "diverged")  # outcomes of a measurement: only --fresh replaces them


def require_device(suite: Suite) -> None:
    """A suite for a device that no installed backend can use here exits with one line."""
    reasons = []
    for name in sorted({g.backend for g in suite.groups}):
        reason = backends.unavailable_reason(name)
        if reason is None:
            reason = backends.backend_class(name).unsupported_reason(build_spec({"backend": name,
                                                                                "device": suite.device}))
        if reason is None:
            return
        reasons.append(f"{name}: {reason}")
    hint = "; run `make bench-cpu` instead" if suite.device == "cuda" else ""
    raise Unsupported(f"bench suite '{suite.name}' needs device '{suite.device}', which no backend can use "
                      f"here ({'; '.join(reasons)}){hint}")


def out_dir(suite: Suite, root: Path | None = None) -> Path:
    return (root or store.results_root()) / "bench" / suite.name


def _record_path(directory: Path, group: Group, label: str, overrides: dict[str, Any] | None = None) -> Path:
    return directory / group_id(group.key(overrides)) / f"{label}.json"


def _case_name(label: str, overrides: dict[str, Any]) -> str:
    """A case's name in the progress lines: its label, and what a beside changes of the group."""
    return f"{label} ({', '.join(f'{k} {v}' for k, v in overrides.items())})" if overrides else label


# ---- worker: one group in this process --------------------------------------------------------

def run_group(suite: Suite, group: Group, directory: Path, console: Console) -> None:
    cases_of = {_case_name(label, overrides): (label, overrides) for label, overrides in group.cases()}
    labels = list(cases_of)
    specs = {name: suite.case_spec(group, label, overrides) for name, (label, overrides) in cases_of.items()}

    def write(name: str, record: dict[str, Any]) -> None:
        label, overrides = cases_of[name]
        store.atomic_write_json(_record_path(directory, group, label, overrides),
                                {"suite": suite.name, "group": group.key(overrides), "device": suite.device,
                                 "case": label, "spec": specs[name].to_dict(), **record,
                                 "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    try:
        for spec in specs.values():
            backends.check_runnable(spec)
    except Unsupported as exc:
        for label in labels:
            if _existing_status(directory, group, label) not in MEASURED:
                write(label, {"status": "unsupported", "reason": str(exc)})
        console.print(f"[yellow]{group.id}: unsupported[/]: {exc}")
        return

    first = specs[labels[0]]
    data = load_for_spec(first)
    cases = {label: backends.prepare(spec, data) for label, spec in specs.items()}
    environment = describe(next(iter(cases.values())).versions()) | {
        "device": first.device if first.device != "auto" else next(iter(cases.values())).device,
        "data": data.source.to_dict()}

    batches = _batch_stream(len(data.train_y), group.batch, first.train.seed)
    warm: dict[str, list[float]] = {}
    for label, backend in cases.items():
        warm[label] = _timed_steps(backend, batches, suite.warmup + 1)
        backend.pop_stats()
        console.print(f"  {label}: first step {warm[label][0]:.1f} ms (compile and warm-up included)")

    # a case whose loss goes non-finite (e.g. a large n in bf16 at the recipe's lr) leaves the
    # rounds and is recorded as diverged; the others go on
    times: dict[str, list[float]] = {label: [] for label in cases}
    diverged: dict[str, str] = {}
    steps, rounds = group.steps, group.rounds
    for _ in range(rounds):
        for label, backend in cases.items():
            if label in diverged:
                continue
            times[label].extend(_timed_steps(backend, batches, steps))
            if backend.pop_stats().nonfinite:
                diverged[label] = (f"non-finite training loss within {suite.warmup + 1 + len(times[label])} "
                                   f"steps at lr {backend.spec.optim.lr}: no step time reported")
                console.print(f"  [yellow]{label}: diverged[/] ({diverged[label]})")

    # once per key (a captured group evaluates as one graph replay, its eager cases eagerly; each
    # precision in its own)
    first_of_key = {group_id(group.key(cases_of[name][1])): backend for name, backend in reversed(cases.items())}
    eval_of_key = {key: _eval_throughput(backend, len(data.test_y)) for key, backend in first_of_key.items()}
    for label, backend in cases.items():
        eval_stats = eval_of_key[group_id(group.key(cases_of[label][1]))]
        if label in diverged:
            write(label, {"status": "diverged", "reason": diverged[label], "environment": environment})
            continue
        if not times[label]:  # nothing timed (the suite refuses steps = 0): no record rather than an empty "ok"
            continue
        timing = summarize(times[label], 0, group.batch)
        timing["first_step_ms"] = warm[label][0]
        data_ms = _data_step_ms(backend, batches, steps)
        write(label, {
            "status": "ok", "reason": "", "environment": environment, "timing": timing,
            "step_ms": times[label], "warmup_ms": warm[label],
            "data_step_ms": data_ms,
            "data_share": data_ms / timing["median_ms"] if data_ms and timing["median_ms"] else None,
            "eval": eval_stats, "peak_memory_bytes": backend.peak_memory_bytes(),
        })
        console.print(f"  {label}: median {timing['median_ms']:.2f} ms  p10 {timing['p10_ms']:.2f}  "
                      f"p90 {timing['p90_ms']:.2f}  ({timing['images_per_s']:.0f} img/s)")


def _batch_stream(num_train: int, batch: int, seed: int):
    """Batch plans of epoch after epoch, endlessly."""
    epoch = 0
    while True:
        for indices, aug in plan_epoch(num_train, batch, seed, epoch, augment=True):
            yield batch_plan(indices, aug)
        epoch += 1


def _timed_steps(backend, batches, steps: int) -> list[float]:
    lr, alpha = backend.spec.optim.lr, backend.spec.noise.alpha if backend.spec.noise.enabled else 0.0
    clock = backend.clock()
    clock.mark()
    for _ in range(steps):
        backend.train_step(next(batches), lr, alpha)
        clock.mark()
    return clock.intervals_ms()


def _data_step_ms(backend, batches, steps: int) -> float | None:
    clock = backend.clock()
    try:
        clock.mark()
        for _ in range(steps):
            backend.data_step(next(batches))
            clock.mark()
    except NotImplementedError:
        return None
    return summarize(clock.intervals_ms(), 1, 1)["median_ms"]


EVAL_WARMUP, EVAL_TIMED = 2, 3


def _eval_throughput(backend, images: int) -> dict[str, float]:
    """The median of EVAL_TIMED whole evaluations after EVAL_WARMUP untimed ones (eval graphs,
    cuDNN plans, the allocator; a CUDA-graph evaluation is captured at its second call)."""
    seconds = []
    for call in range(EVAL_WARMUP + EVAL_TIMED):
        backend.synchronize()
        start = time.perf_counter()
        backend.evaluate()
        backend.synchronize()
        if call >= EVAL_WARMUP:
            seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    return {"images": images, "seconds": median, "images_per_s": images / median, "evaluations": EVAL_TIMED}


# ---- orchestrator: every group, each in its own process ----------------------------------------

def run_suite(name: str, backends_filter: list[str] | None = None, fresh: bool = False,
              budget_s: float | None = None, console: Console | None = None) -> int:
    console = console or Console(stderr=True)
    suite = load_suite(name)
    if budget_s is not None and not (math.isfinite(budget_s) and budget_s > 0):
        raise UserError(f"--budget-s {budget_s}: expected a number of seconds > 0; it would measure nothing")
    budget = suite.budget_s if budget_s is None else budget_s
    groups = [g for g in suite.groups if not backends_filter or g.backend in backends_filter]
    if not groups:
        raise UserError(f"--backends {','.join(backends_filter or [])}: matches no group of bench suite '{name}' "
                        f"(its backends: {', '.join(sorted({g.backend for g in suite.groups}))}); it would measure "
                        "nothing")
    directory = out_dir(suite)
    store.require_writable(directory)
    start, failures = time.perf_counter(), 0
    for i, group in enumerate(groups, 1):
        done = [_existing_status(directory, group, label, overrides) for label, overrides in group.cases()]
        if not fresh and all(status in (*MEASURED, "unsupported") for status in done):
            console.print(f"[{i}/{len(groups)}] {group.id}: measured already (--fresh to measure again)")
            continue
        reason = backends.unavailable_reason(group.backend)
        left, expected = budget - (time.perf_counter() - start), group.estimate_s(suite.estimate)
        if reason or expected > left:
            # a group is never started to be killed part way: it would leave nothing
            why = reason or (f"expected to take ~{expected:.0f} s (the estimate of {suite.path.name}), "
                             f"{max(left, 0):.0f} s left of the {budget:.0f} s budget")
            for label, overrides in group.cases():
                _write_outcome(directory, suite, group, label, "skipped", why, overrides)
            console.print(f"[{i}/{len(groups)}] {group.id}: [yellow]not started[/]: {why}")
            continue
        console.rule(f"[{i}/{len(groups)}] {group.id} ({len(group.cases())} cases, ~{expected:.0f} s expected)")
        end = run_child("bench.benchmark", ["--suite", str(suite.path), "--group", group.id,
                                            "--directory", str(directory)], env=isa.child_env(group.backend))
        if not end.ok:
            failures += 1
            for label, overrides in group.cases():
                if _existing_status(directory, group, label, overrides) is None:
                    _write_outcome(directory, suite, group, label, "failed", f"group process: {end.reason()}",
                                   overrides)
    for table in results_tables(directory):
        console.print(table)
    console.print(f"records: {directory}  ({time.perf_counter() - start:.0f} s)")
    return 1 if failures else 0


def _write_outcome(directory: Path, suite: Suite, group: Group, label: str, status: str, reason: str,
                   overrides: dict[str, Any] | None = None) -> None:
    """The record of a case that was not measured, and why; a measured record stays (a budget
    spent or a backend missing this time says nothing against what was measured before)."""
    if _existing_status(directory, group, label, overrides) in MEASURED:
        return
    store.atomic_write_json(_record_path(directory, group, label, overrides), {
        "suite": suite.name, "group": group.key(overrides), "case": label, "device": suite.device,
        "status": status, "reason": reason})


def _existing_status(directory: Path, group: Group, label: str, overrides: dict[str, Any] | None = None) -> str | None:
    try:
        record = store.read_json(_record_path(directory, group, label, overrides))
    except store.TornRecord:
        return None
    return record.get("status") if isinstance(record, dict) else None


def load_records(directory: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(directory.glob("*/*.json")):
        try:
            record = store.read_json(path)
        except store.TornRecord:
            continue
        if store.bench_record_problem(record) is None:  # the summary names the others
            records.append(record)
    return records


def results_tables(directory: Path) -> list[Table]:
    """One table per group (titled with it), cases in the order their records sort."""
    records = load_records(directory)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(json.dumps(r["group"], sort_keys=True), []).append(r)
    tables = []
    for rows in groups.values():
        table = Table(title=f"{directory.name}: {group_id(rows[0]['group'])}")
        table.add_column("case", no_wrap=True)
        table.add_column("status", no_wrap=True)
        for column in ("median ms", "p90 ms", "img/s", "x STE", "data share"):
            table.add_column(column, justify="right", no_wrap=True)
        bases = {r["case"]: r["timing"]["median_ms"] for r in rows if r.get("status") == "ok"}
        for r in rows:
            if r.get("status") != "ok":
                table.add_row(r["case"], r.get("status", "?"), "", "", "", "", "")
                continue
            t, base = r["timing"], bases.get(case_reference(r["case"]))
            table.add_row(r["case"], "ok", f"{t['median_ms']:.2f}", f"{t['p90_ms']:.2f}", f"{t['images_per_s']:.0f}",
                          f"{t['median_ms'] / base:.2f}" if base else "",
                          f"{r['data_share']:.1%}" if r.get("data_share") is not None else "")
        tables.append(table)
    return tables


def _worker(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    run_group(suite, suite.group(args.group), Path(args.directory), Console(stderr=True))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="benchmark worker: one group of a suite (internal)")
    parser.add_argument("--suite", required=True, help="the suite file")
    parser.add_argument("--group", required=True, help="the group's id, e.g. torch-fp32-b128-eager")
    parser.add_argument("--directory", required=True, help="where the group's records go")
    sys.exit(_worker(parser.parse_args()))
