"""The ablation runner: every cell of a study in its own process, resumable, spread by an executor.

- Plan: the study's cells (bench/studies.py) are sorted into done, to run, and not runnable here
  (backend not installed: skipped; device or precision the backend cannot run: unsupported), each
  to-run cell with its duration estimate (bench/estimate.py). `--dry-run` prints that and stops; a
  study none of whose remaining cells can run here is refused before anything is launched.
- Run: each cell to run is one attempt (bench/cell_attempt.py: claim, child process, record) handed
  to an executor (bench/executors/): a pool of local slots (`--jobs`, or GPUs x `--cells-per-gpu`)
  or Ray tasks (`--executor ray`, `--address`). A failed attempt (an exception, or a process that
  died) is attempted again up to `retries` times, resuming from the cell's checkpoint; a non-finite
  loss is final. Cells another runner holds are left to it.
- Progress: done / failed / running counts, where each running cell runs (host, slot) and its
  epoch, and the whole study's ETA, the estimate corrected by the cells finished so far.
- Exit status: 0 when every cell is finished, skipped or unsupported; 1 when any cell failed or its
  loss became non-finite; 4 when some cells were left to another runner.
"""
from __future__ import annotations

import math
import socket
import statistics
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, TaskID, TextColumn
from rich.table import Table

import backends
from bench import store
from bench.cell_attempt import BUSY, Attempt, CellJob, join_study, record_unrun
from bench.environment import describe
from bench.errors import Unsupported, UserError
from bench.estimate import Estimate, estimate, format_duration
from bench.executors import Executor, make_executor
from bench.store import Busy
from bench.studies import Cell, Study, cuda_present, expand, gpu_count, load_profiles, load_study

# statuses that leave the exit status 0 (a diverged run is a result of the study, not a failure of it)
ACCEPTABLE = ("finished", "diverged", "skipped", "unsupported")
RETRIED = ("failed",)  # a non-finite loss is the estimator's doing: running it again changes nothing
POLL_S = 1.0


@dataclass
class Outcome:
    cell: Cell
    status: str
    reason: str
    record: dict[str, Any] | None


@dataclass(frozen=True)
class Options:
    """How to run: the CLI's flags."""

    executor: str = "local"
    jobs: int | None = None  # None: 1 on a CPU
    cells_per_gpu: int = 1
    address: str | None = None
    retries: int = 1
    dry_run: bool = False


@dataclass
class _Plan:
    cells: list[Cell]
    done: dict[str, dict[str, Any]]  # run_id -> completed (finished or diverged) record
    not_runnable: dict[str, tuple[str, str]]  # run_id -> (status, reason)
    todo: list[Cell]
    estimate: Estimate


def run_ablation(study_name: str | Study, profile_name: str | None = None,
                 backend_names: tuple[str, ...] | None = None, device: str = "auto",
                 seeds: tuple[int, ...] | None = None, console: Console | None = None,
                 options: Options = Options(), arch: str | None = None,
                 cells_of: Any = None) -> int:
    """Run (or complete) a study (by name, or a Study built elsewhere with `cells_of(profile)` making
    its cells: `make pretrain-fp`); write the summary; return the exit status."""
    from bench.report import write_summary

    console = console or Console()
    study = study_name if isinstance(study_name, Study) else load_study(study_name)
    root = store.results_root() / "runs"
    store.require_writable(root)
    profiles = load_profiles()
    profile = profiles.pick(profile_name, device)
    made = cells_of(profile) if cells_of else expand(study, profile, backend_names, device, seeds, arch)
    cells = [cell.found_in(root) for cell in made]
    gpus = gpu_count() if _uses_gpus(cells) else 0
    plan = _plan(cells, root, profiles)
    console.print(f"[bold]{study.title}[/] ({study.path}), profile [bold]{profile.name}[/]: {profile.about}")
    if not plan.todo and plan.not_runnable and not plan.done:
        reasons = sorted({reason for _, reason in plan.not_runnable.values()})
        raise Unsupported(f"study {study.name}: none of its {len(cells)} cells can run here ({'; '.join(reasons)}); "
                          "choose --device or --backends this machine has, or run it where they are")
    slots = _slots(options, gpus)
    console.print(f"{len(cells)} cells: {len(plan.done)} done, {len(plan.todo)} to run, "
                  f"{len(plan.not_runnable)} not runnable here")
    if options.dry_run:
        _print_plan(plan, options, slots, gpus, console)
        return 0
    _require_init_sources(plan.todo)
    if plan.todo:
        console.print(plan.estimate.describe(plan.todo, slots))
    started = time.time()
    outcomes = _run(study, plan, root, options, gpus, console)
    if plan.todo:
        _record_session(study, profile.name, options, slots, gpus, plan, outcomes, started)
    _print_table(outcomes, console)
    paths = write_summary()
    console.print(f"summary: {paths[0]}")
    failed = [o for o in outcomes if o.status not in (*ACCEPTABLE, BUSY)]
    busy = [o for o in outcomes if o.status == BUSY]
    if failed:
        console.print(f"[red]{len(failed)} of {len(cells)} cells did not finish[/]; their reasons are in the table "
                      "and each run directory's train.log. Run the same command again to retry them.")
    if busy:
        console.print(f"[yellow]{len(busy)} of {len(cells)} cells are being run by another process[/] (see the "
                      "table); they were left to it. Run the same command again once it is done to include them.")
    return 1 if failed else Busy.exit_code if busy else 0


