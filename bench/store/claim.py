"""Who works on a run directory: one process at a time, by an exclusive lock on run_dir/.claim.

The lock is an flock: the kernel drops it when its holder exits, however it exits (kill -9
included), so a claim can never outlive the process that made it and nothing needs clearing by
hand. Whoever trains a run holds it: `fdabnn train` itself, or, for an ablation cell, the runner that
launched it (the child is told through CLAIM_ENV that its parent holds the claim). A second process
that wants the same directory gets `Busy`, naming the holder (pid, host, since when), or, through
`holder`, learns that it should leave the run to the other.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.errors import UserError

CLAIM = ".claim"
CLAIM_ENV = "FDABNN_CLAIM_HELD_BY"  # the pid of a parent that holds the claim for this process


class Busy(UserError):
    """Another process holds the run directory."""

    exit_code = 4

    def __init__(self, run_dir: Path, holder: str):
        super().__init__(f"run directory {run_dir}: in use by {holder}; wait for it to finish (or stop it), then "
                         "run the same command again")
        self.holder = holder


@contextmanager
def claim(run_dir: Path, where: str = "") -> Iterator[None]:
    """Hold run_dir's claim for the block; Busy at once if another process holds it. `where` (a
    device slot such as "gpu 0") is shown to others with the holder."""
    if os.environ.get(CLAIM_ENV) == str(os.getppid()):
        yield  # the parent (an ablation runner) claimed the directory for this process
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / CLAIM, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(run_dir, _describe(run_dir)) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "where": where,
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def holder(run_dir: Path) -> str | None:
    """Who holds run_dir's claim now ('pid 123 on host h since ...'), None when nobody does."""
    return _describe(run_dir) if holder_info(run_dir) is not None else None


def holder_info(run_dir: Path) -> dict[str, Any] | None:
    """The claim's {pid, host, where, since} while somebody holds it, else None."""
    try:
        fd = os.open(run_dir / CLAIM, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
    try:
        info = json.loads((run_dir / CLAIM).read_text())
    except (OSError, ValueError):
        info = None
    return info if isinstance(info, dict) else {}


def _describe(run_dir: Path) -> str:
    try:
        info = json.loads((run_dir / CLAIM).read_text())
        return f"pid {info['pid']} on host {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
