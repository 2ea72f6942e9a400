"""The Ray executor: each attempt at a cell is a Ray core task (not Ray Tune: a fixed grid needs no
search) on whichever node Ray places it; this process, the driver, is the only one that writes the
results store. Nodes need this suite and the data installed, and no shared file system.

- `address`: join a running cluster (`ray start --head` on one node, `ray start --address=HEAD:6379`
  on the others; on Slurm, those two commands in the allocation's job script). None starts a private
  Ray instance for this study alone (`address="local"`): never the cluster RAY_ADDRESS or an earlier
  `ray start` (its address left in /tmp/ray/ray_current_cluster) points at.
- Resources: num_cpus=1 per cell; on GPUs num_gpus=1/cells_per_gpu, so Ray packs cells_per_gpu cells
  on each GPU and sets CUDA_VISIBLE_DEVICES for them.
- One writer: the task trains in its node's scratch directory (scratch.py) and reports each epoch's
  files through a Ray queue that lives on the driver's node; the driver writes them (commit.py),
  and the study's membership, spec.json and summary, into the store.
- init.from: the driver resolves the source in the store (bench/init/source.py) and puts each
  distinct file into Ray's object store once, so cells starting from one checkpoint share one
  object; a cell that resumes from its own checkpoint gets none. Its record says the store's path
  and the file's sha256, as a local run's does.
- Numbered attempts and the driver's retries: tasks run with max_retries=0. An attempt whose worker
  or node is lost ends "lost" in attempts.json and leaves the cell a 'failed' record (as a local
  child that died does); the runner submits the cell again (up to --retries) and the new attempt
  starts, on any node, from the last epoch checkpoint the driver stored, shipped to it through
  Ray. Reports of any attempt but the cell's current one are dropped.
- Leases across hosts: the driver holds each cell's lease (bench/store/lease.py) while it runs it,
  so two drivers on one store, on any hosts, never train the same cell; a lease whose heartbeat is
  older than FDABNN_LEASE_TIMEOUT_S is taken over by the next driver (a killed one's at once on its
  own host).
"""
from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import store
from bench.cell_attempt import BUSY, Attempt, CellJob, join_study
from bench.errors import UserError
from bench.executors.commit import Committer, Report
from bench.init import source as init_source
from bench.spec import build_spec
from bench.store.lease import Lease, acquire, lease_timeout

PUMP_S = 0.2  # how often the driver drains the reports and looks for ended tasks


