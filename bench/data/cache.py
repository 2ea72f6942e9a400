"""Decoded arrays on disk, keyed by the source's sha256, so a dataset is decoded once per machine.

An entry is a folder `<sha256>.v<N>/` holding one .npy file per array and `meta.json`, written
last, which records the shapes and the lossy flag. Every file is written to a temporary name in the
same folder and renamed into place, so a reader never sees a half-written file; an entry that
fails any check on load (missing or truncated file, wrong shape, labels out of range) is treated as
absent and rebuilt by the caller.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from bench.data.splits import Splits, well_formed
from bench.errors import UserError

# Bump when decoding changes (pixel order, label mapping), so entries written before are never served.
VERSION = 1
_META = "meta.json"


def default_dir() -> Path:
    return Path(os.environ.get("FDABNN_CACHE") or "~/.cache/fdabnn/arrays").expanduser()


def entry_dir(cache_dir: Path, checksum: str) -> Path:
    return cache_dir / f"{checksum}.v{VERSION}"


def load(cache_dir: Path, checksum: str) -> Splits | None:
    """The cached arrays of the source with this checksum, or None when absent or damaged."""
    entry = entry_dir(cache_dir, checksum)
    try:
        meta = json.loads((entry / _META).read_text())
        arrays = {name: np.load(entry / f"{name}.npy", allow_pickle=False) for name in meta["shapes"]}
        splits = Splits(**arrays, lossy=meta["lossy"])
    except (OSError, ValueError, KeyError, TypeError):  # missing, truncated or foreign files
        return None
    shapes_match = all(list(arrays[name].shape) == shape for name, shape in meta["shapes"].items())
    return splits if shapes_match and well_formed(splits) else None


def store(cache_dir: Path, checksum: str, splits: Splits) -> None:
    entry = entry_dir(cache_dir, checksum)
    try:
        entry.mkdir(parents=True, exist_ok=True)
        for name, array in splits.arrays().items():
            _write_atomically(entry / f"{name}.npy", lambda f, a=array: np.save(f, a, allow_pickle=False))
        meta = {"shapes": {name: list(a.shape) for name, a in splits.arrays().items()}, "lossy": splits.lossy}
        _write_atomically(entry / _META, lambda f: f.write(json.dumps(meta).encode()))
    except OSError as exc:
        raise UserError(f"{entry}: cannot write the decoded-array cache ({exc}); expected a writable folder; "
                        f"set $FDABNN_CACHE (or pass cache_dir) to one") from None


def _write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
