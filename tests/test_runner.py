"""The ablation runner on real cells (PyTorch, real CIFAR-10, smoke profile): resume after a kill,
failure isolation, torn records, unsupported and skipped cells, and the CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from study_cli import CELL_TIMEOUT_S, NEEDS_DATA_AND_TORCH, ablate, launches, study

import backends
from bench import store
from bench.environment import REPO
from bench.runner import run_ablation

pytestmark = NEEDS_DATA_AND_TORCH


def records(results: Path) -> dict[str, dict]:
    """Run directory name -> its record (or None) for every run directory."""
    return {d.name: store.read_record(d) for d in sorted((results / "runs").iterdir())}


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_killed_runner_resumes_without_rerunning_finished_cells(tmp_path):
    path = study(tmp_path, '[[grid]]\nestimator.name = ["ste", "approx_sign"]\n[[grid]]\nestimator.n = [1]\n')
    results = tmp_path / "results"
    runner = ablate(path, results, wait=False)
    deadline = time.monotonic() + 2 * CELL_TIMEOUT_S
    finished: dict[str, dict] = {}
    while not finished and time.monotonic() < deadline and runner.poll() is None:
        time.sleep(0.2)
        if (results / "runs").exists():
            finished = {k: v for k, v in records(results).items() if v and v["status"] == "finished"}
    assert finished, "no cell finished before the deadline"
    cells = children(runner.pid)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    # the cell that was running dies with the runner instead of writing on as an orphan
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in cells) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in cells)
    before = {name: (results / "runs" / name / store.RECORD).read_bytes() for name in finished}

    again = ablate(path, results)
    assert again.returncode == 0, again.stdout + again.stderr
    after = records(results)
    assert len(after) == 3 and all(r and r["status"] == "finished" for r in after.values())
    for name, content in before.items():
        assert (results / "runs" / name / store.RECORD).read_bytes() == content
        assert launches(results / "runs" / name) == 1
    assert (results / "summary.md").exists() and (results / "tiny.csv").exists()


def test_failing_cells_are_recorded_and_the_grid_goes_on(tmp_path):
    path = study(tmp_path, '[[grid]]\nestimator.name = ["ste", "approx_sign"]\n[[grid]]\nestimator.n = [1, 2]\n')
    results = tmp_path / "results"
    run = ablate(path, results, fault="approx_sign:crash,fda-n1-:nonfinite,fda-n2-:segfault")
    assert run.returncode == 1, run.stdout + run.stderr
    by_label = {r["label"]: r for r in records(results).values()}
    assert set(by_label) == {"torch-ste-unfused-fp32", "torch-approx_sign-unfused-fp32", "torch-fda-n1-unfused-fp32", "torch-fda-n2-unfused-fp32"}
    assert by_label["torch-ste-unfused-fp32"]["status"] == "finished"
    assert by_label["torch-approx_sign-unfused-fp32"]["status"] == "failed"
    assert "injected crash" in by_label["torch-approx_sign-unfused-fp32"]["reason"]
    assert by_label["torch-fda-n1-unfused-fp32"]["status"] == "nonfinite"
    # the segfaulting child wrote nothing: the runner wrote its record, in the same schema
    segfault = by_label["torch-fda-n2-unfused-fp32"]
    assert segfault["status"] == "failed" and segfault["reason"].startswith("killed by SIGSEGV")
    assert set(segfault) == set(by_label["torch-ste-unfused-fp32"])
    assert "did not finish" in run.stdout


@pytest.mark.slow  # its torn record is one of test_torn_store_files_are_named_by_summary_..._by_ablate
def test_torn_record_is_detected_and_its_cell_rerun(tmp_path):
    path = study(tmp_path, '[[grid]]\nestimator.name = ["ste"]\n')
    results = tmp_path / "results"
    assert ablate(path, results).returncode == 0
    (run_dir,) = (results / "runs").iterdir()
    text = (run_dir / store.RECORD).read_text()
    (run_dir / store.RECORD).write_text(text[: len(text) // 2])  # killed mid-write by something else
    with pytest.raises(store.TornRecord):
        store.read_json(run_dir / store.RECORD)
    again = ablate(path, results)
    assert again.returncode == 0, again.stdout + again.stderr
    assert launches(run_dir) == 2
    record = json.loads((run_dir / store.RECORD).read_text())
    assert record["status"] == "finished" and record["epochs_done"] == 1


def test_unsupported_and_skipped_cells_do_not_fail_the_study(tmp_path, monkeypatch):
    path = study(tmp_path, '[[grid]]\nprecision = ["fp32", "fp16"]\n', 'backends = ["torch", "mindspore"]')
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path / "results"))
    real = backends.unavailable_reason
    monkeypatch.setattr(backends, "unavailable_reason",
                        lambda name: "mindspore is not installed (test)" if name == "mindspore" else real(name))
    assert run_ablation(str(path), "smoke", None, "cpu") == 0
    records = store.iter_records()
    torch_runs = [r for r in records if r["spec"]["backend"] == "torch"]
    assert {(r["spec"]["precision"], r["status"]) for r in torch_runs} == {("fp32", "finished"), ("fp16", "finished")}
    # this process holds MindSpore's oneDNN cap (the tests import backends.mindspore); a PyTorch
    # child runs at the CPU's own ISA all the same (bench/isa.py)
    assert os.environ.get("ONEDNN_MAX_CPU_ISA") == "AVX2"
    for run in torch_runs:
        assert run["environment"]["onednn_isa"] == "the CPU's own (no cap)"
        assert "ONEDNN_MAX_CPU_ISA" not in run["environment"]["env"]
    by_backend = {r["spec"]["backend"]: r for r in records if r["spec"]["precision"] == "fp16"}
    assert by_backend["mindspore"]["status"] == "skipped"
    assert by_backend["mindspore"]["reason"] == "mindspore is not installed (test)"
    assert not (Path(by_backend["mindspore"]["run_dir"]) / store.LOG).exists()  # never launched
    assert all(r["study"] == "tiny" and r["profile"] == "smoke" for r in by_backend.values())


@pytest.mark.slow
def test_fourier_terms_smoke_through_the_cli(tmp_path):
    """`make ablation-fourier-terms PROFILE=smoke BACKENDS=torch`: 16 cells, about 3 minutes."""
    results = tmp_path / "results"
    env = {**os.environ, "FDABNN_RESULTS": str(results)}
    run = subprocess.run([sys.executable, "-m", "bench.cli", "ablate", "fourier-terms", "--profile", "smoke",
                          "--backends", "torch", "--device", "cpu"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=16 * CELL_TIMEOUT_S)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "estimated duration" in run.stdout
    done = [r for r in store.iter_records(results) if r["status"] == "finished"]
    assert len(done) == 16
    summary = (results / "summary.md").read_text()
    assert "## Study fourier-terms" in summary and (results / "fourier-terms.csv").exists()


def _tear(path: Path, rng) -> None:
    """Cut a file at a random byte, as a crash outside the suite's atomic writes would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(rng.integers(1, max(2, len(data) - 1)))])


