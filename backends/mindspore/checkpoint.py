"""MindSpore .ckpt files as this suite writes and reads them.

A checkpoint is one .ckpt: named tensors (the model under the model zoo's names, then any optimizer
and loss-scaler state under OPTIMIZER_PREFIX + MindSpore's own names: optimizer.accum.<param>,
optimizer.stat.<param>, optimizer.learning_rate, ...; the prefix tells model from training state
without knowing the optimizer) and, when given, the run's meta as a JSON string entry `META_KEY`
(MindSpore's append_dict), so tensors and meta can never disagree. Writes are atomic
(bench.store.atomic_path): a crash mid-save leaves the previous checkpoint whole.
The model zoo's released fdabnn.ckpt is such a file with model tensors only.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor

from bench.errors import UserError
from bench.store import atomic_path

META_KEY = "fdabnn_meta"
OPTIMIZER_PREFIX = "optimizer."


def write_ckpt(path: Path, tensors: dict[str, Tensor | Parameter | np.ndarray], meta: dict[str, Any] | None) -> None:
    entries = [{"name": name, "data": value if isinstance(value, Tensor) else Tensor(value)}
               for name, value in tensors.items()]
    append = {META_KEY: json.dumps(meta)} if meta is not None else None
    # MindSpore appends ".ckpt" to a name lacking it, so the temporary name ends in .ckpt too
    with atomic_path(path, suffix=".ckpt") as tmp:
        ms.save_checkpoint(entries, str(tmp), append_dict=append)


def read_ckpt(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    """(tensors as numpy arrays by name, meta or None)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path}: not found")
    try:
        raw = ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"checkpoint {path}: not a readable MindSpore checkpoint ({exc})".splitlines()[0]) from None
    meta_text = raw.pop(META_KEY, None)
    tensors = {name: value.asnumpy() for name, value in raw.items() if not isinstance(value, str)}
    return tensors, (json.loads(meta_text) if isinstance(meta_text, str) else None)
