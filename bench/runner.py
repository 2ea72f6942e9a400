"""The ablation runner: every cell of a study in its own process, one after another, resumable.

- One process a cell (bench/launcher.py: `python -m bench.cli train --run-dir DIR --spec
  DIR/spec.json`, the cell's resolved spec written there first), never two at once: a crash, a
  segfault or a framework's global state cannot reach the other cells, and step times are not
  disturbed by a neighbour. The child's output goes to DIR/train.log.
- The run directory is named from the study, profile and resolved spec, so running the study
  again finds every cell: a finished record is kept and the cell not run again; anything else
  (no record, a torn record.json, failed, nonfinite, interrupted) is run again, and training
  resumes from the cell's last epoch checkpoint.
- A cell whose process died without writing its record (killed, segfault, unsupported request)
  gets one written here, in the record schema of bench/store/record.py, with the reason.
- Exit status: 0 when every cell is finished, skipped (its backend is not installed here) or
  unsupported (its backend cannot run its precision/device here); 1 when any cell failed or
  its loss became non-finite.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

import backends
from bench import store
from bench.environment import describe
from bench.errors import Unsupported
from bench.store import Busy
from bench.estimate import Estimate, estimate, format_duration
from bench.launcher import run_child
from bench.studies import Cell, Study, expand, load_profiles, load_study

ACCEPTABLE = ("finished", "skipped", "unsupported")  # statuses that leave the exit status 0
BUSY = "busy"  # another process holds the cell (bench/store/claim.py): left to it, no record written


@dataclass
class _ProgressWatch:
    """Epochs a running cell has finished, from its progress.json, parsed again only when rewritten
    (it holds every step time, megabytes in a long run)."""

    path: Path
    mtime_ns: int = -1
    epochs: int = 0

    def epochs_done(self) -> int:
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return self.epochs
        if mtime_ns != self.mtime_ns:
            self.mtime_ns, self.epochs = mtime_ns, len(store.read_progress(self.path.parent))
        return self.epochs


@dataclass
class Outcome:
    cell: Cell
    status: str
    reason: str
    record: dict[str, Any] | None


def run_ablation(study_name: str, profile_name: str | None = None, backend_names: tuple[str, ...] | None = None,
                 device: str = "auto", seeds: tuple[int, ...] | None = None, console: Console | None = None) -> int:
    """Run (or complete) a study; write the summary; return the exit status."""
    from bench.report import write_summary

    console = console or Console()
    study = load_study(study_name)
    store.require_writable(store.results_root() / "runs")
    profiles = load_profiles()
    profile = profiles.pick(profile_name, device)
    cells = expand(study, profile, backend_names, device, seeds)
    unavailable = {name: backends.unavailable_reason(name) for name in {c.spec.backend for c in cells}}
    root = store.results_root() / "runs"
    todo = [c for c in cells if not _is_finished(root / c.run_id) and not unavailable[c.spec.backend]]
    epochs_done = {c.run_id: len(store.read_progress(root / c.run_id)) for c in todo}
    plan = estimate(todo, epochs_done, profiles.costs, store.iter_records())

    console.print(f"[bold]{study.title}[/] ({study.path}), profile [bold]{profile.name}[/]: {profile.about}")
    console.print(f"{len(cells)} cells: {len(cells) - len(todo)} finished or skipped, {len(todo)} to run")
    if todo:
        console.print(plan.describe(todo))
    outcomes = _run_cells(study, cells, unavailable, plan, root, console)
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


def _is_finished(run_dir: Path) -> bool:
    record = store.read_record(run_dir)
    return record is not None and record["status"] == "finished"


def _run_cells(study: Study, cells: list[Cell], unavailable: dict[str, str | None], plan: Estimate,
               root: Path, console: Console) -> list[Outcome]:
    outcomes = []
    spent: list[tuple[float, float]] = []  # (estimated, actual) seconds of cells run here
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), console=console, auto_refresh=False) as bar:
        overall = bar.add_task("cells", total=len(cells), info="")
        current = bar.add_task("", total=1, info="", visible=False)
        left = plan.total_s  # estimated seconds of the cells not yet started
        for index, cell in enumerate(cells):
            run_dir = root / cell.run_id
            if cell.run_id not in plan.seconds:
                record = store.read_record(run_dir)
                if record and record["status"] == "finished":
                    _repair_membership(study, cell, run_dir)
                    outcome = Outcome(cell, "finished", "", record)
                else:
                    outcome = _claimed(cell, run_dir, partial(_record_unrun, study, cell, run_dir, "skipped",
                                                              unavailable[cell.spec.backend] or ""))
            else:
                started = time.monotonic()
                left -= plan.seconds[cell.run_id]
                bar.reset(current, description=cell.name, total=cell.spec.train.epochs, visible=True, info="")
                watch = _ProgressWatch(run_dir / store.PROGRESS)
                poll = partial(_show_current, bar, overall, current, cell, watch, started, left, plan, spent)
                outcome = _claimed(cell, run_dir, partial(_launch, study, cell, run_dir, poll))
                spent.append((plan.seconds[cell.run_id], time.monotonic() - started))
                bar.console.print(f"[{index + 1}/{len(cells)}] {cell.name}: {_describe(outcome)} "
                                  f"({format_duration(spent[-1][1])})")
            outcomes.append(outcome)
            bar.update(overall, completed=index + 1)
            bar.refresh()
        bar.update(current, visible=False)
        bar.update(overall, info="")
    return outcomes


def _show_current(bar: Progress, overall: TaskID, current: TaskID, cell: Cell, watch: _ProgressWatch,
                  started: float, left: float, plan: Estimate, spent: list[tuple[float, float]]) -> None:
    """Live line of the running cell (epochs from its progress.json) and the study's ETA, the
    estimate corrected by how far off it was on the cells already run here."""
    done = watch.epochs_done()
    epochs = cell.spec.train.epochs
    ratio = sum(a for _, a in spent) / sum(e for e, _ in spent) if spent else 1.0
    elapsed = time.monotonic() - started
    eta = max(ratio * plan.seconds[cell.run_id] - elapsed, 0.0) + ratio * left
    bar.update(current, completed=done, info=f"epoch {min(done + 1, epochs)}/{epochs}")
    bar.update(overall, info=f"ETA {format_duration(eta)}")
    bar.refresh()


def _claimed(cell: Cell, run_dir: Path, work: Callable[[], Outcome]) -> Outcome:
    """`work` while holding the cell's claim; a cell another process holds is left to it."""
    try:
        with store.claim(run_dir):
            return work()
    except Busy as exc:
        return Outcome(cell, BUSY, str(exc).split(": ", 1)[1].split(";")[0], None)