def _record_session(study: Study, profile: str, options: Options, slots: int, gpus: int, plan: _Plan,
                    outcomes: list[Outcome], started: float) -> None:
    """results/sessions/<study>-<profile>-<time>-<host>.json: how long this run of the study took,
    with which executor and slots, where: the study wall times the summary compares."""
    ran = [o for o in outcomes if o.cell in plan.todo]
    name = f"{study.name}-{profile}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}-{socket.gethostname()}"
    store.atomic_write_json(store.results_root() / store.SESSIONS / f"{name}.json", {
        "study": study.name, "profile": profile, "executor": options.executor, "address": options.address,
        "jobs": options.jobs, "cells_per_gpu": options.cells_per_gpu, "gpus": gpus, "slots": slots,
        "cells": len(plan.cells), "cells_run": len(ran),
        "statuses": {status: sum(o.status == status for o in ran) for status in sorted({o.status for o in ran})},
        "wall_s": time.time() - started, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "environment": describe(),
    })


def _require_init_sources(todo: list[Cell]) -> None:
    """Every init.from of the cells to run resolves (a pretrain-fp checkpoint trained, a path there),
    before any is launched: refused in one line naming the fix (bench/init/pretrain.py). On Ray the
    driver reads it in the store and ships it to the nodes (bench/executors/ray_cluster.py)."""
    from bench.init.source import resolve, wanted

    seen = set()
    for cell in todo:
        spec, run_dir = cell.spec, store.results_root() / "runs" / cell.run_id
        key = (spec.init.from_, spec.model.name, spec.model.num_classes, spec.backend, spec.device)
        if key in seen or not wanted(spec, run_dir):
            continue  # checked already, none to load, or resuming from its own checkpoint
        seen.add(key)
        try:
            resolve(spec)
        except UserError as exc:
            raise UserError(f"study {cell.study}, cell {cell.name}: {exc}") from None


def _uses_gpus(cells: list[Cell]) -> bool:
    return any(c.spec.device == "cuda" for c in cells) or (any(c.spec.device == "auto" for c in cells)
                                                           and cuda_present())


def _slots(options: Options, gpus: int) -> int:
    return gpus * options.cells_per_gpu if gpus else (options.jobs or 1)


def _plan(cells: list[Cell], root: Path, profiles: Any) -> _Plan:
    done, not_runnable, todo = {}, {}, []
    reasons: dict[tuple[str, str, str], str | None] = {}
    for cell in cells:
        record = store.read_record(root / cell.run_id)
        if record is not None and record["status"] in store.COMPLETE:
            done[cell.run_id] = record
            continue
        spec = cell.spec
        key = (spec.backend, spec.device, spec.precision)
        if key not in reasons:
            reasons[key] = _not_runnable(cell)
        if reasons[key]:
            status, _, reason = reasons[key].partition(": ")
            not_runnable[cell.run_id] = (status, reason)
        else:
            todo.append(cell)
    epochs_done = {c.run_id: len(store.read_progress(root / c.run_id)) for c in todo}
    return _Plan(cells, done, not_runnable, todo, estimate(todo, epochs_done, profiles.costs, store.iter_records(),
                                                                 store.bench_records()))


def _not_runnable(cell: Cell) -> str | None:
    """'skipped: <why>' (backend not installed), 'unsupported: <why>' (device or precision), or None."""
    reason = backends.unavailable_reason(cell.spec.backend)
    if reason:
        return f"skipped: {reason}"
    try:
        backends.check_runnable(cell.spec)
    except Unsupported as exc:
        return f"unsupported: {str(exc).split(': ', 1)[-1]}"
    return None


