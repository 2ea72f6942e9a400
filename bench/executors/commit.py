"""The driver's side of a Ray study: the one process that writes cells into the results store.

An attempt trains in a node's scratch directory (scratch.py) and sends the driver `Report`s: after
each epoch the files the store keeps of a running cell (the last checkpoint, progress.json, the
TensorBoard events, train.log), and at its end the same with how it ended and its record.
`Committer.accept` writes them atomically into `<results>/runs/<run>/`, but only for the cell's
current attempt: attempts are numbered (`begin`), and a report of an attempt that was declared lost,
retired or superseded is dropped and counted, so an attempt that still runs somewhere after its node
was declared dead wastes compute and nothing else.

`<run>/attempts.json` (written here only) lists each attempt: its id, the host it ran on, the
driver's host, when the driver started and ended it (ISO 8601, to the millisecond), and how it
ended ("finished", "failed: <why>", "lost: <Ray's error>", or "abandoned: ..." for one whose
driver stopped); the record carries that list as `attempts`. Ids continue across drivers: a study
run again after its driver was killed numbers its attempts on from the last one.

An attempt lost with its worker or node (`lost`) leaves the cell a 'failed' record, as the local
executor records a child that died (bench/cell_attempt.py record_unrun): the epochs the driver
stored, the reason naming the loss; 'failed' is not complete, so the runner's retry or a later run
resumes the cell, and the next attempt's `begin` drops that record as the training loop drops an
earlier attempt's locally.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from backends import CHECKPOINT_SUFFIXES
from bench import store
from bench.cell_attempt import Attempt, CellJob, join_study, unrun_record
from bench.init.source import INIT
from bench.store.lease import host_name
from bench.training import ERROR_LOG

log = logging.getLogger(__name__)

ATTEMPTS = "attempts.json"
# What an attempt may send into the store, besides its checkpoint (checkpoint.<suffix>): never the
# study's membership, the spec, the record (the driver writes those) or a lease.
SHIPPED = (store.PROGRESS, str(store.EVENTS), store.LOG, store.ENVIRONMENT, INIT, ERROR_LOG)
CHECKPOINTS = tuple(f"{store.CHECKPOINT_STEM}{suffix}" for suffix in CHECKPOINT_SUFFIXES)
# what the next attempt starts from: the last epoch's checkpoint and what a resumed run reads beside it
SEED = (*CHECKPOINTS, store.PROGRESS, INIT, store.LOG)


@dataclass(frozen=True)
class Report:
    """One message of an attempt to the driver: files of its scratch run directory by relative
    path, and, in its last report (the Ray task's return value), how it ended."""

    run_id: str
    attempt: int
    host: str
    files: dict[str, bytes]
    final: Attempt | None = None


def shippable(name: str) -> bool:
    return name in SHIPPED or name in CHECKPOINTS


class Committer:
    """Accepts reports of each cell's current attempt into the store (thread-safe)."""

    def __init__(self, runs: Path):
        self.runs = runs
        self._current: dict[str, int] = {}  # run id -> the attempt whose reports are accepted
        self._lock = threading.Lock()
        self.dropped = 0  # reports of stale attempts, dropped

    def begin(self, run_id: str) -> int:
        """A new attempt at the cell: its id, now the only one whose reports count. An earlier attempt
        that never ended in attempts.json belonged to a driver that stopped; an earlier attempt's
        incomplete record (failed) is dropped: this attempt writes its own."""
        with self._lock:
            attempts = self.attempts(run_id)
            for entry in attempts:
                if entry["ended"] is None:
                    entry["ended"] = "abandoned: its driver stopped"
            number = max((e["attempt"] for e in attempts), default=0) + 1
            attempts.append({"attempt": number, "host": None, "driver": host_name(), "started_at": now(),
                             "ended": None})
            self._write_attempts(run_id, attempts)
            record = store.read_record(self.runs / run_id)
            if record is not None and record["status"] not in store.COMPLETE:
                (self.runs / run_id / store.RECORD).unlink(missing_ok=True)
            self._current[run_id] = number
            return number

    def end(self, run_id: str, attempt: int, how: str) -> bool:
        """The attempt is over (its lease taken over): none of its reports counts from now on. False
        where it was not the cell's current attempt."""
        with self._lock:
            if self._current.get(run_id) != attempt:
                return False
            del self._current[run_id]
            self._set(run_id, attempt, ended=how, ended_at=now())
            return True

    def lost(self, job: CellJob, attempt: int, how: str) -> Attempt | None:
        """The attempt died with its worker or node (`how`: 'lost: <Ray's error>'): ended, and the
        cell recorded 'failed' with the epochs the driver stored and the attempts so far. `job` is
        the cell's, run_dir in the store. None where it was not the cell's current attempt."""
        run_dir = Path(job.run_dir)
        if not self.end(run_dir.name, attempt, how):
            return None
        with self._lock:
            try:
                environment = store.read_json(run_dir / store.ENVIRONMENT)  # the node's, as its last epoch sent it
            except store.TornRecord:
                environment = None
            join_study(job, run_dir)
            record = {**unrun_record(job, "failed", how, environment if isinstance(environment, dict) else None),
                      "attempts": self.attempts(run_dir.name)}
            store.atomic_write_json(run_dir / store.RECORD, record)
            return Attempt("failed", how, record, self._entry(run_dir, attempt).get("host") or "")

    def current(self, run_id: str) -> int | None:
        return self._current.get(run_id)

    def accept(self, report: Report) -> bool:
        """Write a report of the cell's current attempt into the store; drop (False) any other. A
        final report ends the attempt; its record, with the attempts list, is written last."""
        with self._lock:
            current = self._current.get(report.run_id)
            if current != report.attempt:
                self.dropped += 1
                log.warning("%s: dropped a report of attempt %d (%s); its reports no longer count", report.run_id,
                            report.attempt, f"attempt {current} is current" if current else "no attempt is current")
                return False
            run_dir = self.runs / report.run_id
            if self._entry(run_dir, report.attempt).get("host") != report.host:
                self._set(report.run_id, report.attempt, host=report.host)
            # the checkpoint before the progress that names its epoch, as the training loop writes them
            for name in sorted(report.files, key=lambda n: n not in CHECKPOINTS):
                if not shippable(name) or PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
                    log.warning("%s: attempt %d sent %r, which is not a file of the store; ignored", report.run_id,
                                report.attempt, name)
                    continue
                store.atomic_write_bytes(run_dir / name, report.files[name])
            if report.final is not None:
                final = report.final
                ended = final.status if not final.reason else f"{final.status}: {final.reason}"
                self._set(report.run_id, report.attempt, ended=ended[:300], ended_at=now())
                del self._current[report.run_id]
                if final.record is not None:
                    store.atomic_write_json(run_dir / store.RECORD,
                                            {**final.record, "attempts": self.attempts(report.run_id)})
            return True

    def final(self, report: Report) -> Attempt:
        """The attempt's outcome as the store now has it (its record carries the attempts)."""
        assert report.final is not None
        record = store.read_record(self.runs / report.run_id)
        return Attempt(report.final.status, report.final.reason, record or report.final.record, report.host)

    def seed(self, run_id: str) -> dict[str, bytes]:
        """The files the cell's next attempt starts from (its last checkpoint first of all)."""
        run_dir = self.runs / run_id
        return {name: (run_dir / name).read_bytes() for name in SEED if (run_dir / name).is_file()}

    def attempts(self, run_id: str) -> list[dict[str, Any]]:
        try:
            attempts = store.read_json(self.runs / run_id / ATTEMPTS)
        except store.TornRecord:
            attempts = None
        ok = isinstance(attempts, list) and all(isinstance(e, dict) and isinstance(e.get("attempt"), int)
                                                for e in attempts)
        return [{"host": None, "ended": None, **e} for e in attempts] if ok else []

    def _entry(self, run_dir: Path, attempt: int) -> dict[str, Any]:
        return next((e for e in self.attempts(run_dir.name) if e["attempt"] == attempt), {})

    def _set(self, run_id: str, attempt: int, **fields: Any) -> None:
        attempts = self.attempts(run_id)
        for entry in attempts:
            if entry["attempt"] == attempt:
                entry.update(fields)
        self._write_attempts(run_id, attempts)

    def _write_attempts(self, run_id: str, attempts: list[dict[str, Any]]) -> None:
        store.atomic_write_json(self.runs / run_id / ATTEMPTS, attempts)


def now() -> str:
    """This instant, ISO 8601 with the local offset, to the millisecond (datetime.fromisoformat reads it)."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")
