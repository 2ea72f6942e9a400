"""What a person sees: `fdabnn train` and `fdabnn eval` in a real 80-column terminal (a pty)."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from bench.environment import REPO

pytestmark = pytest.mark.skipif(not os.environ.get("CIFAR10_ROOT"),
                                reason="CIFAR10_ROOT is not set: point it at a CIFAR-10 copy (make test does)")

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
TOY = ["epochs=2", "data.subset=10", "data.test_subset=10", "batch_size=16", "n_end=12", "noise=true", "device=cpu"]


def in_terminal(args: list[str], results: Path, columns: int = 80) -> tuple[int, list[str]]:
    """Run `fdabnn *args` on a pty of `columns` columns; (exit status, screen lines without escapes)."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    child = subprocess.Popen([sys.executable, "-m", "bench.cli", *args], cwd=REPO, stdin=secondary,
                             stdout=secondary, stderr=secondary, env={**env, "FDABNN_RESULTS": str(results),
                                                                      "TERM": "xterm-256color"})
    os.close(secondary)
    chunks, deadline = [], time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.5)
        if ready:
            try:
                data = os.read(primary, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif child.poll() is not None:
            break
    os.close(primary)
    child.wait(timeout=60)
    text = ANSI.sub("", b"".join(chunks).decode(errors="replace"))
    return child.returncode, [line for line in re.split(r"\r\n|\r|\n", text) if line.strip()]


@pytest.mark.slow  # two real CLI runs in a pseudo-terminal, ~30 s
def test_train_and_eval_speak_plainly_in_80_columns(tmp_path):
    code, lines = in_terminal(["train", *TOY], tmp_path)
    assert code == 0, lines
    # paths are printed whole, for copying; everything else fits
    wide = [line for line in lines if len(line) > 80 and str(tmp_path) not in line]
    assert not wide, wide
    assert not any("…" in line or "..." in line for line in lines), lines
    run_dir = next(line.split(": ", 1)[1] for line in lines if line.startswith("run directory: "))
    assert Path(run_dir).is_dir() and str(tmp_path) in run_dir
    progress = [line for line in lines if line.startswith("fda-n9-12+noise ep ")]
    assert progress and all(" ETA " in line for line in progress)
    assert any(line.startswith("fda-n9-12+noise ep 2/2 ") for line in progress)  # the whole run, not one epoch
    assert any(line.startswith("epoch 2/2 n=12 | train loss ") for line in lines)

    code, lines = in_terminal(["eval", run_dir], tmp_path)
    assert code == 0, lines
    said = next(line for line in lines if line.startswith("evaluating "))
    assert "(torch-fda-n9-12+noise-fp32, epoch 2 of 2) on 100 test images" in said, said
    assert lines[-1].startswith("{'Validation-Loss': ")