def test_torn_store_files_are_named_by_summary_and_recovered_by_ablate(tmp_path):
    """Every file of a study's run directories torn at a random byte (each kind in some cell):
    `summary` names what it cannot count, `ablate` runs those cells again from their checkpoints
    (or repairs what it can rewrite), and afterwards every cell is finished and counted once."""
    import numpy as np

    path = study(tmp_path, '[[grid]]\nestimator.name = ["ste", "approx_sign"]\n[[grid]]\nestimator.n = [1]\n')
    results = tmp_path / "results"
    assert ablate(path, results).returncode == 0
    run_dirs = sorted((results / "runs").iterdir())
    assert len(run_dirs) == 3
    rng = np.random.default_rng(13)
    order = [run_dirs[i] for i in rng.permutation(3)]
    torn_record, torn_study, other = order
    _tear(torn_record / store.RECORD, rng)
    _tear(torn_record / store.PROGRESS, rng)  # an unfinished cell's progress, torn too
    _tear(torn_study / store.STUDY, rng)
    _tear(other / store.SPEC, rng)
    _tear(other / store.ENVIRONMENT, rng)
    finished_only = other / store.RECORD  # a record that claims to be finished and is nothing else
    kept = finished_only.read_bytes()
    finished_only.write_text('{"status": "finished"}')

    summary = subprocess.run([sys.executable, "-m", "bench.cli", "summary"], cwd=REPO, capture_output=True,
                             text=True, env={**os.environ, "FDABNN_RESULTS": str(results)}, timeout=300)
    assert summary.returncode == 0, summary.stderr
    header = (results / "summary.md").read_text().split("## ", 1)[0]
    assert "Not counted: 3 run file(s)" in header
    for named in (f"{torn_record.name}/{store.RECORD}: not valid JSON", f"{torn_study.name}/{store.STUDY}",
                  f"{other.name}/{store.RECORD}: missing"):
        assert named in header, named

    again = ablate(path, results)
    assert again.returncode == 0, again.stdout + again.stderr
    after = records(results)
    assert all(r is not None and r["status"] == "finished" for r in after.values())
    assert launches(torn_record) == 2 and launches(other) == 2 and launches(torn_study) == 1
    assert json.loads((other / store.RECORD).read_text())["final"] == json.loads(kept)["final"]  # same checkpoint
    assert json.loads((torn_study / store.STUDY).read_text())["study"] == "tiny"  # rewritten by the runner
    final = (results / "summary.md").read_text()
    assert "Not counted" not in final and "from 3 run records (3 in studies)" in final


