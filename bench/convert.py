"""`fdabnn convert`: a checkpoint of either backend in the other's format (.pt <-> .ckpt).

The model travels under the model zoo's names (bench/zoo_names.py), the one naming both backends
speak at their interface: the source backend reads its file into {zoo name: array}
(`read_model_state`), the destination backend is built for the architecture those tensors
describe (bench.networks.spec_tree_for_state), loads them through its `load_state_numpy`
(which refuses any missing, unexpected or mis-shaped name in one line) and writes a model-only
checkpoint (`save_model`) that its `load_checkpoint` accepts. Tensors are copied bit for bit
(float32 both sides), so a checkpoint converted either way and back has identical model tensors.
The optimizer state is dropped (its layout is framework-specific); the meta (epoch, history) is kept,
and the source run's model fields that the tensors' shapes do not tell (model.binarize, model.scaling:
bench.networks.recorded_model) go with it as meta["model"], so the converted file still says
whether it holds a full-precision twin.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import backends
from bench import store
from bench.networks import recorded_model, spec_tree_for_state
from bench.errors import UserError
from bench.spec import Spec, build_spec


def spec_for_state(state: dict[str, Any], backend: str, meta: Any = None) -> Spec:
    """The spec of the model that `state` was saved from (with its checkpoint's `meta`), for `backend`
    on CPU in fp32."""
    shapes = {name: tuple(np.shape(value)) for name, value in state.items()}
    return build_spec({**spec_tree_for_state(shapes, meta), "backend": backend, "device": "cpu", "precision": "fp32"})


def read_state(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A checkpoint of either backend as ({model zoo name: array}, meta), optimizer state dropped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path}: not found")
    name = backends.checkpoint_backend(path)
    reason = backends.unavailable_reason(name)
    if reason:
        raise UserError(f"read {path}: backend '{name}' unavailable: {reason}")
    return backends.backend_class(name).read_model_state(path)


def convert_checkpoint(src: Path, dst: Path) -> None:
    """Write `src` (.pt or .ckpt) as `dst` in the other backend's format, model weights only."""
    src, dst = Path(src), Path(dst)
    if dst.is_dir():
        raise UserError(f"convert {src} -> {dst}: the destination is a folder; give a file name ending in .pt or .ckpt")
    src_backend, dst_backend = backends.checkpoint_backend(src), backends.checkpoint_backend(dst)
    if src_backend == dst_backend:
        raise UserError(f"convert {src} -> {dst}: both are {src_backend} checkpoints; give a .pt and a .ckpt")
    reason = backends.unavailable_reason(dst_backend)
    if reason:
        raise UserError(f"convert to {dst.suffix}: backend '{dst_backend}' unavailable: {reason}")
    state, meta = read_state(src)
    if not isinstance(meta, dict):
        store.checked_meta(src, meta)  # refuses, naming what the meta is; its content is carried as it is
    spec = spec_for_state(state, dst_backend, meta)
    model = recorded_model(meta)
    # the source run's spec names the other backend: the converted file belongs to no run directory
    meta = {k: v for k, v in meta.items() if k != "spec"} | ({"model": model} if model else {})
    backend = backends.prepare(spec)
    backend.load_state_numpy(state)
    backend.save_model(dst, meta)
