"""Child processes, launched one way: the ablation runner's cells and the benchmark's groups each run
in a `python -m <module>` process of their own, so a crash, a segfault or a framework's global state
stays inside it. What a child hands back is its files (a run record, bench records); `Exit` says
how it ended when those are missing, in the words a record's `reason` uses.

- Linux: the child is sent SIGTERM when its parent dies, so a killed runner leaves no orphan writing
  into a directory that the next run is about to use.
- With a log file, the child's output is appended to it (under a header line with the command) at
  LOG_COLUMNS columns, and its last line is kept for the reason.
- Ctrl-C in the parent stops the child (SIGINT, then SIGKILL after 30 s) and is raised again.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POLL_S = 1.0  # the parent shares the cores with a timed child: it looks rarely
LOG_COLUMNS = 120  # a child's rich output goes to a file, 80 columns unless told

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # type: ignore[union-attr]


@dataclass(frozen=True)
class Exit:
    returncode: int
    last_line: str  # the child's last line of output ("" without a log)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def reason(self) -> str:
        """'killed by SIGSEGV: <last line>' or 'exit status 1: <last line>'."""
        if self.returncode < 0:
            cause = f"killed by {signal.Signals(-self.returncode).name}"
        else:
            cause = f"exit status {self.returncode}"
        return f"{cause}: {self.last_line}" if self.last_line else cause


def run_child(module: str, args: list[str], log: Path | None = None, poll: Callable[[], None] | None = None,
              env: dict[str, str] | None = None) -> Exit:
    """Run `python -m module *args` to its end, calling `poll` about every POLL_S seconds; `env`
    adds to this process's environment (a None value removes the variable)."""
    command = [sys.executable, "-m", module, *args]
    preexec = _die_with_parent if _LIBC else None
    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    if log is None:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=env, preexec_fn=preexec)
        return Exit(_wait(child, poll), "")
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        out.flush()
        offset = out.tell()
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 env={**env, "COLUMNS": str(LOG_COLUMNS)}, preexec_fn=preexec)
        returncode = _wait(child, poll)
    return Exit(returncode, _last_line(log, offset))


def _wait(child: subprocess.Popen[bytes], poll: Callable[[], None] | None) -> int:
    try:
        while child.poll() is None:
            if poll is not None:
                poll()
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        _stop(child)
        raise
    return child.returncode


def _stop(child: subprocess.Popen[bytes]) -> None:
    """Ctrl-C: the child (same terminal) usually has its SIGINT already; make sure, then wait."""
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _last_line(log: Path, offset: int) -> str:
    with open(log, "rb") as fh:
        fh.seek(offset)
        lines = [line.strip() for line in fh.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