def _print_plan(plan: _Plan, options: Options, slots: int, gpus: int, console: Console) -> None:
    table = Table(title="plan (--dry-run: nothing was run)", title_justify="left")
    for column in ("cell", "state", "estimate"):
        table.add_column(column)
    for cell in plan.cells:
        if cell.run_id in plan.done:
            state, est = "[green]done[/]", ""
        elif cell.run_id in plan.not_runnable:
            status, reason = plan.not_runnable[cell.run_id]
            state, est = f"[yellow]{status}[/]: {reason}", ""
        else:
            state, est = "to run", format_duration(plan.estimate.seconds[cell.run_id])
        table.add_row(cell.name, state, est)
    console.print(table)
    where = (f"{gpus} GPU(s) x {options.cells_per_gpu} cell(s) each" if gpus else f"{slots} cell(s) at once")
    console.print(f"executor {options.executor}{' at ' + options.address if options.address else ''}, {where}: "
                  + (plan.estimate.describe(plan.todo, slots) if plan.todo else "nothing to run"))


def _job(study: Study, cell: Cell) -> CellJob:
    membership = {"study": cell.study, "profile": cell.profile, "study_title": study.title,
                  "study_question": study.question}
    return CellJob(str(store.results_root() / "runs" / cell.run_id), cell.spec.to_dict(), membership,
                   str(store.results_root()))


def _run(study: Study, plan: _Plan, root: Path, options: Options, gpus: int, console: Console) -> list[Outcome]:
    outcomes: dict[str, Outcome] = {cid: Outcome(c, plan.done[cid]["status"], plan.done[cid]["reason"], plan.done[cid])
                                    for c in plan.cells if (cid := c.run_id) in plan.done}
    for cell in plan.cells:
        if cell.run_id in plan.not_runnable:
            status, reason = plan.not_runnable[cell.run_id]
            outcomes[cell.run_id] = _record_not_runnable(_job(study, cell), cell, status, reason)
    for cell in plan.cells:
        if cell.run_id in plan.done:
            _repair_membership(_job(study, cell))
    if plan.todo:
        executor = make_executor(options.executor, jobs=options.jobs or 1, gpus=gpus,
                                 cells_per_gpu=options.cells_per_gpu, address=options.address)
        try:
            outcomes.update(_dispatch(study, plan, root, executor, options.retries, console))
        finally:
            executor.close()
    return [outcomes[c.run_id] for c in plan.cells]


def _record_not_runnable(job: CellJob, cell: Cell, status: str, reason: str) -> Outcome:
    try:
        with store.claim(Path(job.run_dir)):
            done = record_unrun(job, status, reason)
    except Busy as exc:
        return Outcome(cell, BUSY, f"in use by {exc.holder}", None)
    return Outcome(cell, done.status, done.reason, done.record)


def _repair_membership(job: CellJob) -> None:
    """A finished cell whose study.json is torn or gone would drop out of its study's tables."""
    run_dir = Path(job.run_dir)
    try:
        if store.read_membership(run_dir):
            return
    except store.TornRecord:
        pass
    join_study(job, run_dir)


class _Board:
    """The live picture: one line for the study (done, failed, running, ETA), one per running cell
    (where it runs, which epoch, from its claim and its progress.json)."""

    def __init__(self, bar: Progress, plan: _Plan, slots: int):
        self.bar, self.plan, self.slots = bar, plan, slots
        self.total = len(plan.todo)
        self.study = bar.add_task("", total=None)
        self.lines: dict[str, TaskID] = {}
        self.started: dict[str, float] = {}
        self.spent: list[tuple[float, float]] = []  # (estimated, actual) of the cells finished here
        self.done = self.failed = self.left = 0  # left: held by another runner, not a failure

    def start(self, cell: Cell) -> None:
        self.started.setdefault(cell.run_id, time.monotonic())
        self.lines.setdefault(cell.run_id, self.bar.add_task("", total=None))

    def finish(self, cell: Cell, outcome: Outcome) -> None:
        self.spent.append((self.plan.estimate.seconds[cell.run_id], time.monotonic() - self.started[cell.run_id]))
        self.bar.remove_task(self.lines.pop(cell.run_id))
        self.done += outcome.status in ACCEPTABLE
        self.left += outcome.status == BUSY
        self.failed += outcome.status not in (*ACCEPTABLE, BUSY)

    def _expected(self, run_id: str) -> float:
        """A cell's seconds: its estimate scaled by how far off the estimates were on the cells
        finished here; where there was no estimate (a GPU without benchmark records), the mean
        time of the finished cells."""
        known = [(e, a) for e, a in self.spent if not math.isnan(e)]
        ratio = sum(a for _, a in known) / sum(e for e, _ in known) if known else 1.0
        estimated = self.plan.estimate.seconds[run_id]
        if math.isnan(estimated) and self.spent:
            return statistics.fmean(a for _, a in self.spent)
        return ratio * estimated

    def show(self, root: Path, waiting: list[Cell]) -> None:
        left = sum(self._expected(c.run_id) for c in waiting)
        for run_id, task in self.lines.items():
            cell = next(c for c in self.plan.todo if c.run_id == run_id)
            left += max(self._expected(run_id) - (time.monotonic() - self.started[run_id]), 0.0)
            info = store.holder_info(root / run_id) or store.read_lease(root / run_id)  # local or Ray
            place = f"{info.get('host', '?')} {info.get('where', '')}".strip() if info else "starting"
            epochs, epoch = cell.spec.train.epochs, len(store.read_progress(root / run_id)) + 1
            self.bar.update(task, description=f"  {cell.name} [{place}] epoch {min(epoch, epochs)}/{epochs}")
        eta = left / max(1, min(self.slots, len(self.lines) + len(waiting)))
        left = f"{self.left} left to another runner, " if self.left else ""
        self.bar.update(self.study, description=f"cells {self.done + self.failed + self.left}/{self.total}: "
                                                f"{self.done} done, {self.failed} failed, {left}"
                                                f"{len(self.lines)} running | "
                                                f"study ETA {format_duration(eta)}")
        self.bar.refresh()


