"""The Ray executor on a cluster of several nodes on this machine (ray.cluster_utils.Cluster): a head
with no CPUs (the driver's node) and two worker nodes, each with its own scratch root and host name,
and a guard that makes any Python process of theirs fail loudly on touching a results store. So the
tests fail wherever a node would need the store mounted, as a real cluster without a shared file
system would.

(a) a study finishes with one record per cell while the nodes cannot see the store; (b) a node
killed while its cell trains: the cell finishes on the other node from its last stored epoch, two
attempts recorded, the metrics of an uninterrupted run; (c) in test_commit.py (a stale attempt
changes nothing) and here in (b): the killed attempt's reports no longer count; (d) the driver
SIGKILLed mid-study and run again: finished cells untouched, the rest resumed; (e) two drivers of
different host names on one store divide the cells, none trained twice; a cell starting from a
checkpoint in the store (init.from) gets it through the driver and learns what a local run learns;
--retries run out: a failed record, exit status 1, and the next run finishes the cell from its
stored epoch; and a private instance (no --address) is the suite's own beside a live cluster or a stale address.
The cluster is bench/executors/rehearsal.py's, with Ray's node-death detection shortened. Real CIFAR-10, smoke
profile, PyTorch; all slow (8 to 9 minutes together on 2 cores shared with a study)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest
from study_cli import BASE, NEEDS_DATA_AND_TORCH, ablate, launches, study

from bench import store
from bench.executors.commit import ATTEMPTS
from bench.executors.rehearsal import LocalCluster, private_ray_env, restore_env
from bench.metrics import METRIC_KEYS

pytestmark = [*NEEDS_DATA_AND_TORCH, pytest.mark.slow]

# approx_sign cells sleep a second a step on the nodes (FDABNN_FAULT slow): long enough to be caught
# training; ste cells run at full speed
SLOW_FAULT = "approx_sign:slow"
FAST = '[[grid]]\nestimator.name = ["ste"]\n'
SLOW = '[[grid]]\nestimator.name = ["approx_sign"]\ntrain.epochs = [4]\n'
MIXED = '[[grid]]\nestimator.name = ["ste", "approx_sign"]\ntrain.epochs = [4]\n'
TIMEOUT_S = 600

class Nodes(LocalCluster):
    """The cluster (bench/executors/rehearsal.py), node deaths noticed within about a second as Ray's own
    tests shorten them, the stores' root (forbidden to the nodes) and each worker node by host name."""

    def __init__(self, tmp: Path):
        self.stores = tmp / "stores"
        self.stores.mkdir()
        super().__init__(tmp, self.stores, node_env={"FDABNN_FAULT": SLOW_FAULT}, fast_health_checks=True)

    def store(self, name: str) -> Path:
        return self.stores / name / "results"


@pytest.fixture(scope="module")
def nodes():
    pytest.importorskip("ray")
    # Ray's sockets and sessions in a short folder of our own, not the machine's /tmp/ray
    tmp = Path(tempfile.mkdtemp(prefix="r23-", dir="/tmp"))
    old = private_ray_env(tmp)
    cluster = Nodes(tmp)
    yield cluster
    cluster.shutdown()
    restore_env(old)
    shutil.rmtree(tmp, ignore_errors=True)


def _ray(nodes: Nodes, path: Path, results: Path, *extra: str, wait: bool = True, env: dict | None = None):
    return ablate(path, results, "--executor", "ray", "--address", nodes.address, *extra, wait=wait, env=env)


def _run_dirs(results: Path) -> dict[str, Path]:
    return {p.name: p for p in (results / "runs").iterdir() if p.is_dir()}


def _attempts(run_dir: Path) -> list[dict]:
    try:
        return json.loads((run_dir / ATTEMPTS).read_text())
    except (OSError, ValueError):
        return []


def _curve(record: dict) -> list[tuple]:
    """What a run learned, epoch by epoch (its times aside)."""
    return [tuple(epoch[k] for k in (*METRIC_KEYS, "train_loss", "train_acc")) for epoch in record["history"]]


def _files(run_dir: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(run_dir)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in run_dir.rglob("*") if p.is_file()}


