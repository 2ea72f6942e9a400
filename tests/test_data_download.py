"""Downloading the official archive, against an HTTP server on 127.0.0.1 that each test starts."""
from __future__ import annotations

import functools
import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import synthetic_data as synthetic
from bench.data import download
from bench.data.cifar10 import load_cifar10
from bench.data.layouts import PYTHON_FOLDER
from bench.errors import UserError

SPLITS = synthetic.random_splits(per_class=1)


CUT_SHORT = "/cut-short.tar.gz"
TRICKLE = "/trickle.tar.gz"  # a byte every 50 ms: never idle for the read timeout, never done


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files, at CUT_SHORT a response whose connection drops before its promised length, and
    at TRICKLE one that sends a byte every 50 ms for at most 10 s."""

    def do_GET(self) -> None:
        if self.path == TRICKLE:
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            deadline = time.monotonic() + 10
            try:
                while time.monotonic() < deadline:
                    self.wfile.write(b"\x1f")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:  # the client gave up
                pass
            return None
        if self.path != CUT_SHORT:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" * 500)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        """Keep test output clean."""


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """The folder the server publishes, holding a small archive in the official python-batch format."""
    site = tmp_path / "site"
    synthetic.write_python_batches(tmp_path / "staging", SPLITS)
    site.mkdir()
    synthetic.write_tar_gz(tmp_path / "staging", site / download.ARCHIVE_NAME, (PYTHON_FOLDER,))
    return site


@pytest.fixture
def url(served: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """$CIFAR10_URL and $CIFAR10_MD5 pointing at the served archive."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Handler, directory=str(served)))
    # a short poll interval lets shutdown() return at once instead of after the default 0.5 s
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    archive_url = f"http://127.0.0.1:{server.server_address[1]}/{download.ARCHIVE_NAME}"
    monkeypatch.setenv("CIFAR10_URL", archive_url)
    monkeypatch.setenv("CIFAR10_MD5", hashlib.md5((served / download.ARCHIVE_NAME).read_bytes()).hexdigest())
    yield archive_url
    server.shutdown()
    server.server_close()
    thread.join()


def test_missing_root_is_downloaded_verified_and_loaded(url: str, tmp_path: Path) -> None:
    root = tmp_path / "data" / "cifar10"
    got = load_cifar10(root, cache_dir=tmp_path / "cache")
    assert [p.name for p in root.iterdir()] == [download.ARCHIVE_NAME]
    assert got.source.path == str((root / download.ARCHIVE_NAME).resolve())
    assert got.source.format == "python-batches"
    for name, array in SPLITS.arrays().items():
        np.testing.assert_array_equal(getattr(got, name), array)


def test_root_without_a_copy_is_downloaded_into(url: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "notes.txt").write_text("no CIFAR-10 here yet")
    assert load_cifar10(root, cache_dir=tmp_path / "cache").source.format == "python-batches"
    assert sorted(p.name for p in root.iterdir()) == [download.ARCHIVE_NAME, "notes.txt"]


def test_local_copy_is_not_downloaded_again(url: str, served: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    load_cifar10(root, cache_dir=tmp_path / "cache")
    (served / download.ARCHIVE_NAME).unlink()  # a second download would now fail
    assert load_cifar10(root, cache_dir=tmp_path / "cache").source.format == "python-batches"


def test_wrong_checksum_is_refused_and_nothing_left(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR10_MD5", "0" * 32)
    root = tmp_path / "data"
    with pytest.raises(UserError, match=f"{url}: downloaded archive has md5 [0-9a-f]{{32}}; expected 0{{32}}"):
        load_cifar10(root, cache_dir=tmp_path / "cache")
    assert not root.exists()


def test_wrong_checksum_leaves_an_existing_root_as_it_was(url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR10_MD5", "0" * 32)
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(UserError, match="md5"):
        load_cifar10(root, cache_dir=tmp_path / "cache")
    assert list(root.iterdir()) == []


def test_http_error_is_a_user_error(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR10_URL", url.replace(download.ARCHIVE_NAME, "missing.tar.gz"))
    root = tmp_path / "data"
    with pytest.raises(UserError, match="download failed .*404.*CIFAR10_URL"):
        load_cifar10(root, cache_dir=tmp_path / "cache")
    assert not root.exists()


def test_connection_cut_short_is_a_user_error(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR10_URL", url.replace(f"/{download.ARCHIVE_NAME}", CUT_SHORT))
    root = tmp_path / "data"
    with pytest.raises(UserError, match="download failed \\(connection closed after 1000 of 100000 bytes\\)"):
        load_cifar10(root, cache_dir=tmp_path / "cache")
    assert not root.exists()


def test_official_source_unless_a_mirror_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIFAR10_URL", raising=False)
    monkeypatch.delenv("CIFAR10_MD5", raising=False)
    assert download.source() == ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                                 "c58f30108f718f92721af3b95e74349a")
    monkeypatch.setenv("CIFAR10_URL", "https://mirror.example/cifar-10-python.tar.gz")
    assert download.source() == ("https://mirror.example/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")


def test_md5_override_needs_a_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIFAR10_URL", raising=False)
    monkeypatch.setenv("CIFAR10_MD5", "0" * 32)
    with pytest.raises(UserError, match="CIFAR10_MD5 is set without \\$CIFAR10_URL"):
        download.source()


def test_a_trickling_server_meets_the_deadline_and_leaves_no_part_file(url: str, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFAR10_URL", url.rsplit("/", 1)[0] + TRICKLE)
    monkeypatch.setenv("CIFAR10_DOWNLOAD_DEADLINE_S", "1")
    root = tmp_path / "data"
    root.mkdir()
    started = time.monotonic()
    with pytest.raises(UserError, match="deadline"):
        download.download_archive(root)
    assert time.monotonic() - started < 5
    assert list(root.iterdir()) == []


def test_sigterm_during_a_download_removes_the_part_file(url: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    env = {**os.environ, "CIFAR10_URL": url.rsplit("/", 1)[0] + TRICKLE}
    child = subprocess.Popen([sys.executable, "-c", "import sys; from pathlib import Path; "
                              "from bench.data import download; download.download_archive(Path(sys.argv[1]))",
                              str(root)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not list(root.glob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(root.glob("*.part")), "the download never started"
    time.sleep(0.3)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) != 0
    assert list(root.iterdir()) == []
