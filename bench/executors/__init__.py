"""Where the cells of a study run: the seam between the runner and the machines.

An executor takes `CellJob`s (bench/cell_attempt.py) and returns a future `Attempt` for each; the
runner decides what to submit, retries and reports. Two implementations:

- `local` (local.py, the default): a pool of `slots` threads on this machine, each running one
  cell's child process at a time; on GPUs, `cells_per_gpu` cells on each visible GPU
  (CUDA_VISIBLE_DEVICES per slot).
- `ray` (ray_cluster.py): each attempt at a cell is a Ray core task, on a private Ray instance or
  the cluster at `address`, with num_cpus=1 and num_gpus=1/cells_per_gpu. The task trains in its
  node's scratch directory (scratch.py) and sends the files the store keeps back through Ray; the
  driver alone writes the store, and only from each cell's current attempt (commit.py). Attempts are
  numbered and retried by the runner (Ray's own retries are off), each from the last checkpoint the
  driver stored; cells are claimed across hosts with leases (bench/store/lease.py), not flocks.

Both run the same child process (bench/cell_attempt.py `run_cell`); they differ in where its run
directory is and who writes the store.
"""
from __future__ import annotations

from concurrent.futures import Future
from typing import Protocol

from bench.cell_attempt import Attempt, CellJob
from bench.errors import UserError

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    name: str
    slots: int  # cells that run at once
    where: str  # one line: what runs where, for the plan and the progress

    def submit(self, job: CellJob) -> Future[Attempt]: ...

    def close(self) -> None: ...


def make_executor(name: str, *, jobs: int, gpus: int, cells_per_gpu: int, address: str | None) -> Executor:
    """`jobs` slots on a CPU; on GPUs (gpus > 0) gpus x cells_per_gpu of them."""
    if name == "local":
        from bench.executors.local import LocalExecutor

        return LocalExecutor(jobs, gpus, cells_per_gpu)
    if name == "ray":
        from bench.executors.ray_cluster import RayExecutor

        return RayExecutor(address, jobs, gpus, cells_per_gpu)
    raise UserError(f"executor '{name}': unknown; choose one of {', '.join(EXECUTORS)}")
