"""init.from resolved to one checkpoint file, checked against the run and loaded into its backend.

- A run directory resolves to its checkpoint (a run keeps one: its last finished epoch), and only
  once the run has finished (record.json status "finished"): a running or failed run would be a
  moving or broken starting point; name its checkpoint file to start from its last epoch anyway.
- The file is read as `fdabnn convert` reads it (bench/convert.py read_state): either backend's
  format, under the interface's parameter names, so a PyTorch run starts from a MindSpore
  checkpoint and back.
- Before anything is written (`resolve`): the network (model.name, told by the tensors) and the
  class count must be the run's; a mismatch is refused in one line listing what differs.
- When the weights are loaded (`load_into`, the backend built): every tensor of the run must be in
  the file with its shape, and nothing else may be there, except the noise module's (`*.noise_*`):
  binarize and the noise module may differ between the two runs (a binarized run from a
  full-precision checkpoint is the point). A noise tensor of the run that the file lacks, or has in
  another shape (another noise.k), keeps its fresh initialisation; a noise tensor of the file the run
  lacks is left out. Both lists go to the record. The optimizer, the schedules and the epoch count
  start afresh: only the weights (and BatchNorm's running statistics) are taken.

What the run records of it (init.json in the run directory, written when the weights are loaded, and
record["init"]): the reference as the spec says it, the resolved absolute path, the file's sha256,
the source run's id and finished top-1 where it is a run of the store, the source's model fields, and
the tensors left fresh or out. The spec (and so the run's identity, its digest and label) holds the
reference as written, never the path or checksum: `pretrain-fp:cpu` names the same cell on every
machine, and the record says which file it was.

A run resumed from its own epoch checkpoint (`resumes`) continues from it and never applies init.from
again; its record keeps the init.json of its first attempt.

On Ray the source is in the results store, which nodes do not see: the driver resolves it there
(`locate`, `provenance`) and ships the file's bytes to the attempt, which stages them in its scratch
directory and names them to the child in FDABNN_INIT_STAGED (bench/executors/scratch.py). `resolve`
then reads the staged copy, checks its sha256 against the store's file, and records the store's
path: init.json is the same whichever executor ran the cell.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends import CHECKPOINT_SUFFIXES
from bench import store
from bench.convert import read_state
from bench.data.checksum import file_sha256
from bench.errors import UserError
from bench.init import pretrain
from bench.init.reference import PRETRAIN, pretrain_profile
from bench.networks import NETWORKS, model_of_state
from bench.spec import Spec

INIT = "init.json"  # in the run directory: where the weights came from
STAGED_ENV = "FDABNN_INIT_STAGED"  # a staged copy's description (Ray: bench/executors/scratch.py)


@dataclass(frozen=True)
class Source:
    reference: str  # init.from as the spec says it
    path: Path  # the checkpoint file read (on Ray a staged copy of the store's)
    run_dir: Path | None  # the run it belongs to, where the reference named one (None for a staged copy)
    state: dict[str, np.ndarray]
    meta: dict[str, Any]
    origin: dict[str, Any]  # what the record says of the file: `provenance`


def resumes(spec: Spec, run_dir: Path) -> bool:
    """Whether a run of `spec` in `run_dir` continues from its own epoch checkpoint, and so does not
    apply init.from again."""
    return any((run_dir / f"{store.CHECKPOINT_STEM}{suffix}").is_file()
               for suffix, backend in CHECKPOINT_SUFFIXES.items() if backend == spec.backend)


def wanted(spec: Spec, run_dir: Path) -> bool:
    """Whether a run of `spec` in `run_dir` starts from the weights init.from names."""
    return spec.init.from_ is not None and not resumes(spec, run_dir)


def is_noise(name: str) -> bool:
    return ".noise_" in name


def resolve(spec: Spec) -> Source:
    """spec.init.from as a checkpoint read and checked against spec's network; UserError naming the
    reference and the fix when it is missing, unfinished, unreadable or of another network. Where
    FDABNN_INIT_STAGED is set, the staged copy it describes."""
    reference = spec.init.from_
    assert reference is not None
    run_dir = None
    if staged := os.environ.get(STAGED_ENV):
        path, origin = _staged(reference, Path(staged))
    else:
        path, run_dir = locate(spec)
        origin = provenance(reference, path, run_dir)
    state, meta = read_state(path)
    meta = store.checked_meta(path, meta)
    _check_network(spec, reference, state, meta)
    return Source(reference, path, run_dir, state, meta, origin)


def locate(spec: Spec) -> tuple[Path, Path | None]:
    """The checkpoint file spec.init.from names, and the run directory it belongs to where the
    reference named a run (module docstring); nothing is read but the records naming it."""
    reference = spec.init.from_
    assert reference is not None
    profile = pretrain_profile(reference)
    if profile == "":
        raise UserError(f"init.from {PRETRAIN}: names a study's profile; outside a study write "
                        f"{PRETRAIN}:<profile>, e.g. {PRETRAIN}:quick")
    if profile is not None:
        run_dir = pretrain.run_dir_for(spec, profile)
        return _run_checkpoint(reference, run_dir), run_dir
    path = Path(reference).expanduser()
    if path.is_dir():
        return _run_checkpoint(reference, path), path
    if not path.is_file():
        raise UserError(f"init.from {reference}: no such run directory or checkpoint file; give a run directory "
                        f"or a {'/'.join(CHECKPOINT_SUFFIXES)} file")
    return path, None


def provenance(reference: str, path: Path, run_dir: Path | None) -> dict[str, Any]:
    """What a run's record says of the file it started from: the reference, the file's absolute path
    and sha256, and the source run's id and finished top-1 where it is a run of the store."""
    record = store.read_record(run_dir) if run_dir is not None else None
    return {"from": reference, "path": str(path.resolve()), "sha256": file_sha256(path),
            "run_id": run_dir.name if run_dir is not None else None,
            "source_top1": (record or {}).get("final", {}).get("Top1-Acc")}


