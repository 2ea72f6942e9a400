"""The sha256 a run records for its data, and the key of its decoded-array cache entry.

A file's checksum is its plain sha256 (so it matches a published one). A folder's is the sha256
over its relevant files in sorted order of their names within the layout, each contributing its
name, size and bytes: renaming `cat/1.png` to `dog/1.png` changes the labels, so it changes the key.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    _update(digest, path)
    return digest.hexdigest()


def files_sha256(named_files: Iterable[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for name, path in sorted(named_files):
        digest.update(name.encode() + b"\0" + path.stat().st_size.to_bytes(8, "little"))
        _update(digest, path)
    return digest.hexdigest()


def _update(digest: "hashlib._Hash", path: Path) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
