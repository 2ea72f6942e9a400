"""Who works on a run directory across hosts: a lease file, for stores that several machines share.

claim.py's flock is exact on one host, but on the file systems where clusters keep stores it can
succeed and exclude nothing (NFS with `nolock` or `local_lock=flock`, Lustre with `localflock`), and
an NFSv4 lock is lost by a partitioned node that keeps running. A lease needs only what every shared
file system keeps: an exclusive create (O_CREAT|O_EXCL), a rename, and file contents.

- `<run>/.lease` names its holder (host, pid, an owner token, the attempt it serves) and a heartbeat
  time. The holder rewrites the heartbeat every timeout/HEARTBEATS seconds from a thread.
- Another driver takes the lease over only when its heartbeat is older than the timeout
  (FDABNN_LEASE_TIMEOUT_S, default LEASE_TIMEOUT_S), or at once when it names a process of this
  host that no longer exists. A takeover holds `.lease.takeover` (created exclusively), judges the
  lease again under it and only then removes it; the contenders then create theirs exclusively and
  one wins. (Renaming the stale file away and putting back a fresh one moved by mistake left a
  window in which two contenders both held the lease: measured, 1 in a few runs of 8 contenders.)
- The timeout must exceed the clocks' skew between hosts and any pause of the holder (a suspended
  VM): a holder that did not beat for longer may find its lease taken; its heartbeat thread then
  sees another token and marks the lease lost, and its driver stops accepting the cell's reports.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.store.atomic import atomic_write_json
from bench.store.claim import Busy

LEASE = ".lease"
TAKEOVER = ".lease.takeover"  # held while a stale lease is judged again and removed
LEASE_TIMEOUT_S = 120.0  # a heartbeat older than this frees the cell for another driver
HEARTBEATS = 6  # heartbeats per timeout: a holder may miss several before it loses the lease
TIMEOUT_ENV = "FDABNN_LEASE_TIMEOUT_S"
HOST_ENV = "FDABNN_HOST"  # this process's host name, as leases and records give it


def host_name() -> str:
    """This host's name: FDABNN_HOST where set (tests run two "hosts" on one machine), else the
    system's."""
    return os.environ.get(HOST_ENV) or socket.gethostname()


def lease_timeout() -> float:
    value = os.environ.get(TIMEOUT_ENV)
    if value is None:
        return LEASE_TIMEOUT_S
    try:
        timeout = float(value)
    except ValueError:
        timeout = -1.0
    if not timeout > 0:
        raise UserError(f"{TIMEOUT_ENV}={value!r}: expected a number of seconds > 0; unset it for "
                        f"{LEASE_TIMEOUT_S:.0f} s")
    return timeout


def read_lease(run_dir: Path) -> dict[str, Any] | None:
    """The lease's contents, None when there is none or it cannot be read (being replaced)."""
    try:
        info = json.loads((run_dir / LEASE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale(info: dict[str, Any], timeout: float, now: float | None = None) -> bool:
    """Whether a lease may be taken over: its heartbeat is older than `timeout`, or it names a
    process of this host that has exited (a killed driver's: no need to wait)."""
    beat = info.get("heartbeat")
    if not isinstance(beat, (int, float)):
        return True
    if info.get("host") == socket.gethostname() == host_name() and not _pid_alive(info.get("pid")):
        return True
    return (time.time() if now is None else now) - beat > timeout


def _describe(info: dict[str, Any] | None) -> str:
    if not info:
        return "another driver"
    age = time.time() - info["heartbeat"] if isinstance(info.get("heartbeat"), (int, float)) else float("nan")
    return f"pid {info.get('pid')} on host {info.get('host')} (heartbeat {age:.0f} s ago)"


class Lease:
    """A held lease on one run directory; `release()` ends it. `lost` turns true when another driver
    took it over (this holder's heartbeat was older than the timeout)."""

    def __init__(self, run_dir: Path, info: dict[str, Any], timeout: float):
        self.run_dir, self.info, self.timeout = run_dir, info, timeout
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease {run_dir.name}", daemon=True)
        self._thread.start()

    @property
    def token(self) -> str:
        return self.info["token"]

    def owned(self) -> bool:
        """Whether the lease file still names this holder."""
        info = read_lease(self.run_dir)
        return info is not None and info.get("token") == self.token

    def set(self, **fields: Any) -> None:
        """Change what the lease tells others (the attempt it serves, where it runs)."""
        self.info = {**self.info, **fields}
        self._refresh()

    def _refresh(self) -> None:
        if self.lost:
            return
        if not self.owned():  # taken over while this holder did not beat: never write over the new holder
            self.lost = True
            return
        self.info = {**self.info, "heartbeat": time.time()}
        atomic_write_json(self.run_dir / LEASE, self.info)

    def _beat(self) -> None:
        while not self._stop.wait(self.timeout / HEARTBEATS):
            try:
                self._refresh()
            except OSError:
                pass  # the store is briefly unreachable: the next beat tries again, the timeout has room

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        if not self.lost and self.owned():
            (self.run_dir / LEASE).unlink(missing_ok=True)


def acquire(run_dir: Path, attempt: int = 0, timeout: float | None = None) -> Lease:
    """Hold run_dir's lease; Busy when another driver holds it with a fresh heartbeat."""
    timeout = lease_timeout() if timeout is None else timeout
    run_dir.mkdir(parents=True, exist_ok=True)
    info = {"host": host_name(), "pid": os.getpid(), "token": uuid.uuid4().hex, "attempt": attempt,
            "heartbeat": time.time()}
    for _ in range(3):  # a contender may create or remove the file between our steps
        if _create(run_dir, info):
            return Lease(run_dir, info, timeout)
        held = read_lease(run_dir)
        if held is not None and not stale(held, timeout):
            raise Busy(run_dir, _describe(held))
        if held is not None:
            _take_over(run_dir, timeout)
        else:
            time.sleep(0.05)  # being written or replaced: look again
    raise Busy(run_dir, _describe(read_lease(run_dir)))


def _create(run_dir: Path, info: dict[str, Any]) -> bool:
    try:
        fd = os.open(run_dir / LEASE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _take_over(run_dir: Path, timeout: float) -> None:
    """Remove the lease if it is still stale, judged again while holding the takeover lock (an
    exclusively created `.lease.takeover`): only its holder unlinks a lease, so a lease created after
    the judgement is never removed, and of the contenders that then create one exclusively one wins.
    A takeover lock older than the timeout is a taker's that died between two calls: removed."""
    lock = run_dir / TAKEOVER
    try:
        os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        try:
            if time.time() - lock.stat().st_mtime > timeout:
                lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return  # another contender is taking over: the caller looks again
    try:
        held = read_lease(run_dir)
        if held is not None and stale(held, timeout):
            (run_dir / LEASE).unlink(missing_ok=True)
    finally:
        lock.unlink(missing_ok=True)