def stage(directory: Path, data: bytes, origin: dict[str, Any]) -> dict[str, str]:
    """A copy of the source file (`data`, described by `origin`) staged in `directory`; the
    environment that makes a child's `resolve` read it."""
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / f"init-source{Path(origin['path']).suffix}"
    copy.write_bytes(data)
    described = directory / "init-source.json"
    store.atomic_write_json(described, {**origin, "file": str(copy)})
    return {STAGED_ENV: str(described)}


def _staged(reference: str, described: Path) -> tuple[Path, dict[str, Any]]:
    value = store.read_json(described)
    origin = {k: value[k] for k in ("from", "path", "sha256", "run_id", "source_top1")}
    copy = Path(value["file"])
    if origin["from"] != reference or file_sha256(copy) != origin["sha256"]:
        raise UserError(f"init.from {reference}: the staged copy {copy} is not the file the driver sent "
                        f"({origin['from']}, sha256 {origin['sha256'][:12]}); run the cell again")
    return copy, origin


def _run_checkpoint(reference: str, run_dir: Path) -> Path:
    record = store.read_record(run_dir)
    if record is None or record["status"] != "finished":
        said = "no intact record.json" if record is None else f"its record says {record['status']}"
        raise UserError(f"init.from {reference}: the run {run_dir} has not finished ({said}); finish it, or name "
                        "its checkpoint file to start from its last epoch")
    found = sorted(p for p in run_dir.glob(f"{store.CHECKPOINT_STEM}.*") if p.suffix in CHECKPOINT_SUFFIXES)
    if len(found) != 1:
        raise UserError(f"init.from {reference}: the run {run_dir} holds {len(found)} checkpoint files "
                        f"({store.CHECKPOINT_STEM}.pt or .ckpt); name the one to start from")
    return found[0]


def _check_network(spec: Spec, reference: str, state: dict[str, Any], meta: dict[str, Any]) -> None:
    shapes = {name: tuple(np.shape(value)) for name, value in state.items()}
    network = model_of_state(shapes, meta)["name"]
    bias = shapes.get(f"{NETWORKS[network].CLASSIFIER}.bias")
    classes = bias[0] if bias is not None and len(bias) == 1 else None
    problems = []
    if network != spec.model.name:
        problems.append(f"model.name {network} (this run: {spec.model.name})")
    if classes != spec.model.num_classes:
        problems.append(f"model.num_classes {classes} (this run: {spec.model.num_classes})")
    if problems:
        raise UserError(f"init.from {reference}: its network is not this run's: {'; '.join(problems)}; start from a "
                        f"checkpoint of a {spec.model.name} with {spec.model.num_classes} classes")


def load_into(backend: Any, source: Source) -> dict[str, Any]:
    """The source's weights into a built backend (module docstring's rules); what the run records."""
    target = backend.state_numpy()
    merged, fresh, problems = dict(target), [], []
    for name, value in target.items():
        given = source.state.get(name)
        if given is not None and tuple(np.shape(given)) == tuple(np.shape(value)):
            merged[name] = np.asarray(given, dtype=value.dtype)
        elif is_noise(name):
            fresh.append(name)
        elif given is None:
            problems.append(f"missing {name}")
        else:
            problems.append(f"{name} {tuple(np.shape(given))} (this run: {tuple(np.shape(value))})")
    dropped = [name for name in source.state if name not in target and is_noise(name)]
    problems += [f"unexpected {name}" for name in source.state if name not in target and not is_noise(name)]
    if problems:
        shown = ", ".join(problems[:6]) + (f" and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise UserError(f"init.from {source.reference}: its tensors do not match this run's network: {shown}")
    backend.load_state_numpy(merged)
    return describe(source, fresh, dropped)


def describe(source: Source, fresh: list[str], dropped: list[str]) -> dict[str, Any]:
    shapes = {name: tuple(np.shape(value)) for name, value in source.state.items()}
    return {**source.origin, "source_model": model_of_state(shapes, source.meta), "fresh": fresh,
            "left_out": dropped}


def recorded(run_dir: Path) -> dict[str, Any] | None:
    """The run directory's init.json (None without one, or where it cannot be read)."""
    try:
        value = store.read_json(run_dir / INIT)
    except store.TornRecord:
        return None
    return value if isinstance(value, dict) else None
