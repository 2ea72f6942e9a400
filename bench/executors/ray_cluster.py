"""The Ray executor: each cell is a Ray core task (not Ray Tune: a fixed grid needs no search) that
runs the same attempt as the local executor, on whichever node Ray places it.

- `address`: join a running cluster (`ray start --head` on one node, `ray start --address=HEAD:6379`
  on the others; on Slurm, those two commands in the allocation's job script); None starts a local
  Ray instance with `slots` CPUs.
- Resources: num_cpus=1 per cell; on GPUs num_gpus=1/cells_per_gpu, so Ray packs cells_per_gpu cells
  on each GPU and sets CUDA_VISIBLE_DEVICES for them.
- max_retries: a task whose worker or node dies is run again by Ray; the new attempt takes the
  cell's claim (the dead one's went with it) and resumes from the cell's last checkpoint.
- Every node needs this suite installed and the results store at the same path (a shared file
  system): attempts write their records there, and the runner reads them.
"""
from __future__ import annotations

import os
from concurrent.futures import Future
from dataclasses import replace

from bench.cell_attempt import Attempt, CellJob, attempt
from bench.errors import UserError


def _attempt_on_node(job: CellJob) -> Attempt:
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")  # set by Ray for a task with num_gpus
    where = f"gpu {gpus}" if gpus and job.where != "cpu" else "cpu"
    return attempt(replace(job, where=where))


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None, jobs: int, gpus: int, cells_per_gpu: int, worker_retries: int):
        try:
            import ray
        except ImportError:
            raise UserError("executor 'ray': ray is not installed; run `make setup` (it is in the project's "
                            "dependencies) or use --executor local") from None
        self._ray = ray
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, include_dashboard=False, log_to_driver=False)
                else:
                    # a private instance for this study: on the loopback address, nowhere else
                    ray.init(num_cpus=jobs if not gpus else None, include_dashboard=False, log_to_driver=False,
                             _node_ip_address="127.0.0.1")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserError(f"executor 'ray': cannot {'join ' + address if address else 'start Ray'} "
                                f"({str(exc).splitlines()[0]}); start the cluster with `ray start --head` or "
                                "check --address") from None
        resources = ray.cluster_resources()
        cpus, cluster_gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
        self._gpu_share = 1.0 / cells_per_gpu if gpus else 0.0
        self.slots = max(1, cluster_gpus * cells_per_gpu if gpus else cpus)
        self._task = ray.remote(_attempt_on_node).options(num_cpus=1, num_gpus=self._gpu_share,
                                                          max_retries=worker_retries)
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        self.where = (f"ray: {nodes} node(s), {cpus} CPU(s), {cluster_gpus} GPU(s)"
                      + (f", {cells_per_gpu} cell(s) per GPU" if gpus else ""))

    def submit(self, job: CellJob) -> Future[Attempt]:
        where = "gpu" if self._gpu_share else "cpu"
        return self._task.remote(replace(job, where=where)).future()

    def close(self) -> None:
        self._ray.shutdown()
