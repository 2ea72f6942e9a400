"""Writes that a kill at any instant cannot tear: the one helper behind every file the suite keeps
(records, progress, checkpoints of both backends, converted checkpoints).

The content goes to a temporary name in the target's folder, is flushed and fsynced, and is renamed
over the target: a reader sees the old version or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path next to `path` for a writer that wants a file name (torch.save,
    MindSpore's save_checkpoint); when the block ends normally it is synced and renamed to `path`,
    otherwise removed. `suffix`: what the temporary name ends in (MindSpore appends .ckpt to a
    name lacking it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.fchmod(fd, _FILE_MODE)  # mkstemp makes 0600; a record is as readable as any file the user writes
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())
