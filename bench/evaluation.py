"""`fdabnn eval`: evaluate a checkpoint on the test split and print the model zoo's dict."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import backends
from bench import store
from bench.data.cifar10 import load_for_spec
from bench.errors import UserError
from bench.spec import Spec, build_spec, merge, parse_overrides


def resolve_checkpoint(path: Path) -> tuple[Path, dict[str, Any]]:
    """A run directory or a checkpoint file -> (checkpoint, spec tree). A bare checkpoint (the model
    zoo's fdabnn.ckpt, say) gets the default spec with the backend its suffix implies."""
    if path.is_dir():
        found = sorted(path.glob(f"{store.CHECKPOINT_STEM}.*"))
        found = [p for p in found if p.suffix in backends.CHECKPOINT_SUFFIXES]
        if not found:
            raise UserError(f"{path}: no checkpoint.pt or checkpoint.ckpt in this run directory; "
                            "train first or pass the checkpoint file")
        path = found[0]
    if not path.is_file():
        raise UserError(f"checkpoint {path}: not found; pass a run directory or a .pt/.ckpt file")
    backend = backends.checkpoint_backend(path)
    spec_tree = store.read_json(path.parent / store.SPEC) or {"backend": backend}
    return path, spec_tree


def evaluate_checkpoint(path: Path, overrides: list[str] | None = None) -> dict[str, float]:
    checkpoint, tree = resolve_checkpoint(path)
    spec: Spec = build_spec(merge(tree, parse_overrides(overrides or [])))
    native = backends.checkpoint_backend(checkpoint)
    if spec.backend != native:
        raise UserError(f"checkpoint {checkpoint} is a {native} checkpoint but backend={spec.backend}; convert it "
                        "with `fdabnn convert` first")
    backends.check_runnable(spec)
    backend = backends.prepare(spec, load_for_spec(spec, require_train=False))
    backend.load_checkpoint(checkpoint)
    return backend.evaluate()
