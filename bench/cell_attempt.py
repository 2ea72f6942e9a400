"""One attempt at one cell of a study, wherever it runs: a thread of the local executor or a Ray task
on any node (so everything it needs travels in a picklable `CellJob`, and it reports a picklable
`Attempt`).

`run_cell`, shared by both executors, writes the resolved spec.json into the run directory, runs
`python -m bench.cli train --run-dir DIR --spec DIR/spec.json` in a child process
(bench/launcher.py; output to DIR/train.log) and returns what the child recorded; a child that died
without a record gets one written here, in the schema of bench/store/record.py. Locally
(`attempt`) DIR is the store's run directory, under the cell's claim (bench/store/claim.py): a
finished cell is never run again, and a cell another process holds is left to it (status "busy",
nothing written). On Ray DIR is a scratch directory of the node and the driver writes the store
(bench/executors/scratch.py, commit.py).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import backends
from bench import isa, store
from bench.environment import describe
from bench.errors import Unsupported
from bench.init import source as init_source
from bench.launcher import run_child
from bench.spec import build_spec
from bench.store.lease import host_name, lease_timeout, stale

BUSY = "busy"  # another process holds the cell: left to it, no record written


@dataclass(frozen=True)
class CellJob:
    run_dir: str
    spec: dict[str, Any]  # the resolved spec
    membership: dict[str, Any]  # study.json: study, profile, study_title, study_question
    results: str  # the results store (the child's FDABNN_RESULTS: where it registers as active)
    env: dict[str, str] = field(default_factory=dict)  # for the child, e.g. CUDA_VISIBLE_DEVICES
    where: str = "cpu"  # the device slot, for progress ("cpu", "gpu 0", ...)
    attempt: int = 1  # which attempt at the cell this is (numbered by the Ray executor's driver)


@dataclass(frozen=True)
class Attempt:
    status: str
    reason: str
    record: dict[str, Any] | None
    host: str


def attempt(job: CellJob) -> Attempt:
    run_dir = Path(job.run_dir)
    try:
        with store.claim(run_dir, where=job.where):
            record = store.read_record(run_dir)
            if record is not None and record["status"] in store.COMPLETE:  # completed by another runner meanwhile
                return Attempt(record["status"], record["reason"], record, host_name())
            if (lease := store.read_lease(run_dir)) is not None and not stale(lease, lease_timeout()):
                raise store.Busy(run_dir, f"a Ray driver on host {lease.get('host')}")  # bench/store/lease.py
            join_study(job, run_dir)
            return run_cell(job)
    except store.Busy as exc:
        return Attempt(BUSY, f"in use by {exc.holder}", None, host_name())


def run_cell(job: CellJob, poll: Callable[[], None] | None = None) -> Attempt:
    """The cell's child process in job.run_dir (the store's run directory locally, a node's scratch
    directory on Ray: bench/executors/scratch.py), `poll` called about every second while it runs;
    what it recorded, or a record written here when it died without one."""
    run_dir = Path(job.run_dir)
    spec_file = run_dir / store.SPEC
    store.atomic_write_json(spec_file, job.spec)
    env = {**isa.child_env(job.spec["backend"]), **job.env, store.CLAIM_ENV: str(os.getpid()),
           "FDABNN_RESULTS": job.results}
    end = run_child("bench.cli", ["train", "--run-dir", str(run_dir), "--spec", str(spec_file)],
                    log=run_dir / store.LOG, poll=poll, env=env)
    record = store.read_record(run_dir)
    if record is not None:
        return Attempt(record["status"], record["reason"], record, host_name())
    if end.returncode == Unsupported.exit_code:  # refused before any work; `fdabnn train` said why
        return record_unrun(job, "unsupported", end.last_line.removeprefix("error: "))
    return record_unrun(job, "failed", end.reason())


def join_study(job: CellJob, run_dir: Path) -> None:
    """study.json: the study and profile the run belongs to; the store joins it to the record."""
    store.atomic_write_json(run_dir / store.STUDY, job.membership)


def record_unrun(job: CellJob, status: str, reason: str) -> Attempt:
    """The record of a cell that has none of its own (skipped, unsupported, or its process died),
    written by the holder of the cell's claim. Epochs it finished before dying are taken from its
    progress.json."""
    run_dir = Path(job.run_dir)
    join_study(job, run_dir)
    record = unrun_record(job, status, reason)
    store.atomic_write_json(run_dir / store.RECORD, record)
    return Attempt(status, reason, record, host_name())


def unrun_record(job: CellJob, status: str, reason: str, environment: dict[str, Any] | None = None) -> dict[str, Any]:
    """`record_unrun`'s record, unwritten: the epochs from the run directory's progress.json, where
    the weights came from from its init.json; `environment` (the machine it ran on) defaults to
    this one's."""
    run_dir = Path(job.run_dir)
    spec = build_spec(job.spec)
    history = store.read_progress(run_dir)
    if environment is None:
        environment = describe() | {"device": backends.resolved_device(spec)}
    return store.run_record(spec, run_dir, environment, history, sum(h["wall_s"] for h in history), status,
                            reason, None, init_source.recorded(run_dir))
