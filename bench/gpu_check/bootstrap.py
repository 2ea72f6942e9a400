"""What the GPU check needs before it imports anything of the suite: the carried wheels installed
into a site directory of its own (the GPU machine has no pydantic and no network), and one line
for whatever is missing (a CUDA GPU, the data, the wheels) before any work starts.

Standard library only: this runs before pydantic is importable. A wheel is a zip archive laid out
as site-packages wants it, so installing one into a fresh directory is unpacking it (no pip needed).
"""
from __future__ import annotations

import os
import platform
import sys
import zipfile
from pathlib import Path

from bench.environment import REPO

WHEELS = REPO / ".whl"
DATA = REPO / ".data"
REQUIRED = ("pydantic", "yaml", "pandas", "numpy", "rich", "torch", "pytest")


class Missing(Exception):
    """A precondition of the check, as its one-line error."""


def _fits(wheel: Path) -> bool:
    """Whether a wheel's tags (name-version[-build]-python-abi-platform.whl) fit this interpreter."""
    parts = wheel.name[:-len(".whl")].split("-")
    python, abi, plat = parts[-3].split("."), parts[-2], parts[-1].split(".")
    ours = {"py3", f"py{sys.version_info.major}", f"cp{sys.version_info.major}{sys.version_info.minor}"}
    return bool(ours & set(python)) and abi in ("none", "abi3", *ours) and (
        plat == ["any"] or any(p.endswith(platform.machine()) for p in plat))


def install_wheels(site: Path, wheels: Path = WHEELS) -> list[str]:
    """Unpack the wheels of `wheels` that fit this Python into `site`, put it first on sys.path and
    on the children's PYTHONPATH; the names installed."""
    site.mkdir(parents=True, exist_ok=True)
    installed = []
    for wheel in sorted(wheels.glob("*.whl")) if wheels.is_dir() else []:
        if _fits(wheel):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(site)
            installed.append(wheel.name)
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), str(REPO), os.environ.get("PYTHONPATH")]))
    return installed


def data_root() -> Path:
    """$CIFAR10_ROOT, else the carried .data/ (set as CIFAR10_ROOT for the children)."""
    root = Path(os.environ.get("CIFAR10_ROOT") or DATA)
    os.environ["CIFAR10_ROOT"] = str(root)
    return root


def preflight(rehearse: bool, out: Path) -> None:
    """Raise Missing with the fix for the first precondition that fails."""
    import importlib.util

    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        hint = ("carry .whl/ (`make gpu-wheels` on the development machine)" if "pydantic" in missing
                else "install them")
        raise Missing(f"python packages {', '.join(missing)}: not importable by {sys.executable}; {hint}")
    root = data_root()
    if not root.exists() or not any(root.iterdir()):
        raise Missing(f"CIFAR-10: nothing at {root}; carry .data/ (`make gpu-data`) or set CIFAR10_ROOT")
    if not rehearse:
        from backends.pytorch.backend import TorchBackend

        if not TorchBackend.cuda_available():
            raise Missing(f"CUDA: PyTorch {TorchBackend.versions()['torch']} sees no GPU here; run on the GPU "
                          "machine, or `--rehearse` to rehearse on this CPU")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise Missing(f"--out {out}: not writable ({exc.strerror}); name a folder this user can write") from None
