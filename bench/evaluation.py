"""`fdabnn eval`: evaluate a checkpoint on the test split and print the model zoo's dict."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import backends
from bench import store
from bench.convert import SUFFIX_BACKEND
from bench.errors import UserError
from bench.spec import Spec, build_spec, merge, parse_overrides
from bench.training import load_data

def resolve_checkpoint(path: Path) -> tuple[Path, dict[str, Any]]:
    """A run directory or a checkpoint file -> (checkpoint, spec tree). A bare checkpoint (the model
    zoo's fdabnn.ckpt, say) gets the default spec with the backend its suffix implies."""
    if path.is_dir():
        found = sorted(path.glob(f"{store.CHECKPOINT_STEM}.*"))
        found = [p for p in found if p.suffix in SUFFIX_BACKEND]
        if not found:
            raise UserError(f"{path}: no checkpoint.pt or checkpoint.ckpt in this run directory; "
                            "train first or pass the checkpoint file")
        path = found[0]
    if not path.is_file():
        raise UserError(f"checkpoint {path}: not found; pass a run directory or a .pt/.ckpt file")
    if path.suffix not in SUFFIX_BACKEND:
        raise UserError(f"checkpoint {path}: unknown suffix '{path.suffix}'; expected .pt, .pth or .ckpt")
    spec_tree = store.read_json(path.parent / store.SPEC) or {"backend": SUFFIX_BACKEND[path.suffix]}
    return path, spec_tree


def evaluate_checkpoint(path: Path, overrides: list[str] | None = None) -> dict[str, float]:
    checkpoint, tree = resolve_checkpoint(path)
    spec: Spec = build_spec(merge(tree, parse_overrides(overrides or [])))
    if spec.backend != SUFFIX_BACKEND[checkpoint.suffix]:
        raise UserError(f"checkpoint {checkpoint} is a {SUFFIX_BACKEND[checkpoint.suffix]} checkpoint but "
                        f"backend={spec.backend}; convert it with `fdabnn convert` first")
    backend = backends.create(spec)
    data = load_data(spec, require_train=False)
    backend.build(steps_per_epoch=1)
    backend.set_data(data)
    backend.load_checkpoint(checkpoint)
    return backend.evaluate()
