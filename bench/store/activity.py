"""Which trainings run at the same time on this host, so that a step time measured while another
training shared the cores or the GPU is recorded as such; and, on a CPU, how busy the host's other
processes kept the cores (a test suite or a compiler slows a step as much as a second training does).

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
import time
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
    foreign_cores: float | None = None  # cores the host's other processes kept busy, on average

    def see(self, host: int, device: int) -> None:
        self.host_peers, self.device_peers = max(self.host_peers, host), max(self.device_peers, device)

    def shared(self, device: str) -> bool:
        """Whether step times were measured while another training used the same resource (the same
        GPU, or on a CPU the same host's cores), or on a CPU while other processes kept more than
        FOREIGN_LOAD_CORES busy."""
        busy = self.foreign_cores is not None and self.foreign_cores > FOREIGN_LOAD_CORES
        return self.device_peers > 0 or (device == "cpu" and (self.host_peers > 0 or busy))


# An idle Linux host's daemons use a few hundredths of a core; a pytest run or a compiler uses a whole one.
FOREIGN_LOAD_CORES = 0.25


class HostLoad:
    """The CPU time the rest of the host used between start() and stop(), from /proc/stat (Linux)
    less this process's own (os.times, all its threads); None where /proc/stat is not readable."""

    def __init__(self) -> None:
        self._start: tuple[float, float, float] | None = None

    @staticmethod
    def _now() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        busy_s = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # guest time is already in user
        own = os.times()
        return busy_s, own.user + own.system, time.monotonic()

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> float | None:
        """Average cores busy outside this process since start()."""
        end = self._now()
        if self._start is None or end is None or end[2] <= self._start[2]:
            return None
        busy, own, wall = (b - a for a, b in zip(self._start, end))
        return max(0.0, (busy - own) / wall)


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
