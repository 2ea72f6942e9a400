"""A child process of the GPU check: its output printed line by line as it comes (and kept in the
check's log), killed with its whole process group when its time is up."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.environment import REPO


@dataclass(frozen=True)
class Ended:
    returncode: int  # 124 when killed at its time limit
    seconds: float
    tail: list[str]  # its last lines

    @property
    def timed_out(self) -> bool:
        return self.returncode == 124

    def last_line(self) -> str:
        return self.tail[-1][:200] if self.tail else "no output"


def run(args: list[str], timeout: float, log: Path, env: dict[str, str] | None = None) -> Ended:
    """`python args...` in the repository, for at most `timeout` seconds."""
    start = time.monotonic()
    command = [sys.executable, *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120", **(env or {})}
    tail: list[str] = []
    with open(log, "a") as out:
        out.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(command)} (at most {timeout:.0f} s)\n")
        out.flush()
        child = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(max(timeout, 0), kill)
        timer.start()
        try:
            for line in child.stdout:  # type: ignore[union-attr]
                sys.stdout.write(line)
                sys.stdout.flush()
                out.write(line)
                tail = (tail + [line.rstrip()])[-40:]
            child.wait()
        finally:
            timer.cancel()
            if child.poll() is None:
                kill()
                child.wait()
        code = 124 if killed.is_set() else child.returncode
        if killed.is_set():
            out.write(f"=== killed at its limit of {timeout:.0f} s\n")
    return Ended(code, time.monotonic() - start, [line for line in tail if line.strip()])
