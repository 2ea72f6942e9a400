"""What the GPU check brings back, and how the development machine takes it in.

The GPU machine gets a copy of the working tree without git, and its output folder takes a few
plain-named files: the check writes one archive (gpu-check.tar.gz) holding its own results store
(bench records, the training's run directory), the log, the tests' JUnit XML, the verdict and
manifest.json. The manifest names the code it ran by content: the git blob id of every source file,
so `fold` finds the commit even when the GPU machine could not (and the records say
git_commit "unknown"). `fdabnn summary --import ARCHIVE` folds it into the results store: records
are copied as measured there (device, versions, times), with only the unknown commit filled in from
the manifest (and `commit_from: "archive manifest"` saying so).
"""
from __future__ import annotations

import hashlib
import io
import json
import platform
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.environment import REPO, git

ARCHIVE = "gpu-check.tar.gz"
MANIFEST = "manifest.json"
STORE = "store"  # the check's results store, inside the archive
SOURCE_GLOBS = ("bench/**/*.py", "bench/**/*.toml", "backends/**/*.py", "tests/**/*.py", "ablations/*.toml",
                "Makefile", "pyproject.toml")


def _blob_id(data: bytes) -> str:
    """git's id of a file's content (`git hash-object`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def source_files(root: Path = REPO) -> dict[str, str]:
    """path -> git blob id of every source file of the suite under `root`."""
    files = {}
    for pattern in SOURCE_GLOBS:
        for path in root.glob(pattern):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(root).as_posix()] = _blob_id(path.read_bytes())
    return dict(sorted(files.items()))


def manifest(started: float, deadline_s: float, rehearse: bool, wheels: list[str]) -> dict[str, Any]:
    versions: dict[str, Any] = {}
    for name in ("torch", "numpy", "pandas", "pydantic"):
        module = sys.modules.get(name)
        versions[name] = getattr(module, "__version__", None) if module else None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        versions |= {"cuda": torch.version.cuda, "device_name": torch.cuda.get_device_name()}
    return {"git_commit": git("rev-parse", "HEAD"), "files": source_files(), "python": platform.python_version(),
            "host": platform.node(), "machine": platform.machine(), "versions": versions,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "deadline_s": deadline_s, "rehearse": rehearse,
            "wheels_installed": wheels}


def write(out: Path, work: Path, files: dict[str, Any]) -> Path:
    """out/gpu-check.tar.gz from the folder `work` (everything under it) and extra JSON `files`;
    written beside and renamed, so a kill mid-write leaves the previous archive."""
    target = out / ARCHIVE
    partial = out / (ARCHIVE + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(work, arcname=".")
        for name, content in files.items():
            data = json.dumps(content, indent=1).encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    partial.replace(target)
    return target


def commit_of(files: dict[str, str], candidates: int = 300) -> str | None:
    """The newest commit of this repository whose source files are those of the manifest."""
    revisions = (git("rev-list", f"--max-count={candidates}", "--all") or "").split()
    for revision in revisions:
        listing = git("ls-tree", "-r", revision, "--", *sorted({p.split("/")[0] for p in files})) or ""
        blobs = {}
        for line in listing.splitlines():
            meta, path = line.split("\t", 1)
            blobs[path] = meta.split()[2]
        if blobs and all(blobs.get(path) == blob for path, blob in files.items()) and set(blobs) >= set(files):
            return revision
    return None


def fold(archive: Path, root: Path, allow_rehearsal: bool = False) -> list[str]:
    """Copy the records of a GPU check's archive into the results store `root`; lines saying what was
    taken in. Raises UserError for an archive that is not one."""
    from bench import store
    from bench.errors import UserError

    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise UserError(f"{archive}: not a GPU check archive ({exc}); expected the {ARCHIVE} of "
                        "`python3 -m bench.gpu_check --out DIR`") from None
    with tar, tempfile.TemporaryDirectory() as scratch:
        try:
            tar.extractall(scratch, filter="data")
            meta = json.loads((Path(scratch) / MANIFEST).read_text())
        except (OSError, tarfile.TarError, ValueError) as exc:
            raise UserError(f"{archive}: unreadable or without {MANIFEST} ({exc}); take the archive the check "
                            "wrote whole") from None
        if meta.get("rehearse") and not allow_rehearsal:
            raise UserError(f"{archive}: a CPU rehearsal's archive (toy sizes, no GPU): not folded into the results; "
                            "import the archive of a run on the GPU machine")
        commit = meta.get("git_commit") or commit_of(meta.get("files", {}))
        found = ("from the archive's manifest" if meta.get("git_commit") else
                 "matched by the manifest's file contents" if commit else "no commit here has these files")
        commit = commit or "unknown"
        taken = []
        for path in sorted((Path(scratch) / STORE).rglob("*")):
            relative = path.relative_to(Path(scratch) / STORE)
            if not path.is_file() or relative.parts[0].startswith("."):  # .active/: that host's live registry
                continue
            data = path.read_bytes()
            if path.suffix == ".json":
                data = _with_commit(data, commit)
            destination = root / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with store.atomic_path(destination) as tmp:
                tmp.write_bytes(data)
            taken.append(relative.as_posix())
    runs = sorted({p.split("/")[1] for p in taken if p.startswith("runs/")})
    bench = [p for p in taken if p.startswith("bench/")]
    return [f"folded {archive} (measured {meta.get('started')} on {meta.get('versions', {}).get('device_name') or meta.get('machine')}, "
            f"commit {commit[:12]}: {found})", f"{len(bench)} bench records, runs: {', '.join(runs) or 'none'}"]


def _with_commit(data: bytes, commit: str) -> bytes:
    """A JSON store file with an unknown git commit (its own or its environment's) set to `commit`."""
    try:
        content = json.loads(data)
    except ValueError:
        return data
    if not isinstance(content, dict):
        return data
    for holder in (content, content.get("environment")):
        if isinstance(holder, dict) and str(holder.get("git_commit", "")).startswith("unknown"):
            holder["git_commit"] = commit
            holder["commit_from"] = "archive manifest"
    return json.dumps(content, indent=1).encode()