def _dispatch(study: Study, plan: _Plan, root: Path, executor: Executor, retries: int,
              console: Console) -> dict[str, Outcome]:
    """Every cell to run through `executor`, at most executor.slots at once, retrying failed ones."""
    outcomes: dict[str, Outcome] = {}
    waiting = list(plan.todo)
    attempts: dict[str, int] = {}
    running: dict[Future[Attempt], Cell] = {}
    console.print(f"executor {executor.where}")
    with Progress(TextColumn("{task.description}"), console=console, auto_refresh=False) as bar:
        board = _Board(bar, plan, executor.slots)
        while waiting or running:
            while waiting and len(running) < executor.slots:
                cell = waiting.pop(0)
                attempts[cell.run_id] = attempts.get(cell.run_id, 0) + 1
                running[executor.submit(_job(study, cell))] = cell
                board.start(cell)
            finished, _ = wait(list(running), timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in finished:
                cell = running.pop(future)
                outcome = _outcome(cell, future)
                if outcome.status in RETRIED and attempts[cell.run_id] <= retries:
                    bar.console.print(f"{cell.name}: [yellow]{outcome.status}[/] ({outcome.reason}); attempt "
                                      f"{attempts[cell.run_id] + 1} of {retries + 1}")
                    waiting.insert(0, cell)
                    continue
                board.finish(cell, outcome)
                outcomes[cell.run_id] = outcome
                bar.console.print(f"[{len(outcomes)}/{len(plan.todo)}] {cell.name}: {_describe(outcome)} "
                                  f"({format_duration(board.spent[-1][1])})")
            board.show(root, waiting)
    return outcomes


def _outcome(cell: Cell, future: Future[Attempt]) -> Outcome:
    try:
        done = future.result()
    except Exception as exc:  # the executor lost the attempt (e.g. a Ray worker or node died past its retries)
        return Outcome(cell, "failed", f"attempt lost: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", None)
    return Outcome(cell, done.status, done.reason, done.record)


def _describe(outcome: Outcome) -> str:
    if outcome.status == "finished" and outcome.record:
        return f"[green]finished[/] top-1 {_top1(outcome.record)}, median step {_step_ms(outcome.record)} ms"
    colour = "yellow" if outcome.status in (*ACCEPTABLE, BUSY) else "red"
    return f"[{colour}]{outcome.status}[/]: {outcome.reason}"


def _top1(record: dict[str, Any]) -> str:
    top1 = record.get("final", {}).get("Top1-Acc")
    return "-" if top1 is None else f"{100 * top1:.2f}%"


def _step_ms(record: dict[str, Any]) -> str:
    median = record.get("timing", {}).get("median_ms")
    return "-" if median is None else f"{median:.0f}"


def _print_table(outcomes: list[Outcome], console: Console) -> None:
    table = Table(title="cells", title_justify="left")
    for column in ("cell", "status", "top-1", "median step ms", "reason"):
        table.add_column(column, justify="right" if column in ("top-1", "median step ms") else "left")
    for o in outcomes:
        colour = "green" if o.status == "finished" else "yellow" if o.status in (*ACCEPTABLE, BUSY) else "red"
        record = o.record or {}
        table.add_row(o.cell.name, f"[{colour}]{o.status}[/]", _top1(record), _step_ms(record), o.reason)
    console.print(table)
