"""Writes that a kill at any instant cannot tear: the one helper behind every file the suite keeps
(records, progress, checkpoints of both backends, converted checkpoints).

The content goes to a temporary name in the target's folder, is flushed and fsynced, and is renamed
over the target: a reader sees the old version or the new one, never half of one.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.errors import NoSpace

_FULL = (errno.ENOSPC, errno.EDQUOT)


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
    except BaseException as exc:
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        needed = max(written, path.stat().st_size if path.exists() else 0, 1)
        if isinstance(exc, Exception) and _out_of_space(exc, path.parent, needed):
            raise _no_space(path, needed) from None
        raise


def _out_of_space(exc: Exception, folder: Path, needed: int) -> bool:
    """Whether a writer failed for want of space: an ENOSPC, or, since torch.save reports a full disk
    as a RuntimeError of its C++ stream, `needed` bytes that cannot be reserved there now."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL
    try:
        fd, name = tempfile.mkstemp(prefix=".space-probe.", dir=folder)
    except OSError as probe:
        return probe.errno in _FULL
    try:
        os.posix_fallocate(fd, 0, needed)
        return False
    except OSError as probe:
        return probe.errno in _FULL
    finally:
        os.close(fd)
        os.unlink(name)


def _no_space(path: Path, needed: int) -> NoSpace:
    """One line: where, what, how much is needed (what was written before the disk filled, or
    the size of the version it replaces) and how much is free."""
    free = shutil.disk_usage(path.parent).free
    return NoSpace(f"results store {path.parent}: no space left writing {path.name} (needs at least "
                   f"{needed / 1e6:.1f} MB, {free / 1e6:.1f} MB free; the previous {path.name} is intact); free space "
                   "there or set FDABNN_RESULTS to another disk, then run the same command again to resume")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())
