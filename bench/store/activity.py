"""Which trainings run at the same time on this host, so that a step time measured while another
training shared the cores or the GPU is recorded as such.

Each training process registers in <results>/.active/<host>/<pid>.json, holding an flock on its
file while it runs (the kernel drops it when the process exits, however it exits) and naming the
device it trains on ("cpu", or "cuda:<CUDA_VISIBLE_DEVICES>"). `peers` counts the other live
registrations on the host, and on the same device, and clears the files of dead processes.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ACTIVE = ".active"


def device_key(device: str) -> str:
    """'cpu', or 'cuda:<the GPUs this process sees>' (two cells on one GPU share it; on two, not)."""
    return "cpu" if device == "cpu" else f"cuda:{os.environ.get('CUDA_VISIBLE_DEVICES', 'all')}"


@dataclass
class Sharing:
    """The most other trainings seen at once on this host, and on this process's device."""

    host_peers: int = 0
    device_peers: int = 0

    def see(self, host: int, device: int) -> None:
        self.host_peers, self.device_peers = max(self.host_peers, host), max(self.device_peers, device)

    def shared(self, device: str) -> bool:
        """Whether step times were measured while another training used the same resource: the same
        GPU, or on a CPU the same host's cores."""
        return self.device_peers > 0 or (device == "cpu" and self.host_peers > 0)


@contextmanager
def registered(results: Path, device: str) -> Iterator[str]:
    """Register this process as training on `device` for the block; yields its device key."""
    folder = results / ACTIVE / socket.gethostname()
    folder.mkdir(parents=True, exist_ok=True)
    key = device_key(device)
    path, tmp = folder / f"{os.getpid()}.json", folder / f".{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": os.getpid(), "device": key}).encode())
        os.rename(tmp, path)  # visible to `peers` only once locked: never taken for a dead one's
        yield key
    finally:
        path.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        os.close(fd)


def peers(results: Path, key: str) -> tuple[int, int]:
    """(other live trainings on this host, of which on device `key`)."""
    host = device = 0
    for path in (results / ACTIVE / socket.gethostname()).glob("*.json"):
        if path.stem == str(os.getpid()):
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            path.unlink(missing_ok=True)  # its process is gone
            continue
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
        host += 1
        try:
            device += json.loads(path.read_text()).get("device") == key
        except (OSError, ValueError):
            pass
    return host, device