def _launch(study: Study, cell: Cell, run_dir: Path, poll: Callable[[], None]) -> Outcome:
    """Run one cell in a child process (this process holds its claim) and return what it left,
    writing its record if it could not."""
    record = store.read_record(run_dir)
    if record is not None and record["status"] == "finished":  # finished by another runner meanwhile
        return Outcome(cell, "finished", "", record)
    _join_study(study, cell, run_dir)
    spec_file = run_dir / store.SPEC
    store.atomic_write_json(spec_file, cell.spec.to_dict())
    end = run_child("bench.cli", ["train", "--run-dir", str(run_dir), "--spec", str(spec_file)],
                    log=run_dir / store.LOG, poll=poll, env={store.CLAIM_ENV: str(os.getpid())})
    record = store.read_record(run_dir)
    if record is not None:
        return Outcome(cell, record["status"], record["reason"], record)
    if end.returncode == Unsupported.exit_code:  # refused before any work; `fdabnn train` said why
        return _record_unrun(study, cell, run_dir, "unsupported", end.last_line.removeprefix("error: "))
    return _record_unrun(study, cell, run_dir, "failed", end.reason())


def _repair_membership(study: Study, cell: Cell, run_dir: Path) -> None:
    """A finished cell whose study.json is torn or gone would drop out of its study's tables."""
    try:
        if store.read_membership(run_dir):
            return
    except store.TornRecord:
        pass
    _join_study(study, cell, run_dir)


def _join_study(study: Study, cell: Cell, run_dir: Path) -> None:
    """study.json: the study and profile the run belongs to; iter_records joins it to the record."""
    store.atomic_write_json(run_dir / store.STUDY, {"study": cell.study, "profile": cell.profile,
                                                    "study_title": study.title, "study_question": study.question})


def _record_unrun(study: Study, cell: Cell, run_dir: Path, status: str, reason: str) -> Outcome:
    """The record of a cell that has none of its own (skipped, unsupported, or its process died),
    written under the cell's claim. Epochs it finished before dying are taken from its progress.json."""
    _join_study(study, cell, run_dir)
    history = store.read_progress(run_dir)
    environment = describe() | {"device": cell.spec.device}
    record = store.run_record(cell.spec, run_dir, environment, history, sum(h["wall_s"] for h in history),
                              status, reason, None)
    store.atomic_write_json(run_dir / store.RECORD, record)
    return Outcome(cell, status, reason, record)


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
