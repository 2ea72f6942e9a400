"""init.from (bench/init): the reference's forms and label, the digest, resolution of a run directory
and of a checkpoint file of either backend, the network check, partial loading (the noise module) and
what a run records of its source."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import backends
from bench import store
from bench.data.checksum import file_sha256
from bench.errors import UserError
from bench.init.reference import for_profile, label_suffix
from bench.init.source import load_into, locate, provenance, resolve, stage
from bench.spec import Spec, build_spec
from bench.studies import expand, load_profiles, load_study

CPU = {"device": "cpu"}


def test_labels_say_where_the_weights_started():
    assert label_suffix(None) == ""
    assert label_suffix("pretrain-fp") == label_suffix("pretrain-fp:cpu") == "-from-fp"
    assert label_suffix("/r/runs/estimators-quick-torch-ste-fp32-s0-abc/") == "-from-estimators-quick-torch-ste-fp32-s0-abc"
    assert label_suffix("/r/runs/" + "x" * 50) == "-from-" + "x" * 40  # a label names a directory: kept short
    assert label_suffix("/r/runs/fp-run/checkpoint.pt") == "-from-fp-run"  # a run's checkpoint: the run's name
    assert label_suffix("~/zoo/fdabnn.ckpt") == "-from-fdabnn"
    assert label_suffix("weights v2.pth") == "-from-weights_v2"
    spec = build_spec({"estimator": {"name": "ste"}, "init": {"from": "pretrain-fp:cpu"}})
    assert spec.label() == "torch-ste-from-fp-fp32"
    assert build_spec({"model": {"name": "vgg_small", "binarize": False}, "init": {"from": "x.pt"}}).label() == \
        "torch-vgg_small-fp-from-x-fp32"


def test_the_digest_holds_the_reference_and_old_digests_stay():
    assert Spec().digest() == "71eb921a06"  # as before init.from existed
    assert build_spec({"init": {"from": None}}).digest() == Spec().digest()
    a, b = (build_spec({"init": {"from": ref}}).digest() for ref in ("pretrain-fp:cpu", "pretrain-fp:quick"))
    assert len({a, b, Spec().digest()}) == 3
    assert build_spec(build_spec({"init": {"from": "a.pt"}}).to_dict()).init.from_ == "a.pt"  # the record's spelling


def test_a_study_names_the_pretraining_of_its_own_profile():
    assert for_profile("pretrain-fp", "cpu") == "pretrain-fp:cpu" and for_profile("x.pt", "cpu") == "x.pt"
    profiles = load_profiles()
    cells = expand(load_study("protocol"), profiles.profiles["quick"], ("torch",))
    assert {c.spec.init.from_ for c in cells} == {None, "pretrain-fp:quick"}
    assert profiles.profiles["cpu"].pretrain == {"train": {"epochs": 15}}


def _model(path: Path, spec: dict, meta: dict | None = None) -> backends.Backend:
    """A built PyTorch model of `spec`, saved model-only at `path` (its meta records the spec)."""
    backend = backends.prepare(build_spec({**spec, **CPU}))
    backend.save_model(path, meta if meta is not None else {"spec": backend.spec.to_dict()})
    return backend


def _run_dir(root: Path, name: str, status: str, spec: dict) -> Path:
    """A run directory as training leaves it: its checkpoint and a record of `status`."""
    run_dir = root / "runs" / name
    run_dir.mkdir(parents=True)
    backend = _model(run_dir / "checkpoint.pt", spec)
    history = [{"epoch": 0, "Validation-Loss": 1.0, "Top1-Acc": 0.6, "Top5-Acc": 0.9, "step_ms": [1.0],
                "warmup_steps": 0, "wall_s": 1.0}]
    store.atomic_write_json(run_dir / store.RECORD, store.run_record(backend.spec, run_dir, {}, history, 1.0, status,
                                                                     "", None))
    return run_dir


def test_a_binarized_run_starts_from_a_full_precision_run_directory(tmp_path):
    fp = _run_dir(tmp_path, "fp", "finished", {"model": {"binarize": False}})
    spec = build_spec({"estimator": {"name": "ste"}, "noise": {"enabled": True}, "init": {"from": str(fp)}, **CPU})
    source = resolve(spec)
    assert source.path == fp / "checkpoint.pt" and source.run_dir == fp
    student = backends.prepare(spec)
    fresh = {k: v.copy() for k, v in student.state_numpy().items() if ".noise_" in k}
    info = load_into(student, source)
    after = student.state_numpy()
    shared = [k for k in after if ".noise_" not in k]
    assert shared and all(np.array_equal(after[k], source.state[k]) for k in shared)
    assert sorted(info["fresh"]) == sorted(fresh) and all(np.array_equal(after[k], v) for k, v in fresh.items())
    assert info["sha256"] == file_sha256(fp / "checkpoint.pt") and info["run_id"] == "fp"
    assert info["source_model"]["binarize"] is False and info["source_top1"] == 0.6
    assert info["path"] == str((fp / "checkpoint.pt").resolve()) and info["from"] == str(fp)


def test_an_unfinished_run_or_a_missing_pretraining_is_refused_naming_the_fix(tmp_path, monkeypatch):
    failed = _run_dir(tmp_path, "failed", "failed", {})
    with pytest.raises(UserError, match="has not finished .its record says failed.; finish it, or name its checkpoint"):
        resolve(build_spec({"init": {"from": str(failed)}, **CPU}))
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path))
    with pytest.raises(UserError, match=r"run `make pretrain-fp ARCH=vgg_small PROFILE=quick BACKENDS=torch` first"):
        resolve(build_spec({"model": {"name": "vgg_small"}, "init": {"from": "pretrain-fp:quick"}, **CPU}))
    with pytest.raises(UserError, match="outside a study write pretrain-fp:<profile>"):
        resolve(build_spec({"init": {"from": "pretrain-fp"}, **CPU}))


def test_another_network_or_class_count_is_refused_in_one_line(tmp_path):
    _model(tmp_path / "r100.pt", {"model": {"num_classes": 100}}, {})
    with pytest.raises(UserError) as refused:
        resolve(build_spec({"model": {"name": "vgg_small"}, "init": {"from": str(tmp_path / "r100.pt")}, **CPU}))
    assert str(refused.value) == (f"init.from {tmp_path / 'r100.pt'}: its network is not this run's: model.name "
                                  "resnet20 (this run: vgg_small); model.num_classes 100 (this run: 10); start from a "
                                  "checkpoint of a vgg_small with 10 classes")


def test_noise_tensors_of_the_source_that_the_run_lacks_are_left_out(tmp_path):
    _model(tmp_path / "noisy.pt", {"noise": {"enabled": True}})
    spec = build_spec({"init": {"from": str(tmp_path / "noisy.pt")}, **CPU})
    info = load_into(backends.prepare(spec), resolve(spec))
    assert info["fresh"] == [] and info["left_out"] and all(".noise_" in k for k in info["left_out"])


@pytest.mark.slow
def test_a_pytorch_checkpoint_starts_a_mindspore_run_and_back(tmp_path):
    """Either backend's format, through the interface's names: .pt into MindSpore, .ckpt into PyTorch."""
    from bench.convert import convert_checkpoint

    _model(tmp_path / "fp.pt", {"model": {"binarize": False}})
    convert_checkpoint(tmp_path / "fp.pt", tmp_path / "fp.ckpt")
    for backend, suffix in (("mindspore", "pt"), ("torch", "ckpt")):
        spec = build_spec({"backend": backend, "init": {"from": str(tmp_path / f"fp.{suffix}")}, **CPU})
        source = resolve(spec)
        student = backends.prepare(spec)
        load_into(student, source)
        after = student.state_numpy()
        assert all(np.array_equal(after[k], v) for k, v in source.state.items())


def test_a_staged_copy_is_recorded_as_the_stores_file_and_a_changed_one_is_refused(tmp_path, monkeypatch):
    """On Ray the node reads a copy of the store's file that the driver sent (bench/executors/scratch.py):
    the same weights, recorded under the store's path and sha256; a copy that is not that file is refused."""
    fp = _run_dir(tmp_path / "store", "fp", "finished", {"model": {"binarize": False}})
    spec = build_spec({"estimator": {"name": "ste"}, "init": {"from": str(fp)}, **CPU})
    here = resolve(spec)
    path, run_dir = locate(spec)
    ((name, value),) = stage(tmp_path / "node", path.read_bytes(), provenance(str(fp), path, run_dir)).items()
    monkeypatch.setenv(name, value)
    staged = resolve(spec)
    assert staged.path.parent == tmp_path / "node" and staged.origin == here.origin
    assert staged.state.keys() == here.state.keys() and all(np.array_equal(staged.state[k], v)
                                                           for k, v in here.state.items())
    staged.path.write_bytes(staged.path.read_bytes() + b"\0")
    with pytest.raises(UserError, match="is not the file the driver sent"):
        resolve(spec)
