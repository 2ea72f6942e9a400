"""`fdabnn convert`: a checkpoint of either backend in the other's format (.pt <-> .ckpt).

The model travels under the model zoo's names (bench/zoo_names.py), the one naming both backends
speak at their interface: read the source into {zoo name: array}, build the destination backend's
model for the architecture those tensors describe, load them through its `load_state_numpy` (which
refuses any missing, unexpected or mis-shaped name in one line), and write a model-only checkpoint
that the destination backend's `load_checkpoint` accepts. Tensors are copied bit for bit (float32
both sides), so a checkpoint converted either way and back has identical model tensors. The
optimizer state is dropped (its layout is framework-specific); the meta (epoch, history) is kept.

The architecture is inferred from the tensors: the noise module is present iff *.noise_* tensors
are, its k is the one that reproduces every hidden width h = max(1, d // k), and the class count is
linear.bias's length.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import backends
from bench.errors import UserError
from bench.spec import Spec

SUFFIX_BACKEND = {".pt": "torch", ".pth": "torch", ".ckpt": "mindspore"}  # checkpoint suffix -> backend


def _backend_of(path: Path) -> str:
    if path.suffix not in SUFFIX_BACKEND:
        raise UserError(f"checkpoint {path}: unknown suffix '{path.suffix}'; expected .pt, .pth or .ckpt")
    return SUFFIX_BACKEND[path.suffix]


def _noise_k(shapes: dict[str, tuple[int, ...]]) -> int:
    """The k giving every noise module's hidden width h = max(1, d // k) (fc1.weight is (h, d));
    the default 64 if none does (the destination's shape check then names the culprits)."""
    pairs = [shape for name, shape in shapes.items() if name.endswith(".fc1.weight") and ".noise_" in name]
    for k in range(1, max((d for _, d in pairs), default=1) + 2):
        if all(max(1, d // k) == h for h, d in pairs):
            return k
    return 64


def spec_for_state(state: dict[str, Any], backend: str) -> Spec:
    """The spec of the model that `state` (model zoo names; torch names work too, since the noise
    and linear names are shared) was saved from, for `backend` on CPU in fp32."""
    shapes = {name: tuple(np.shape(value)) for name, value in state.items()}
    noise = any(".noise_" in name for name in shapes)
    tree: dict[str, Any] = {"backend": backend, "device": "cpu", "precision": "fp32",
                            "noise": {"enabled": noise, "k": _noise_k(shapes) if noise else 64}}
    if "linear.bias" in shapes and len(shapes["linear.bias"]) == 1 and shapes["linear.bias"][0] >= 2:
        tree["model"] = {"num_classes": shapes["linear.bias"][0]}
    return Spec.model_validate(tree)


def _build(spec: Spec) -> Any:
    backend = backends.create(spec)
    backend.build(steps_per_epoch=1)
    return backend


# ---- MindSpore side ---------------------------------------------------------------------------

def _read_ckpt(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from backends.mindspore.checkpoint import OPTIMIZER_PREFIX, read_ckpt

    tensors, meta = read_ckpt(path)
    return {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)}, meta or {}


def _write_ckpt(path: Path, state: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    from backends.mindspore.checkpoint import write_ckpt

    backend = _build(spec_for_state(state, "mindspore"))
    backend.load_state_numpy(state)
    write_ckpt(path, backend.state_numpy(), meta)


# ---- PyTorch side -----------------------------------------------------------------------------

def _read_pt(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Torch names -> model zoo names; a name torch_to_zoo does not know is kept as it is, so the
    destination's check reports it as unexpected."""
    import torch

    from backends.pytorch.names import torch_to_zoo

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        raise UserError(f"checkpoint {path}: not a readable PyTorch checkpoint ({exc})".splitlines()[0]) from None
    wrapped = isinstance(payload, dict) and isinstance(payload.get("model"), dict)
    model_state = payload["model"] if wrapped else payload
    meta = dict(payload.get("meta") or {}) if wrapped else {}
    if not isinstance(model_state, dict):
        raise UserError(f"checkpoint {path}: holds no model state_dict")
    torch_state = {k: v.numpy() for k, v in model_state.items() if not k.endswith(".num_batches_tracked")}
    backend = _build(spec_for_state(torch_state, "torch"))
    mapping = torch_to_zoo(backend.model)
    return {mapping.get(k, k): v for k, v in torch_state.items()}, meta


def _write_pt(path: Path, state: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """{"model": state_dict, "meta": ...}: what TorchBackend.load_checkpoint reads, without optimizer."""
    import torch

    backend = _build(spec_for_state(state, "torch"))
    backend.load_state_numpy(state)
    payload = {"model": backend.model.state_dict(), "meta": meta}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_READERS = {"torch": _read_pt, "mindspore": _read_ckpt}
_WRITERS = {"torch": _write_pt, "mindspore": _write_ckpt}


def read_state(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A checkpoint of either backend as ({model zoo name: array}, meta), optimizer state dropped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path}: not found")
    return _READERS[_backend_of(path)](path)


def convert_checkpoint(src: Path, dst: Path) -> None:
    """Write `src` (.pt or .ckpt) as `dst` in the other backend's format, model weights only."""
    src, dst = Path(src), Path(dst)
    src_backend, dst_backend = _backend_of(src), _backend_of(dst)
    if src_backend == dst_backend:
        raise UserError(f"convert {src} -> {dst}: both are {src_backend} checkpoints; give a .pt and a .ckpt")
    reason = backends.unavailable_reason(dst_backend)
    if reason:
        raise UserError(f"convert to {dst.suffix}: backend '{dst_backend}' unavailable: {reason}")
    state, meta = read_state(src)
    _WRITERS[dst_backend](dst, state, meta)
