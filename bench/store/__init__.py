"""The results store: one directory per run, every file written atomically.

    results/runs/<run-id>/
        spec.json          the resolved spec (what was asked)
        environment.json   where it ran: hardware, versions, data source
        progress.json      per-epoch metrics so far (rewritten after each epoch)
        checkpoint.<ext>   the last finished epoch, native format of the backend
        record.json        written once, when the run ends: status, final metrics, all step times
        study.json         written by the ablation runner before launching a cell: the study,
                           profile, study title and question of the run (iter_records joins them
                           into the record)
        train.log          the cell's own output, when the ablation runner launched it

Every file is written by atomic.py (a kill at any instant leaves the old or the new version,
never half of one); record.py is the schema of record.json. A record that does not parse (torn by a
crash outside this code, or edited by hand) is reported as torn, and its run is treated as
unfinished.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench.environment import REPO
# the store's whole vocabulary under one name: store.atomic_write_json, store.run_record, ...
from bench.store.atomic import atomic_path, atomic_write_bytes, atomic_write_json  # noqa: F401
from bench.store.record import run_record, timing_of  # noqa: F401

DEFAULT_RESULTS = REPO / "results"
RECORD = "record.json"
SPEC = "spec.json"
ENVIRONMENT = "environment.json"
PROGRESS = "progress.json"
CHECKPOINT_STEM = "checkpoint"
STUDY = "study.json"
LOG = "train.log"


def results_root() -> Path:
    return Path(os.environ.get("FDABNN_RESULTS", DEFAULT_RESULTS))


class TornRecord(Exception):
    """A store file exists but does not parse."""


def read_json(path: Path) -> Any | None:
    """The parsed file, None if absent; TornRecord if it exists but is not valid JSON."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TornRecord(f"{path}: not valid JSON ({exc.msg} at byte {exc.pos})") from None


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """The run's final record, or None when absent or torn (a torn record means: run it again)."""
    try:
        record = read_json(run_dir / RECORD)
    except TornRecord:
        return None
    if not isinstance(record, dict) or "status" not in record:
        return None
    return record


def read_membership(run_dir: Path) -> dict[str, Any]:
    """The study.json of an ablation cell ({"study", "profile", "study_title", "study_question"}), {} for a
    standalone run."""
    try:
        membership = read_json(run_dir / STUDY)
    except TornRecord:
        return {}
    return membership if isinstance(membership, dict) else {}


def iter_records(root: Path | None = None) -> list[dict[str, Any]]:
    """Every intact record under results/runs (or `root`), with its run directory and, for an
    ablation cell, its study and profile; a standalone run has study and profile None."""
    runs = (root or results_root()) / "runs"
    records = []
    for record_path in sorted(runs.glob(f"*/{RECORD}")):
        record = read_record(record_path.parent)
        if record is not None:
            membership = {"study": None, "profile": None, **read_membership(record_path.parent)}
            records.append({**record, **membership, "run_dir": str(record_path.parent)})
    return records
