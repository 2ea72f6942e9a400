"""Reading a tar archive (gzip, bzip2, xz or plain) in one streaming pass, never extracting it.

Streaming keeps a 60,000-member archive to a single sequential read, and turns every way a damaged
archive can fail (bad gzip header, truncated stream, garbled tar header) into one UserError.
"""
from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.errors import UserError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")

_DAMAGE = (tarfile.TarError, EOFError, OSError, zlib.error)


def is_archive_name(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def files(archive: Path, wanted: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """Yield (member name, bytes) for the regular-file members `wanted` accepts, in archive order."""
    with _open(archive) as tar, _damage_reported(archive):
        for member in tar:
            if member.isfile() and wanted(member.name):
                yield member.name, tar.extractfile(member).read()


def first_file_names(archive: Path, limit: int) -> list[str]:
    """Names of the first `limit` regular files: enough to tell which layout an archive holds,
    read without decompressing the (possibly 170 MB) rest."""
    names: list[str] = []
    with _open(archive) as tar, _damage_reported(archive):
        for member in tar:
            if member.isfile():
                names.append(member.name)
                if len(names) == limit:
                    break
    return names


def _open(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, mode="r|*")
    except _DAMAGE as exc:
        raise UserError(f"{archive}: not a readable tar archive ({exc}); expected a .tar.gz of a CIFAR-10 "
                        f"layout; check the file, or download or copy it again") from None


@contextmanager
def _damage_reported(archive: Path) -> Iterator[None]:
    try:
        yield
    except _DAMAGE as exc:
        raise UserError(f"{archive}: archive is truncated or corrupt ({type(exc).__name__}: {exc}); "
                        f"expected a complete .tar.gz; download or copy it again") from None
