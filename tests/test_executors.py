"""The executors on real cells (PyTorch, real CIFAR-10, smoke profile, this 2-core machine): a pool of
local slots and a local Ray cluster leave the same records as the serial run; a killed worker's
cell is attempted again and recorded once (on Ray: two attempts listed, the first lost); a cell
that always fails is recorded failed after its retries while the others finish; the plan is told
before anything runs, and a study nothing of which can run here is refused. Several nodes, node
loss, killed drivers and leases: test_ray_cluster.py."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from study_cli import NEEDS_DATA_AND_TORCH, ablate, launches, study

from bench import store
from bench.environment import REPO

pytestmark = NEEDS_DATA_AND_TORCH

GRID = '[[grid]]\nestimator.name = ["ste", "approx_sign"]\n[[grid]]\nestimator.n = [1]\n'
# the fused backward (no BASE): its cells train long enough for two slots' timings to overlap
FUSED = ""
TIMEOUT_S = 900


def outcome(results: Path) -> dict[str, tuple[str, dict]]:
    """run directory -> (status, final metrics) of every record."""
    return {r["run_id"]: (r["status"], r["final"]) for r in store.iter_records(results)}


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory: pytest.TempPathFactory):
    """A local Ray cluster of 2 CPUs, started once for the session (`ray start --head`)."""
    pytest.importorskip("ray")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray = Path(sys.executable).with_name("ray")
    temp = tmp_path_factory.mktemp("ray")
    # on the loopback address only; token authentication off for this private test cluster (the
    # runners it serves inherit the setting through the environment)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    started = subprocess.run([str(ray), "start", "--head", "--num-cpus", "2", "--num-gpus", "0", "--port", str(port),
                              "--node-ip-address", "127.0.0.1", "--include-dashboard", "false",
                              "--disable-usage-stats", f"--temp-dir={temp}"],
                             capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stdout + started.stderr
    yield f"127.0.0.1:{port}"
    subprocess.run([str(ray), "stop", "--force"], capture_output=True, timeout=180)


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, dict]]:
    tmp = tmp_path_factory.mktemp("serial")
    done = ablate(study(tmp, GRID, base=FUSED), tmp / "results")
    assert done.returncode == 0, done.stdout + done.stderr
    return outcome(tmp / "results")


@pytest.mark.slow  # 80 s with its serial fixture; make test keeps the local pool in the killed-worker test
def test_two_local_slots_leave_the_serial_records(serial, tmp_path):
    done = ablate(study(tmp_path, GRID, base=FUSED), tmp_path / "results", "--jobs", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "executor local: 2 cell(s) at once on the CPU" in done.stdout
    assert outcome(tmp_path / "results") == serial  # the same cells, finished, bit-identical metrics
    records = store.iter_records(tmp_path / "results")
    # two cells trained side by side on the same cores: their step times say so
    assert any(r["timing"]["shared"] for r in records)


@pytest.mark.slow  # 2 to 6 min on 2 cores; `make test` keeps Ray in the killed-worker test
def test_a_ray_cluster_leaves_the_serial_records(serial, ray_address, tmp_path):
    done = ablate(study(tmp_path, GRID, base=FUSED), tmp_path / "results", "--executor", "ray", "--address", ray_address)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "executor ray: 1 node(s), 2 CPU(s), 0 GPU(s)" in done.stdout
    got = outcome(tmp_path / "results")
    # the same cells, all finished; the metrics only close: Ray gives each task num_cpus=1 and so one
    # kernel thread (OMP_NUM_THREADS=1), which sums gradients in another order from the first step on
    assert {k: status for k, (status, _) in got.items()} == {k: status for k, (status, _) in serial.items()}
    records = store.iter_records(tmp_path / "results")
    assert {r["environment"]["threads"] for r in records} == {"1"}


def _train_process(run_id: str, deadline: float) -> int:
    """The pid of the `bench.cli train` process of the cell `run_id` (in the store's run directory
    locally, in a node's scratch directory on Ray), once it has started training."""
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                command = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if "train" in command and "--run-dir" in command:
                run_dir = Path(command[command.index("--run-dir") + 1])
                if run_dir.name == run_id and (run_dir / store.ENVIRONMENT).exists():
                    return int(proc.name)
        time.sleep(0.05)
    raise AssertionError(f"no training process for {run_id}")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_worker_killed_mid_cell_is_attempted_again_and_recorded_once(executor, tmp_path, request):
    """Local: the cell's process is killed; Ray: the worker running the cell (the training process
    dies with it). Either way the cell is attempted again, resumes, and ends with one record."""
    path = study(tmp_path, '[[grid]]\nestimator.name = ["ste"]\ntrain.epochs = [3]\n')
    results = tmp_path / "results"
    extra = ("--executor", "ray", "--address", request.getfixturevalue("ray_address")) if executor == "ray" else ()
    runner = ablate(path, results, *extra, wait=False)
    deadline = time.monotonic() + TIMEOUT_S / 3
    while not (results / "runs").exists() or not any((results / "runs").iterdir()):
        assert time.monotonic() < deadline and runner.poll() is None, "the cell never started"
        time.sleep(0.05)
    (run_dir,) = (results / "runs").iterdir()
    victim = _train_process(run_dir.name, deadline)
    os.kill(victim if executor == "local" else _parent(victim), signal.SIGKILL)
    output = runner.communicate(timeout=TIMEOUT_S)[0].decode()
    assert runner.returncode == 0, output
    record = store.read_record(run_dir)
    assert record["status"] == "finished" and record["epochs_done"] == 3, output
    if executor == "local":
        assert launches(run_dir) == 2, output
    else:  # the driver numbers the attempts; the lost one's log reached the store only if it finished an epoch
        assert [a["ended"].split(":")[0] for a in record["attempts"]] == ["lost", "finished"], output
    assert len(list(run_dir.glob(store.RECORD + "*"))) == 1


@pytest.mark.slow  # the runner's failed-cell path stays in make test through test_runner's failing grid
def test_a_cell_that_always_fails_is_recorded_failed_after_its_retries(tmp_path):
    results = tmp_path / "results"
    done = ablate(study(tmp_path, GRID), results, "--jobs", "2", "--retries", "2", fault="approx_sign:crash")
    assert done.returncode == 1, done.stdout + done.stderr
    by_label = {r["label"]: r for r in store.iter_records(results)}
    assert by_label["torch-approx_sign-unfused-fp32"]["status"] == "failed"
    assert "injected crash" in by_label["torch-approx_sign-unfused-fp32"]["reason"]
    assert launches(Path(by_label["torch-approx_sign-unfused-fp32"]["run_dir"])) == 3  # the attempt and 2 retries
    assert {by_label[k]["status"] for k in ("torch-ste-unfused-fp32", "torch-fda-n1-unfused-fp32")} == {"finished"}


def test_dry_run_tells_the_plan_and_runs_nothing(tmp_path):
    results = tmp_path / "results"
    done = ablate(study(tmp_path, GRID), results, "--dry-run", "--jobs", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    assert "3 cells: 0 done, 3 to run, 0 not runnable here" in text and "nothing was run" in text
    assert "executor local, 2 cell(s) at once: estimated duration" in text
    assert not (results / "runs").exists() or not any((results / "runs").iterdir())


def test_a_study_none_of_which_can_run_here_is_refused_before_anything(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    results = tmp_path / "results"
    env = {**os.environ, "FDABNN_RESULTS": str(results)}
    done = subprocess.run([sys.executable, "-m", "bench.cli", "ablate", str(study(tmp_path, GRID)), "--profile", "smoke",
                           "--device", "cuda"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "none of its 3 cells can run here" in errors[0] and "--device" in errors[0]
    assert not list((results / "runs").glob("*/" + store.RECORD))