def _wait_for(condition, what: str, runner=None, timeout: float = TIMEOUT_S / 2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if runner is not None and runner.poll() is not None:
            raise AssertionError(f"the runner ended before {what}: {runner.communicate()[0].decode()}")
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def study_a(nodes, tmp_path_factory):
    """(a)'s study: two cells on the cluster, the store out of the nodes' reach (the finished process, the store)."""
    results = nodes.store("a")
    return _ray(nodes, study(tmp_path_factory.mktemp("a"), FAST), results, "--seeds", "0,1"), results


def test_a_study_finishes_while_the_nodes_cannot_see_the_store(nodes, study_a):
    import ray

    ray.init(address=nodes.address, log_to_driver=False)
    try:  # the guard holds on the nodes: a task that reads the store fails
        probe = nodes.store("probe")
        probe.mkdir(parents=True)
        (probe / "x").write_text("x")
        with pytest.raises(Exception, match="touched the results store"):
            ray.get(ray.remote(num_cpus=1, max_retries=0)(lambda: Path(probe / "x").read_text()).remote())
    finally:
        ray.shutdown()
    done, results = study_a
    assert done.returncode == 0, done.stdout + done.stderr
    assert "executor ray: 3 node(s), 2 CPU(s), 0 GPU(s)" in done.stdout
    records = store.iter_records(results)
    assert len(records) == 2 and {r["status"] for r in records} == {"finished"}
    for record in records:
        (attempt,) = record["attempts"]
        assert attempt["host"] in nodes.nodes and attempt["ended"] == "finished"
        run_dir = Path(record["run_dir"])
        assert {"study.json", "spec.json", "progress.json", "checkpoint.pt", "train.log"} <= set(os.listdir(run_dir))
        assert (run_dir / store.EVENTS).is_file() and launches(run_dir) == 1
        assert not (run_dir / store.LEASE).exists()
    assert not (results / ".active").exists()  # the trainings registered in their nodes' scratch roots
    assert any((nodes.scratch / host / ".active").exists() for host in nodes.nodes)


def test_a_cell_starts_from_a_checkpoint_in_the_store(nodes, study_a, tmp_path):
    """init.from names a run of the store, which the nodes cannot see: the driver ships its checkpoint,
    the record says the store's path and the file's sha256, and the cell learns exactly what the same
    cell learns with the local executor from the same file."""
    from bench.data.checksum import file_sha256
    from bench.init.reference import label_suffix

    _, source_results = study_a
    source = sorted(_run_dirs(source_results).values())[0]
    path = study(tmp_path, FAST, base=BASE + f'init.from = "{source}"\n')
    on_ray = _ray(nodes, path, nodes.store("init"))
    assert on_ray.returncode == 0, on_ray.stdout + on_ray.stderr
    # one kernel thread, as Ray gives a task of num_cpus=1: the same sums in the same order
    local = ablate(path, tmp_path / "local", env={"OMP_NUM_THREADS": "1"})
    assert local.returncode == 0, local.stdout + local.stderr
    (record,), (reference,) = store.iter_records(nodes.store("init")), store.iter_records(tmp_path / "local")
    checkpoint = source / "checkpoint.pt"
    assert record["init"]["sha256"] == file_sha256(checkpoint) and record["init"]["path"] == str(checkpoint.resolve())
    assert record["init"]["run_id"] == source.name and record["init"] == reference["init"]
    assert record["label"] == reference["label"] and label_suffix(str(source)) in record["label"]
    assert _curve(record) == _curve(reference) and record["final"] == reference["final"]
    assert [a["ended"] for a in record["attempts"]] == ["finished"]


def test_two_drivers_of_different_hosts_divide_the_cells(nodes, tmp_path):
    results, path = nodes.store("e"), study(tmp_path, FAST)
    drivers = [_ray(nodes, path, results, "--seeds", "0,1,2,3", wait=False, env={"FDABNN_HOST": host})
               for host in ("driver-1", "driver-2")]
    outputs = [d.communicate(timeout=TIMEOUT_S)[0].decode() for d in drivers]
    assert {d.returncode for d in drivers} <= {0, 4}, outputs  # 4: some cells left to the other
    records = store.iter_records(results)
    assert len(records) == 4
    for record in records:
        assert len(record["attempts"]) == 1 and launches(Path(record["run_dir"])) == 1  # trained once
    assert {r["attempts"][0]["driver"] for r in records} == {"driver-1", "driver-2"}, outputs  # divided


@pytest.fixture(scope="module")
def uninterrupted(nodes, tmp_path_factory) -> dict:
    """The slow cell's record, trained on one node without interruption."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    results = nodes.store("reference")
    done = _ray(nodes, study(tmp, SLOW), results)
    assert done.returncode == 0, done.stdout + done.stderr
    (record,) = store.iter_records(results)
    return record


def test_a_killed_driver_loses_nothing_committed(nodes, uninterrupted, tmp_path):
    results, path = nodes.store("d"), study(tmp_path, MIXED)
    runner = _ray(nodes, path, results, wait=False)

    def fast_done_and_slow_started() -> bool:
        runs = _run_dirs(results) if (results / "runs").exists() else {}
        fast = [d for name, d in runs.items() if "-ste-" in name]
        slow = [d for name, d in runs.items() if "-approx_sign-" in name]
        return bool(fast and slow and (fast[0] / store.RECORD).exists() and store.read_progress(slow[0]))

    _wait_for(fast_done_and_slow_started, "the fast cell finished and the slow one stored an epoch", runner)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    runs = _run_dirs(results)
    (fast,) = [d for name, d in runs.items() if "-ste-" in name]
    (slow,) = [d for name, d in runs.items() if "-approx_sign-" in name]
    finished = _files(fast)
    stored_epochs = len(store.read_progress(slow))
    assert store.read_record(slow) is None
    again = _ray(nodes, path, results)  # its lease names a dead process of this host: taken at once
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 done, 1 to run" in again.stdout
    assert _files(fast) == finished  # untouched, to the nanosecond
    record = store.read_record(slow)
    assert record["status"] == "finished" and _curve(record) == _curve(uninterrupted)
    assert record["final"] == uninterrupted["final"]
    assert [(a["attempt"], a["ended"]) for a in record["attempts"]] == [
        (1, "abandoned: its driver stopped"), (2, "finished")]
    log = (slow / store.LOG).read_text()
    assert launches(slow) == 2 and f"resuming {slow.name} after epoch {stored_epochs}" in log, log


def test_a_node_killed_mid_cell_costs_one_epoch(nodes, uninterrupted, tmp_path):
    results = nodes.store("b")
    runner = _ray(nodes, study(tmp_path, SLOW), results, "--retries", "1", wait=False)
    _wait_for(lambda: (results / "runs").exists() and any(_run_dirs(results)), "the cell started", runner)
    (run_dir,) = _run_dirs(results).values()
    _wait_for(lambda: store.read_progress(run_dir) and _attempts(run_dir) and _attempts(run_dir)[0]["host"],
              "an epoch stored", runner)
    host = _attempts(run_dir)[0]["host"]
    killed_at = nodes.kill(host)
    stored = store.read_progress(run_dir)
    output = runner.communicate(timeout=TIMEOUT_S)[0].decode()
    assert runner.returncode == 0, output
    record = store.read_record(run_dir)
    assert record["status"] == "finished", output
    first, second = record["attempts"]
    assert first["host"] == host and first["ended"].startswith("lost: ") and second["ended"] == "finished"
    assert second["host"] != host and second["host"] in nodes.nodes
    log = (run_dir / store.LOG).read_text()
    resumed = int(log.split(f"resuming {run_dir.name} after epoch ")[1].split()[0])
    assert resumed >= len(stored) >= 1, log  # from the last epoch the driver stored, never from scratch
    assert _curve(record) == _curve(uninterrupted) and record["final"] == uninterrupted["final"]
    assert len(list(run_dir.glob(store.RECORD + "*"))) == 1
    restart = datetime.fromisoformat(second["started_at"]).timestamp()
    print(f"node death to the cell's next attempt: {restart - killed_at:.1f} s")
    nodes.add(host)  # the cluster as it was, for any test after this one


def test_when_the_retries_run_out_the_cell_fails_and_resumes_later(nodes, uninterrupted, tmp_path):
    """--retries 0 and the cell's node killed: a `failed` record naming the lost attempt and the epochs
    stored, exit status 1; the same command again finishes it from the last stored epoch, equal to an
    uninterrupted run."""
    results, path = nodes.store("retries"), study(tmp_path, SLOW)
    runner = _ray(nodes, path, results, "--retries", "0", wait=False)
    _wait_for(lambda: (results / "runs").exists() and any(_run_dirs(results)), "the cell started", runner)
    (run_dir,) = _run_dirs(results).values()
    _wait_for(lambda: store.read_progress(run_dir) and _attempts(run_dir) and _attempts(run_dir)[0]["host"],
              "an epoch stored", runner)
    host = _attempts(run_dir)[0]["host"]
    nodes.kill(host)
    output = runner.communicate(timeout=TIMEOUT_S)[0].decode()
    assert runner.returncode == 1, output
    failed = store.read_record(run_dir)
    assert failed["status"] == "failed" and failed["epochs_done"] >= 1, output
    (only,) = failed["attempts"]
    assert only["host"] == host and only["ended"].startswith("lost: ")
    nodes.add(host)
    again = _ray(nodes, path, results)
    assert again.returncode == 0, again.stdout + again.stderr
    record = store.read_record(run_dir)
    assert record["status"] == "finished" and record["final"] == uninterrupted["final"]
    assert _curve(record) == _curve(uninterrupted)
    assert [a["ended"].split(":")[0] for a in record["attempts"]] == ["lost", "finished"]


@pytest.mark.parametrize("left_behind", ["a stale address", "a live cluster's address"])
def test_a_private_instance_is_the_suites_own(nodes, tmp_path, left_behind):
    """No --address: a study starts its own Ray even where `ray start` left an address behind in
    <RAY_TMPDIR>/ray/ray_current_cluster, dead (connecting fails) or live (another's cluster)."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="r23p-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    (ray_tmp / "ray").mkdir(parents=True)
    address = "127.0.0.1:1" if left_behind == "a stale address" else nodes.address
    (ray_tmp / "ray" / "ray_current_cluster").write_text(address)
    results = nodes.store(f"private-{left_behind.split()[1]}")
    done = ablate(study(tmp_path, FAST), results, "--executor", "ray", "--jobs", "1",
                  env={"RAY_TMPDIR": str(ray_tmp), "RAY_ADDRESS": address})
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert "executor ray: 1 node(s), 1 CPU(s), 0 GPU(s)" in done.stdout  # its own, not the 3-node cluster
    (record,) = store.iter_records(results)
    assert record["status"] == "finished"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-x", "-q"]))
