"""The local executor: `slots` threads, each running one cell's process at a time on this machine.

On GPUs each slot is tied to one GPU (slot i to GPU i // cells_per_gpu) through
CUDA_VISIBLE_DEVICES, so K = cells_per_gpu cells share each GPU; on a CPU the slots share its cores
(step times measured then are recorded as shared: bench/store/activity.py).
"""
from __future__ import annotations

import queue
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from bench.cell_attempt import Attempt, CellJob, attempt


class LocalExecutor:
    name = "local"

    def __init__(self, jobs: int, gpus: int, cells_per_gpu: int):
        self.slots = gpus * cells_per_gpu if gpus else jobs
        self._free: queue.Queue[tuple[str, dict[str, str]]] = queue.Queue()
        for slot in range(self.slots):
            if gpus:
                gpu = slot // cells_per_gpu
                self._free.put((f"gpu {gpu}", {"CUDA_VISIBLE_DEVICES": str(gpu)}))
            else:
                self._free.put(("cpu", {}))
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="cell")
        self.where = (f"local: {gpus} GPU(s) x {cells_per_gpu} cell(s) each" if gpus
                      else f"local: {self.slots} cell(s) at once on the CPU")

    def submit(self, job: CellJob) -> Future[Attempt]:
        return self._pool.submit(self._run, job)

    def _run(self, job: CellJob) -> Attempt:
        where, env = self._free.get()
        try:
            return attempt(replace(job, env={**job.env, **env}, where=where))
        finally:
            self._free.put((where, env))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
