"""Fetching the official CIFAR-10 Python archive into the data root, verified before it is used.

The archive is written to a temporary file beside its final name and renamed into place only once
its md5 matches, so an interrupted or corrupted download never leaves a file the loader would read;
the temporary file is removed on any failure, Ctrl-C and SIGTERM included. A server that stops
sending fails after _TIMEOUT_S; one that trickles fails at the whole download's deadline
($CIFAR10_DOWNLOAD_DEADLINE_S, default one hour).
A mirror may be named with $CIFAR10_URL; only then may $CIFAR10_MD5 replace the official md5 (a
mirror of a repacked archive), so the official URL is always checked against the official md5.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import signal
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from bench.errors import UserError

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
_CHUNK = 1 << 20
_TIMEOUT_S = 60
_DEADLINE_S = 3600.0


def _deadline_s() -> float:
    text = os.environ.get("CIFAR10_DOWNLOAD_DEADLINE_S", str(_DEADLINE_S))
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UserError(f"$CIFAR10_DOWNLOAD_DEADLINE_S={text!r}: expected a number of seconds > 0")
    return value


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM ends the process through Python's cleanup (SystemExit), not at once, so the partial
    download is removed; restored afterwards. Only the main thread may set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def source() -> tuple[str, str]:
    """(url, md5) to download from: the official ones, or a mirror's from the environment."""
    url, md5 = os.environ.get("CIFAR10_URL"), os.environ.get("CIFAR10_MD5")
    if md5 and not url:
        raise UserError("$CIFAR10_MD5 is set without $CIFAR10_URL; expected it only alongside a mirror's URL "
                        "(the official archive's md5 is fixed); unset CIFAR10_MD5 or set CIFAR10_URL too")
    return url or OFFICIAL_URL, (md5 or OFFICIAL_MD5).lower()


def download_archive(root: Path) -> Path:
    """Download the Python archive into `root` (created if missing) and return its path."""
    url, md5 = source()
    deadline = time.monotonic() + _deadline_s()
    target = root / ARCHIVE_NAME
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{ARCHIVE_NAME}.", suffix=".part")
    try:
        with _sigterm_raises(), os.fdopen(fd, "wb") as out:
            got = _fetch(url, out, deadline)
        if got != md5:
            raise UserError(f"{url}: downloaded archive has md5 {got}; expected {md5}; the download was "
                            f"corrupted or the mirror serves another file: retry, or fix $CIFAR10_URL/$CIFAR10_MD5")
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        if created:
            root.rmdir()
        raise
    return target


def _fetch(url: str, out: BinaryIO, deadline: float) -> str:
    """Stream `url` into `out` with a progress bar until `deadline` (time.monotonic); return the md5
    of what was received."""
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, _progress() as progress:
            length = response.headers.get("Content-Length")
            task = progress.add_task(f"CIFAR-10 {ARCHIVE_NAME}", total=int(length) if length else None)
            while chunk := response.read1(_CHUNK):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"not complete at the deadline of {_deadline_s():.0f} s "
                                       f"($CIFAR10_DOWNLOAD_DEADLINE_S) after {received} bytes")
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                progress.advance(task, len(chunk))
        if length and received != int(length):  # read(n) just returns b"" when the server hangs up early
            raise ConnectionError(f"connection closed after {received} of {length} bytes")
    # URLError and timeouts are OSErrors; HTTPException: a garbled response; ValueError: a malformed URL
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise UserError(f"{url}: download failed ({exc}); expected the CIFAR-10 Python archive; check the network, "
                        f"set $CIFAR10_URL to a mirror, or put {ARCHIVE_NAME} into the data root yourself") from None
    return digest.hexdigest()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True))
