"""An attempt's side of a Ray study: the cell trains in a scratch directory of its node, never in the
results store, and what the store keeps of it travels back to the driver (commit.py) through Ray.

- Scratch root: FDABNN_SCRATCH, else `<the node's temp dir>/fdabnn-scratch`. Each attempt gets a
  folder of its own there, removed when it ends; the root is also the child's FDABNN_RESULTS, so
  the trainings of one node see each other (bench/store/activity.py) and nothing else.
- The attempt starts from the files the driver sent (`seed`: the cell's last checkpoint, its
  progress, init.json and train.log), so the child resumes exactly as it would in the store.
- A cell that starts afresh from init.from gets the source file's bytes from the driver (one Ray
  object per distinct file) with what its record says of it (`origin`: the store's path, the
  sha256); they are staged beside the run directory, outside what is sent back, and the child
  reads them in place of the store's file (bench/init/source.py), recording the store's path.
- After each epoch (the child rewrites progress.json after its checkpoint) the files the store keeps
  are sent with `send`; the last report, with the attempt's outcome, is returned.

A node therefore needs this suite installed, the data, and nothing mounted.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import store
from bench.cell_attempt import CellJob, run_cell
from bench.executors.commit import CHECKPOINTS, SHIPPED, Report
from bench.init.source import stage
from bench.store.lease import host_name

SCRATCH_ENV = "FDABNN_SCRATCH"


def scratch_root() -> Path:
    return Path(os.environ.get(SCRATCH_ENV) or Path(tempfile.gettempdir()) / "fdabnn-scratch")


def run_in_scratch(job: CellJob, seed: dict[str, bytes], send: Callable[[Report], None],
                   init: tuple[bytes, dict[str, Any]] | None = None) -> Report:
    """Run the cell `job.run_dir` names (a run id: the store's path is never sent) as attempt
    `job.attempt`, from `init` (the init.from file's bytes and origin) where the driver sent one;
    the last report, with its outcome."""
    root = scratch_root()
    (root / "attempts").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"a{job.attempt}-", dir=root / "attempts"))
    run_dir = work / job.run_dir
    try:
        for name, data in seed.items():
            path = run_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        env = {**job.env, **(stage(work / "init", *init) if init is not None else {})}
        shipper = _Shipper(run_dir, job, send)
        done = run_cell(replace(job, run_dir=str(run_dir), results=str(root), env=env), poll=shipper.poll)
        return Report(job.run_dir, job.attempt, host_name(), shipper.files(), done)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _Shipper:
    """Sends the run directory's store files each time progress.json changes (an epoch ended)."""

    def __init__(self, run_dir: Path, job: CellJob, send: Callable[[Report], None]):
        self.run_dir, self.job, self.send = run_dir, job, send
        self.seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = (self.run_dir / store.PROGRESS).stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def files(self) -> dict[str, bytes]:
        files = {}
        for name in (*CHECKPOINTS, *SHIPPED):
            try:
                files[name] = (self.run_dir / name).read_bytes()
            except FileNotFoundError:
                pass
        return files

    def poll(self) -> None:
        stamp = self._stamp()
        if stamp is None or stamp == self.seen:
            return
        self.seen = stamp
        self.send(Report(self.job.run_dir, self.job.attempt, host_name(), self.files()))
