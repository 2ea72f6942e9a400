"""The Ray executor measured on this machine (issue 23, item 7): `make cluster-rehearsal`, or
`python -m bench.executors.rehearsal --out results/cluster [--cells N]`.

1. The fourier-terms study at the smoke profile, PyTorch on the CPU, with the local executor
   (--jobs 2) into a temporary store: its wall time.
2. The same with the Ray executor on a 3-node local cluster (ray.cluster_utils.Cluster): a head with
   no CPUs (the driver's node) and two worker nodes of 1 CPU each, each with its own scratch root
   and host name, and a guard that fails any of their processes touching a results store (so they
   need no shared file system): its wall time, and the ratio to the local one.
3. A node's death: one cell of the study on the same cluster (the other node idle), its node removed
   with allow_graceful=False while the attempt runs; from the driver's attempts.json (times to the
   millisecond) and the nodes' scratch roots (polled every 50 ms): the seconds from the kill to the
   driver declaring the attempt lost, to its next attempt's submission, and to that attempt's start
   on the surviving node. Ray's own health checks at their defaults (a node is declared dead after
   health_check_failure_threshold missed checks, health_check_period_ms apart).

One JSON (`<out>/fourier-terms-smoke-<host>-<date>.json`) holds the wall times, the ratio, the
restart latencies, the number of cells, the machine's load before it started and where it ran
(bench.environment.describe(): hardware, versions, commit). `--cells N` takes the study's first N
fixed-n FDA cells (without the noise module) instead of its 16: a rehearsal of the rehearsal. Run
it on an otherwise idle machine: the wall times are the point.

`LocalCluster` is also the slow tests' cluster (tests/test_ray_cluster.py).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
STUDY = "fourier-terms"
PROFILE = "smoke"
POLL_S = 0.05

GUARD = '''"""Guard: this process belongs to a Ray node, which must never touch a results store."""
import os
import sys

_FORBIDDEN = os.environ.get("FDABNN_FORBIDDEN")
_EVENTS = ("open", "os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.listdir", "os.scandir",
           "os.link", "os.symlink", "os.truncate", "os.chmod", "os.utime", "shutil.rmtree", "shutil.copyfile")


def _guard(event, args):
    if event not in _EVENTS:
        return
    for path in args[:2]:
        if isinstance(path, (str, bytes, os.PathLike)):
            if os.path.abspath(os.fsdecode(path)).startswith(_FORBIDDEN):
                raise PermissionError(f"a Ray node touched the results store: {event} {os.fsdecode(path)}")


if _FORBIDDEN:
    sys.addaudithook(_guard)
'''

# Ray's tests shorten node-death detection to about a second; the measurement keeps Ray's defaults
FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 200,
                      "health_check_failure_threshold": 5}


def private_ray_env(tmp: Path) -> dict[str, str | None]:
    """Point Ray at a private folder under `tmp` (short: its socket paths must fit 107 bytes) and
    allow a loopback cluster; the previous values, for `restore_env`."""
    (tmp / "ray").mkdir(parents=True, exist_ok=True)
    new = {"RAY_TMPDIR": str(tmp / "ray"), "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    old = {k: os.environ.get(k) for k in new}
    os.environ.update(new)
    return old


def restore_env(old: dict[str, str | None]) -> None:
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class LocalCluster:
    """A head with no CPUs (the driver's node) and worker nodes of 1 CPU, each with its own host name
    (FDABNN_HOST) and scratch root (`scratch/<host>`); processes of the worker nodes fail on touching
    anything under `forbidden` (the results stores)."""

    def __init__(self, tmp: Path, forbidden: Path, hosts: tuple[str, ...] = ("node-a", "node-b"),
                 node_env: dict[str, str] | None = None, fast_health_checks: bool = False):
        from ray.cluster_utils import Cluster

        self.tmp, self.scratch = tmp, tmp / "scratch"
        guard = tmp / "guard"
        guard.mkdir(parents=True, exist_ok=True)
        (guard / "sitecustomize.py").write_text(GUARD)
        self.node_env = {"PYTHONPATH": os.pathsep.join([str(guard), str(REPO),
                                                        *filter(None, [os.environ.get("PYTHONPATH")])]),
                         "FDABNN_FORBIDDEN": str(forbidden), **(node_env or {})}
        head: dict[str, Any] = {"num_cpus": 0}
        if fast_health_checks:
            head["_system_config"] = FAST_HEALTH_CHECKS
        self.cluster = Cluster(initialize_head=True, head_node_args=head)
        self.address = self.cluster.address
        self.nodes: dict[str, Any] = {}
        try:
            for host in hosts:
                self.add(host)
        except BaseException:  # a raylet that did not register within Ray's 30 s (an overloaded machine)
            self.cluster.shutdown()
            raise

    def add(self, host: str) -> None:
        env = {**self.node_env, "FDABNN_HOST": host, "FDABNN_SCRATCH": str(self.scratch / host)}
        self.nodes[host] = self.cluster.add_node(num_cpus=1, env_vars=env)

    def kill(self, host: str) -> float:
        """Remove the node as a crash would (no graceful shutdown); the time.time() just before."""
        node = self.nodes.pop(host)
        killed_at = time.time()
        self.cluster.remove_node(node, allow_graceful=False)
        return killed_at

    def attempt_dirs(self, host: str) -> list[Path]:
        """The attempts running on the node now (bench/executors/scratch.py: one folder each)."""
        root = self.scratch / host / "attempts"
        return sorted(root.iterdir()) if root.is_dir() else []

    def shutdown(self) -> None:
        self.cluster.shutdown()


def _ablate(study: Path, results: Path, *extra: str, wait: bool = True, threads: int | None = None) -> Any:
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}),
           "FDABNN_RESULTS": str(results), "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    command = [sys.executable, "-m", "bench.cli", "ablate", str(study), "--profile", PROFILE, "--backends", "torch",
               "--device", "cpu", *extra]
    if not wait:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)


def _timed(study: Path, results: Path, *extra: str, threads: int | None = None) -> float:
    started = time.monotonic()
    done = _ablate(study, results, *extra, threads=threads)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"rehearsal: `fdabnn ablate {study.name} {' '.join(extra)}` exited {done.returncode}:\n"
                         + done.stdout[-3000:] + done.stderr[-3000:])
    return wall


def _studies(tmp: Path, cells: int | None) -> tuple[Path, Path]:
    """The study to time (the real file, or its first `cells` fixed-n cells) and a one-cell study."""
    source = REPO / "ablations" / f"{STUDY}.toml"
    values = tomllib.loads(source.read_text())["grid"][0]["estimator"]["n"]
    head = 'backends = ["torch"]\n[base]\nestimator.name = "fda"\n[[grid]]\nnoise.enabled = [false]\n'
    one = tmp / f"{STUDY}-one.toml"
    one.write_text(f'title = "{STUDY}: one cell"\nquestion = "the node-death rehearsal"\n{head}estimator.n = '
                   f'[{values[0]}]\n')
    if cells is None:
        return source, one
    subset = tmp / f"{STUDY}-first{cells}.toml"
    subset.write_text(f'title = "{STUDY}: first {cells} cells"\nquestion = "a short rehearsal"\n{head}'
                      f'estimator.n = {json.dumps(values[:cells])}\n')
    return subset, one


def _records(results: Path) -> list[dict[str, Any]]:
    from bench import store

    return [r for p in sorted((results / "runs").iterdir()) if (r := store.read_record(p)) is not None]


def _outcomes(local: list[dict[str, Any]], ray: list[dict[str, Any]]) -> dict[str, Any]:
    """How each executor's cells ended, and whether every cell ended the same on Ray as locally (same
    status and final metrics: PyTorch on CPU is deterministic, so they must be equal)."""
    def by_cell(records: list[dict[str, Any]]) -> dict[str, tuple[str, Any]]:
        return {r["run_id"]: (r["status"], r.get("final")) for r in records}

    def threads(records: list[dict[str, Any]]) -> list[str]:
        return sorted({str(r.get("environment", {}).get("threads")) for r in records})

    mine, theirs = by_cell(local), by_cell(ray)
    differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
    return {"local_statuses": dict(Counter(s for s, _ in mine.values())),
            "ray_statuses": dict(Counter(s for s, _ in theirs.values())),
            "local_threads": threads(local), "ray_threads": threads(ray),
            "ray_equals_local": not differ, "cells_that_differ": differ}


def _seconds(stamp: str, since: float) -> float:
    return round(datetime.fromisoformat(stamp).timestamp() - since, 3)


def node_death(cluster: LocalCluster, study: Path, results: Path, timeout_s: float = 600) -> dict[str, Any]:
    """Run the one-cell study, kill the node its first attempt runs on once the child has started
    (its train.log exists in the node's scratch), and time the restart."""
    runner = _ablate(study, results, "--executor", "ray", "--address", cluster.address, "--retries", "1", wait=False)
    deadline = time.monotonic() + timeout_s
    host = None
    while host is None:
        if runner.poll() is not None or time.monotonic() > deadline:
            runner.kill()
            raise SystemExit("rehearsal: the cell ended before its node could be killed:\n"
                             + runner.communicate()[0].decode()[-3000:])
        host = next((h for h in cluster.nodes if any(next(d.glob("*/train.log"), None)
                                                     for d in cluster.attempt_dirs(h))), None)
        time.sleep(POLL_S)
    killed_at = cluster.kill(host)
    started_on_node = None
    while started_on_node is None and runner.poll() is None and time.monotonic() < deadline:
        if any(d.name.startswith("a2-") for h in cluster.nodes for d in cluster.attempt_dirs(h)):
            started_on_node = time.time()
        time.sleep(POLL_S)
    output = runner.communicate(timeout=max(1.0, deadline - time.monotonic()))[0].decode()
    (record,) = _records(results)
    if record["status"] != "finished" or len(record.get("attempts", [])) != 2:
        raise SystemExit(f"rehearsal: the killed cell ended {record['status']} after "
                         f"{len(record.get('attempts', []))} attempt(s):\n{output[-3000:]}")
    first, second = record["attempts"]
    return {"killed_host": host, "restarted_on": second["host"], "first_attempt_ended": first["ended"],
            "lost_declared_s": _seconds(first["ended_at"], killed_at),
            "next_attempt_submitted_s": _seconds(second["started_at"], killed_at),
            "next_attempt_started_on_node_s": (round(started_on_node - killed_at, 3)
                                               if started_on_node is not None else None),
            "cell_wall_s": record["wall_s"], "poll_s": POLL_S}


def rehearse(out: Path, cells: int | None = None) -> Path:
    from bench.environment import describe

    load = os.getloadavg()
    if load[0] >= 0.5:
        print(f"rehearsal: the load average is {load[0]:.2f}: the wall times will include other work",
              file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="fr-", dir="/tmp"))
    old = private_ray_env(tmp)
    try:
        stores = tmp / "stores"
        stores.mkdir()
        study, one = _studies(tmp, cells)
        print("rehearsal: the local executor ...", flush=True)
        # One thread a cell, as on a Ray node of 1 CPU: a cell's numbers depend on its thread count
        # (oneDNN's reductions), so only then can each cell's result be compared with Ray's.
        local_s = _timed(study, stores / "local", "--jobs", "2", threads=1)
        local_records = _records(stores / "local")
        n_cells = len(local_records)
        print(f"rehearsal: {n_cells} cells in {local_s:.1f} s; a 3-node cluster ...", flush=True)
        started = time.monotonic()
        cluster = LocalCluster(tmp, stores)
        cluster_start_s = time.monotonic() - started
        try:
            ray_s = _timed(study, stores / "ray", "--executor", "ray", "--address", cluster.address)
            ray_records = _records(stores / "ray")
            print(f"rehearsal: {len(ray_records)} cells in {ray_s:.1f} s on Ray; a node's death ...", flush=True)
            death = node_death(cluster, one, stores / "death")
        finally:
            cluster.shutdown()
        import ray

        result = {
            "what": "issue 23 item 7: the fourier-terms smoke study with the local executor and on a local 3-node "
                    "Ray cluster, and the time from a node's death to its cell's restart",
            "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": f"python -m bench.executors.rehearsal --out {out}" + (f" --cells {cells}" if cells else ""),
            "study": study.stem, "profile": PROFILE, "backends": ["torch"], "device": "cpu",
            "cells": n_cells, "subset": cells is not None,
            "local": {"executor": "local", "jobs": 2, "threads_per_cell": 1, "wall_s": round(local_s, 3)},
            "ray": {"executor": "ray", "nodes": "head with 0 CPUs (the driver) + 2 worker nodes of 1 CPU, each with "
                    "its own scratch root, no store access", "wall_s": round(ray_s, 3),
                    "cluster_start_s": round(cluster_start_s, 3),
                    "records": len(ray_records)},
            "outcomes": _outcomes(local_records, ray_records),
            "ray_over_local": round(ray_s / local_s, 3),
            "node_death": {**death, "health_checks": "Ray's defaults"},
            "load_average_before": [round(x, 2) for x in load],
            "environment": describe({"ray": ray.__version__}) | {"host": socket.gethostname()},
        }
    finally:
        restore_env(old)
        shutil.rmtree(tmp, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{result['study']}-{PROFILE}-{socket.gethostname()}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"rehearsal: local {local_s:.1f} s, ray {ray_s:.1f} s (x{ray_s / local_s:.2f}); node death to the next "
          f"attempt's start on a node {death['next_attempt_started_on_node_s']} s; {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.executors.rehearsal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the JSON record (results/cluster)")
    parser.add_argument("--cells", type=int, default=None,
                        help="only the study's first N fixed-n FDA cells (a quick rehearsal; default: all 16)")
    args = parser.parse_args(argv)
    rehearse(args.out, args.cells)
    return 0


if __name__ == "__main__":
    sys.exit(main())
