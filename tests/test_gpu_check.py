"""The GPU check's pieces that run anywhere: wheels picked by their tags, the manifest's commit
found by file contents, the archive folded into a store; and (slow) the whole check rehearsed on
this CPU in the GPU machine's package set."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import pytest

from bench.environment import REPO, git
from bench.gpu_check import archive, bootstrap


def test_wheels_are_picked_by_their_tags(tmp_path):
    ours = f"cp{sys.version_info.major}{sys.version_info.minor}"
    names = {"pure": "annotated_types-0.8.0-py3-none-any.whl",
             "ours": f"pydantic_core-2.50.5-{ours}-{ours}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
             "other python": "pydantic_core-2.50.5-cp39-cp39-manylinux_2_17_x86_64.whl",
             "other platform": f"pydantic_core-2.50.5-{ours}-{ours}-macosx_11_0_arm64.whl"}
    fits = {what: bootstrap._fits(tmp_path / name) for what, name in names.items()}
    assert fits == {"pure": True, "ours": True, "other python": False, "other platform": False}


def _store_with_a_record(work):
    record = work / "store" / "bench" / "gpu" / "torch-bf16-b128-graph" / "ste.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"case": "ste", "status": "ok", "environment": {"git_commit": "unknown"}}))
    (work / "store" / ".active" / "host").mkdir(parents=True)  # the GPU host's live registry: not folded
    return record


def test_fold_takes_the_records_and_finds_the_commit_by_content(tmp_path):
    """An archive whose manifest has no git commit (the GPU machine has no .git): the commit whose
    source files have the manifest's contents fills in the records' unknown commit."""
    head = git("rev-parse", "HEAD")
    listing = git("ls-tree", "-r", "HEAD", "--", "bench") or ""
    files = {line.split("\t")[1]: line.split()[2] for line in listing.splitlines()}
    assert head and len(files) > 20
    work = tmp_path / "work"
    _store_with_a_record(work)
    manifest = {"git_commit": None, "files": files, "rehearse": False, "started": "then", "versions": {}}
    path = archive.write(tmp_path, work, {archive.MANIFEST: manifest})
    store = tmp_path / "results"
    lines = archive.fold(path, store)
    folded = json.loads((store / "bench" / "gpu" / "torch-bf16-b128-graph" / "ste.json").read_text())
    assert folded["environment"] == {"git_commit": head, "commit_from": "archive manifest"}
    assert "matched by the manifest's file contents" in lines[0] and "1 bench records" in lines[1]
    assert not (store / ".active").exists()

    changed = dict(files, **{"bench/cli.py": "0" * 40})  # code no commit has
    archive.write(tmp_path, work, {archive.MANIFEST: dict(manifest, files=changed)})
    assert "no commit here has these files" in archive.fold(path, tmp_path / "other")[0]


def test_fold_refuses_a_rehearsal_and_what_is_not_an_archive(tmp_path):
    from bench.errors import UserError

    work = tmp_path / "work"
    _store_with_a_record(work)
    path = archive.write(tmp_path, work, {archive.MANIFEST: {"git_commit": "abc", "rehearse": True}})
    with pytest.raises(UserError, match="rehearsal's archive"):
        archive.fold(path, tmp_path / "results")
    assert not (tmp_path / "results").exists()
    (tmp_path / "junk.tar.gz").write_text("not a tarball")
    with pytest.raises(UserError, match="not a GPU check archive"):
        archive.fold(tmp_path / "junk.tar.gz", tmp_path / "results")


@pytest.mark.slow
def test_the_gpu_check_rehearsed_in_the_gpu_machines_package_set(tmp_path):
    """`make gpu-rehearsal`: a venv with numpy 2 and without pydantic, PyYAML, Ray or MindSpore runs
    `python -m bench.gpu_check --rehearse` within its deadline; the archive and the verdict come out,
    every step ran, and the archive folds into a store whose summary shows its records."""
    out = tmp_path / "out"
    done = subprocess.run(["make", "gpu-rehearsal", f"REHEARSAL_OUT={out}"], cwd=REPO, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    verdict = (out / "verdict.txt").read_text()
    assert "cases measured, exit 0" in verdict and "bench: 0 cases" not in verdict
    assert "GPU tests (pytest -m gpu): 0 passed, 0 failed, 0 errors, 11 skipped of 11" in verdict  # no CUDA here
    assert "training, FDA n 9->18 + noise, bf16, 2 epochs (rehearsal): top-1" in verdict
    assert "floor 40.4%: a linear classifier of the raw pixels" in verdict
    with tarfile.open(out / archive.ARCHIVE) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile(archive.MANIFEST))
    assert manifest["rehearse"] is True and manifest["versions"]["numpy"].startswith("2.")
    assert any(w.startswith("pydantic_core-") for w in manifest["wheels_installed"])
    assert "./store/bench/gpu-rehearsal/torch-bf16-b16-graph/fda-n9+noise.json" in names
    assert "./store/bench/gpu-rehearsal/torch-bf16-b16-eager/fda-n9+noise.json" in names
    assert "./gpu-tests.xml" in names and "./floor.json" in names
    store = tmp_path / "results"
    summary = subprocess.run([sys.executable, "-m", "bench.cli", "summary", "--import", str(out / archive.ARCHIVE),
                              "--allow-rehearsal"], cwd=REPO, capture_output=True, text=True, timeout=600,
                             env={**__import__("os").environ, "FDABNN_RESULTS": str(store)})
    assert summary.returncode == 0, summary.stderr[-3000:]
    assert "torch bf16 batch 16 CUDA graph" in (store / "benchmarks.md").read_text()