def test_two_runners_on_one_store_run_each_cell_once(tmp_path):
    """Started together on one study, two runners divide the cells: each cell is launched exactly
    once, every record is intact, and a runner that left cells to the other says so."""
    path = study(tmp_path, '[[grid]]\nestimator.name = ["ste", "approx_sign"]\n[[grid]]\nestimator.n = [1, 2]\n')
    results = tmp_path / "results"
    first, second = ablate(path, results, wait=False), ablate(path, results, wait=False)
    outputs = [p.communicate(timeout=10 * CELL_TIMEOUT_S)[0].decode() for p in (first, second)]
    assert {first.returncode, second.returncode} <= {0, 4}, outputs
    after = records(results)
    assert len(after) == 4 and all(r is not None and r["status"] == "finished" for r in after.values())
    assert all(launches(results / "runs" / name) == 1 for name in after)
    busy = [o for o, p in zip(outputs, (first, second)) if p.returncode == 4]
    assert all("being run by another process" in o for o in busy)


@pytest.mark.slow
@pytest.mark.mindspore
def test_a_mindspore_child_runs_under_the_isa_cap_and_refuses_bf16(tmp_path, monkeypatch):
    """MindSpore's cells keep oneDNN's AVX2 cap (its reference path on AVX-512 is ~25x slower); bf16,
    which its CPU kernels reject, is recorded unsupported with the reason, never run."""
    pytest.importorskip("mindspore")
    path = study(tmp_path, '[[grid]]\nprecision = ["fp32", "bf16"]\n', 'backends = ["mindspore"]')
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path / "results"))
    assert run_ablation(str(path), "smoke", None, "cpu") == 0
    records = {r["spec"]["precision"]: r for r in store.iter_records()}
    assert records["fp32"]["status"] == "finished"
    assert records["fp32"]["environment"]["onednn_isa"] == "ONEDNN_MAX_CPU_ISA=AVX2"
    assert records["bf16"]["status"] == "unsupported" and "reject bfloat16" in records["bf16"]["reason"]