def _attempt_on_node(job: CellJob, seed: dict[str, bytes], init_file: bytes | None, init_origin: dict | None,
                     outbox: Any) -> Report:
    """The Ray task: one attempt in this node's scratch directory (its reports into `outbox`), from
    the init.from file's bytes where the cell starts from one."""
    import os

    from bench.executors.scratch import run_in_scratch

    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")  # set by Ray for a task with num_gpus
    where = f"gpu {gpus}" if gpus and job.where != "cpu" else "cpu"
    init = (init_file, init_origin) if init_file is not None and init_origin is not None else None
    return run_in_scratch(replace(job, where=where), seed, outbox.put, init)


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None, jobs: int, gpus: int, cells_per_gpu: int):
        lease_timeout()  # a bad FDABNN_LEASE_TIMEOUT_S is refused before Ray starts
        try:
            import ray
            from ray.util.queue import Empty, Queue
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        except ImportError:
            raise UserError("executor 'ray': ray is not installed; run `make setup` (it is in the project's "
                            "dependencies) or use --executor local") from None
        self._ray, self._empty = ray, Empty
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, include_dashboard=False, log_to_driver=False)
                else:
                    # a private instance for this study, on the loopback address: "local" starts one even
                    # where RAY_ADDRESS is set or `ray start` left its address behind
                    ray.init(address="local", num_cpus=jobs if not gpus else None, include_dashboard=False,
                             log_to_driver=False, _node_ip_address="127.0.0.1")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserError(f"executor 'ray': cannot {'join ' + address if address else 'start Ray'} "
                                f"({str(exc).splitlines()[0]}); start the cluster with `ray start --head` or "
                                "check --address") from None
        resources = ray.cluster_resources()
        cpus, cluster_gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
        self._gpu_share = 1.0 / cells_per_gpu if gpus else 0.0
        self.slots = max(1, cluster_gpus * cells_per_gpu if gpus else cpus)
        self._task = ray.remote(_attempt_on_node).options(num_cpus=1, num_gpus=self._gpu_share, max_retries=0)
        # the reports' way back: an actor on this node, so that losing any other node loses none of them
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self._outbox = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        self.where = (f"ray: {nodes} node(s), {cpus} CPU(s), {cluster_gpus} GPU(s)"
                      + (f", {cells_per_gpu} cell(s) per GPU" if gpus else ""))
        self._committer = Committer(store.results_root() / "runs")
        self._init_files: dict[tuple[str, int, int], tuple[Any, dict[str, Any]]] = {}  # file -> (object, origin)
        self._leases: dict[str, Lease] = {}
        self._pending: dict[Any, tuple[Future[Attempt], CellJob, int]] = {}  # task -> (future, job, attempt)
        self._lock = threading.Lock()
        self._broken: Exception | None = None  # why the pump stopped, if it did
        self._stop = threading.Event()
        self._pump_thread = threading.Thread(target=self._pump, name="ray reports", daemon=True)
        self._pump_thread.start()

    def submit(self, job: CellJob) -> Future[Attempt]:
        future: Future[Attempt] = Future()
        run_dir = Path(job.run_dir)
        try:
            lease = self._lease(run_dir)
        except store.Busy as exc:
            future.set_result(Attempt(BUSY, f"in use by {exc.holder}", None, ""))
            return future
        record = store.read_record(run_dir)
        if record is not None and record["status"] in store.COMPLETE:  # completed by another driver meanwhile
            self._release(run_dir.name)
            future.set_result(Attempt(record["status"], record["reason"], record, ""))
            return future
        try:
            init_file, init_origin = self._init_source(job, run_dir)
        except UserError as exc:  # the source went missing since the runner checked it
            self._release(run_dir.name)
            future.set_exception(exc)
            return future
        join_study(job, run_dir)
        store.atomic_write_json(run_dir / store.SPEC, job.spec)
        attempt = self._committer.begin(run_dir.name)
        lease.set(attempt=attempt)
        seed = self._ray.put(self._committer.seed(run_dir.name))
        # the task learns the cell's name, never the store's path
        remote = replace(job, run_dir=run_dir.name, results="", attempt=attempt,
                         where="gpu" if self._gpu_share else "cpu")
        task = self._task.remote(remote, seed, init_file, init_origin, self._outbox)
        with self._lock:
            if self._broken is not None:
                future.set_exception(self._broken)
            else:
                self._pending[task] = (future, job, attempt)
        return future

    def _init_source(self, job: CellJob, run_dir: Path) -> tuple[Any, dict[str, Any] | None]:
        """The init.from file the cell starts from, as a Ray object put once per distinct file, and
        what its record says of it; (None, None) where it names none or the cell resumes from its own
        checkpoint."""
        spec = build_spec(job.spec)
        if not init_source.wanted(spec, run_dir):
            return None, None
        path, source_run = init_source.locate(spec)
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in self._init_files:
            origin = init_source.provenance(spec.init.from_, path, source_run)
            self._init_files[key] = (self._ray.put(path.read_bytes()), origin)
        ref, origin = self._init_files[key]
        return ref, {**origin, "from": spec.init.from_}

    def _lease(self, run_dir: Path) -> Lease:
        lease = self._leases.get(run_dir.name)
        if lease is None or lease.lost:
            lease = acquire(run_dir)
            if (holder := store.holder(run_dir)) is not None:  # a local runner or `fdabnn train` on this host
                lease.release()
                raise store.Busy(run_dir, holder)
            self._leases[run_dir.name] = lease
        return lease

    def _release(self, run_id: str) -> None:
        if (lease := self._leases.pop(run_id, None)) is not None:
            lease.release()

    def _pump(self) -> None:
        """Until close(): write every report into the store and settle every ended task. If the store
        cannot be written (a full disk), every waiting cell fails with that error rather than wait."""
        try:
            self._pump_until_closed()
        except Exception as exc:
            with self._lock:
                self._broken = exc
                waiting, self._pending = list(self._pending.values()), {}
            for future, _, _ in waiting:
                future.set_exception(exc)

    def _pump_until_closed(self) -> None:
        while not self._stop.is_set():
            self._drain()
            self._check_leases()
            with self._lock:
                tasks = list(self._pending)
            if not tasks:
                self._stop.wait(PUMP_S)
                continue
            ended, _ = self._ray.wait(tasks, num_returns=len(tasks), timeout=PUMP_S)
            if ended:
                self._drain()  # a task's reports are queued before its return: take them first
            for task in ended:
                self._settle(task)

    def _drain(self) -> None:
        while True:
            try:
                report = self._outbox.get_nowait()
            except self._empty:
                return
            if self._committer.accept(report) and (lease := self._leases.get(report.run_id)) is not None \
                    and lease.info.get("where") != report.host:
                lease.set(where=report.host)  # shown with the cell's progress

    def _check_leases(self) -> None:
        for run_id, lease in list(self._leases.items()):
            if lease.lost and (attempt := self._committer.current(run_id)) is not None:
                self._committer.end(run_id, attempt, "abandoned: its lease was taken over by another driver")

    def _settle(self, task: Any) -> None:
        with self._lock:
            future, job, attempt = self._pending.pop(task)
        run_id = Path(job.run_dir).name
        try:
            report: Report = self._ray.get(task)
        except Exception as exc:  # the worker or its node died (WorkerCrashedError, NodeDiedError, ...)
            how = f"lost: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            lost = self._committer.lost(job, attempt, how)  # a 'failed' record, as a local child that died gets
            future.set_result(lost or Attempt(BUSY, "its lease was taken over by another driver", None, ""))
            return
        if not self._committer.accept(report):
            future.set_result(Attempt(BUSY, "its lease was taken over by another driver", None, report.host))
            return
        done = self._committer.final(report)
        if done.status != "failed":
            self._release(run_id)  # final; a failed cell keeps its lease for the runner's retry
        future.set_result(done)

    def close(self) -> None:
        self._stop.set()
        self._pump_thread.join()
        for run_id in list(self._leases):
            self._release(run_id)
        self._ray.shutdown()
