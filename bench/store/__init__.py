"""The results store: one directory per run, every file written atomically.

    results/runs/<run-id>/
        spec.json          the resolved spec (what was asked)
        environment.json   where it ran: hardware, versions, data source
        progress.json      per-epoch metrics so far (rewritten after each epoch)
        checkpoint.<ext>   the last finished epoch, native format of the backend
        record.json        written once, when the run ends: status, final metrics, all step times
        init.json          where the weights came from, for a run with init.from (bench/init/source.py):
                           the resolved path and the file's sha256; record.json repeats it
        study.json         written by the ablation runner before launching a cell: the study,
                           profile, study title and question of the run (iter_records joins them
                           into the record)
        train.log          the cell's own output, when the ablation runner launched it
        tensorboard/       the per-epoch curves in TensorBoard's format (events.py)
        attempts.json      Ray studies: each attempt at the cell, its host and how it ended
                           (bench/executors/commit.py); record.json repeats it as `attempts`
        .claim / .lease    who works on the run now: an flock on one host (claim.py), a lease
                           file with a heartbeat across hosts (lease.py)

Every file is written by atomic.py (a kill at any instant leaves the old or the new version,
never half of one); record.py is the schema of record.json. A record that does not parse (torn by a
crash outside this code, or edited by hand) is reported as torn, and its run is treated as
unfinished.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.environment import REPO
# the store's whole vocabulary under one name: store.atomic_write_json, store.run_record, ...
from bench.store.atomic import atomic_path, atomic_write_bytes, atomic_write_json  # noqa: F401
from bench.store.activity import HostLoad, Sharing, peers, registered  # noqa: F401
from bench.store.claim import CLAIM_ENV, Busy, claim, holder, holder_info  # noqa: F401
from bench.store.events import EVENTS, write_events  # noqa: F401
from bench.store.lease import LEASE, host_name, read_lease  # noqa: F401
from bench.store.record import (COMPLETE, STATUSES, bench_record_problem, meta_problem, record_problem,  # noqa: F401
                                run_record, timing_of)
from bench.errors import UserError

DEFAULT_RESULTS = REPO / "results"
RECORD = "record.json"
SPEC = "spec.json"
ENVIRONMENT = "environment.json"
PROGRESS = "progress.json"
CHECKPOINT_STEM = "checkpoint"
STUDY = "study.json"
LOG = "train.log"
MAX_STORE_FILE = 256 << 20  # a 400-epoch record with every step time is a few MB
SESSIONS = "sessions"  # <results>/sessions/*.json: one per `fdabnn ablate` that ran cells (bench/runner.py)


def results_root() -> Path:
    value = os.environ.get("FDABNN_RESULTS")
    if value is not None and not value.strip():
        # an empty value would put the store in the working directory, wherever that is
        raise UserError("FDABNN_RESULTS is set but empty; unset it (results/ of this checkout) or set it to a folder")
    return Path(value) if value is not None else DEFAULT_RESULTS


class TornRecord(Exception):
    """A store file exists but does not parse."""


def read_json(path: Path) -> Any | None:
    """The parsed file, None if absent; TornRecord if it exists but is not valid JSON (or a folder,
    or larger than any file the suite writes, which is not read into memory)."""
    try:
        if path.stat().st_size > MAX_STORE_FILE:
            raise TornRecord(f"{path}: {path.stat().st_size:,} bytes, larger than the {MAX_STORE_FILE:,} a store file "
                             "may be")
        text = path.read_text()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise TornRecord(f"{path}: a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise TornRecord(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TornRecord(f"{path}: not valid JSON ({exc.msg} at byte {exc.pos})") from None


def record_problem_of(run_dir: Path) -> str | None:
    """Why run_dir's record.json cannot be used (torn, or not of the record schema); None when it
    is intact or absent."""
    try:
        record = read_json(run_dir / RECORD)
    except TornRecord as exc:
        return str(exc).split(": ", 1)[1]
    return None if record is None else record_problem(record)


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """The run's final record, or None when absent, torn or not of the schema (then: run it again)."""
    try:
        record = read_json(run_dir / RECORD)
    except TornRecord:
        return None
    return record if record is not None and record_problem(record) is None else None


def read_progress(run_dir: Path) -> list[dict[str, Any]]:
    """The epochs a run has finished so far ([] when progress.json is absent, torn or malformed:
    training resumes from its checkpoint, which holds the same history)."""
    try:
        history = read_json(run_dir / PROGRESS)
    except TornRecord:
        return []
    ok = isinstance(history, list) and all(isinstance(h, dict) and "wall_s" in h for h in history)
    return history if ok else []


def checked_meta(checkpoint: Path, meta: Any) -> dict[str, Any]:
    """A checkpoint's meta as load_checkpoint returned it, refused in one line when it is not what
    this suite's training saves."""
    if problem := meta_problem(meta):
        raise UserError(f"checkpoint {checkpoint}: {problem}; it was not written by this suite: delete it to "
                        "train from scratch, or restore the run's own checkpoint")
    return meta


def require_writable(folder: Path) -> None:
    """Refuse, before any work, a results location that cannot take files."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UserError(f"results location {folder}: not a writable folder ({exc.strerror or exc}); set "
                        "FDABNN_RESULTS (or --run-dir) to a folder you can write") from None


def read_membership(run_dir: Path) -> dict[str, Any]:
    """The study.json of an ablation cell ({"study", "profile", "study_title", "study_question"}), {} for a
    standalone run; TornRecord when it cannot be read."""
    membership = read_json(run_dir / STUDY)
    if membership is not None and not (isinstance(membership, dict) and isinstance(membership.get("study"), str)):
        raise TornRecord(f"{run_dir / STUDY}: not a study membership (expected study, profile, ...)")
    return membership or {}


def scan(root: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every intact record under results/runs (or `root`), with its run directory and, for an
    ablation cell, its study and profile (a standalone run has study and profile None); and one
    line for each record.json or study.json that could not be used, naming it and why."""
    runs = (root or results_root()) / "runs"
    records, problems = [], []
    for record_path in sorted(runs.glob(f"*/{RECORD}")):
        run_dir = record_path.parent
        problem = record_problem_of(run_dir)
        if problem:
            problems.append(f"{run_dir.name}/{RECORD}: {problem}")
            continue
        try:
            membership = read_membership(run_dir)
        except TornRecord as exc:
            problems.append(f"{run_dir.name}/{STUDY}: {str(exc).split(': ', 1)[1]}")
            continue
        records.append({**read_json(record_path), "study": None, "profile": None, **membership,
                        "run_dir": str(run_dir)})
    return records, problems


def bench_scan(root: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every benchmark record under results/bench (a file holds one record or a list), and one line
    for each file or record that could not be used, naming it and why (the benchmark rewrites its
    own on the next run)."""
    bench = (root or results_root()) / "bench"
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in sorted(bench.rglob("*.json")):
        try:
            data = read_json(path)
        except TornRecord as exc:
            problems.append(f"{path.relative_to(bench)}: {str(exc).split(': ', 1)[1]}")
            continue
        for row in data if isinstance(data, list) else [data]:
            if problem := bench_record_problem(row):
                problems.append(f"{path.relative_to(bench)}: {problem}")
            else:
                rows.append(row)
    return rows, problems


def bench_records(root: Path | None = None) -> list[dict[str, Any]]:
    return bench_scan(root)[0]


def iter_records(root: Path | None = None) -> list[dict[str, Any]]:
    return scan(root)[0]
