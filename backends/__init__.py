"""Backend registry. Frameworks are imported lazily: with one missing, the other still runs."""
from __future__ import annotations

import importlib

from pathlib import Path

from backends.base import Backend, resolve_device
from bench.data.dataset import Cifar10Arrays
from bench.errors import Unsupported, UserError
from bench.spec import Spec

_MODULES = {"torch": "backends.pytorch.backend", "mindspore": "backends.mindspore.backend"}
# which backend's native format a checkpoint file is, by its suffix (no framework import needed)
CHECKPOINT_SUFFIXES = {".pt": "torch", ".pth": "torch", ".ckpt": "mindspore"}


def backend_class(name: str) -> type[Backend]:
    if name not in _MODULES:
        raise UserError(f"backend '{name}': unknown; choose one of {', '.join(_MODULES)}")
    return importlib.import_module(_MODULES[name]).BACKEND


def unavailable_reason(name: str) -> str | None:
    """None if backend `name` can be imported here, else a one-line reason."""
    try:
        cls = backend_class(name)
    except ImportError as exc:
        return f"{name} is not installed ({exc.name or exc}); run `make setup`"
    return cls.unavailable_reason()


def available_backends() -> list[str]:
    return [name for name in _MODULES if unavailable_reason(name) is None]


def resolved_device(spec: Spec) -> str:
    """The device `spec` runs on here ("auto" resolved as its backend would), or the spec's own
    when its backend cannot be imported (a skipped cell names what it asked for)."""
    if spec.device != "auto" or unavailable_reason(spec.backend):
        return spec.device
    return resolve_device(spec.device, backend_class(spec.backend).cuda_available())


def check_runnable(spec: Spec) -> type[Backend]:
    """Refuse, before any work, a spec this machine cannot run (framework, device, precision)."""
    reason = unavailable_reason(spec.backend)
    if reason:
        raise Unsupported(f"backend '{spec.backend}' unavailable: {reason}")
    cls = backend_class(spec.backend)
    reason = cls.unsupported_reason(spec)
    if reason:
        raise Unsupported(f"spec field 'precision'/'device': {reason}")
    return cls


def prepare(spec: Spec, data: Cifar10Arrays | None = None) -> Backend:
    """The one way to get a backend: refused before any work if this machine cannot run `spec`,
    else built (model, optimizer, seeded) and, given `data`, holding it on its device."""
    backend = check_runnable(spec)(spec)
    backend.build()
    if data is not None:
        backend.set_data(data)
    return backend


def checkpoint_backend(path: Path) -> str:
    """The backend whose native format `path` is, by its suffix."""
    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise UserError(f"checkpoint {path}: unknown suffix '{path.suffix}'; expected "
                        f"{', '.join(CHECKPOINT_SUFFIXES)}")
    return CHECKPOINT_SUFFIXES[path.suffix]
