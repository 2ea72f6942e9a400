"""CIFAR-10 as uint8 arrays from whatever copy the user holds: the one entry point of the data layer.

    root -> find a layout (download the official archive if none) -> sha256 -> cached arrays, or
    decode and cache them -> Cifar10Arrays tagged with where they came from.

Nothing here knows a framework: both backends receive the same NumPy arrays.
"""
from __future__ import annotations

import os
from pathlib import Path

from bench.data import cache, layouts
from bench.data.dataset import Cifar10Arrays, DataSource
from bench.data.download import download_archive
from bench.errors import UserError
from bench.spec import Spec

DEFAULT_ROOT = "~/.cache/fdabnn/cifar10"
SUBSET_SEED = 0  # fixed, so every run of a study trains and tests on the same images


def resolve_root(root: str | Path | None) -> Path:
    """root flag, else $CIFAR10_ROOT, else ~/.cache/fdabnn/cifar10 (the download target)."""
    return Path(root or os.environ.get("CIFAR10_ROOT") or DEFAULT_ROOT).expanduser()


def load_cifar10(root: str | Path | None = None, *, download: bool = True, cache_dir: str | Path | None = None,
                 require_train: bool = True) -> Cifar10Arrays:
    """Load CIFAR-10 found under `root` (see bench.data.layouts for the layouts and their preference).

    download: fetch the official Python archive into `root` when no copy is found there.
    cache_dir: where decoded arrays are kept ($FDABNN_CACHE, else ~/.cache/fdabnn/arrays).
    require_train: False accepts a test-only copy (the model zoo's evaluation layout), with empty
    training arrays.
    """
    path = resolve_root(root)
    layout = _find_or_download(path, download)
    checksum = layout.checksum()
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else cache.default_dir()
    splits = cache.load(cache_root, checksum)
    if splits is None:
        splits = layout.read()
        cache.store(cache_root, checksum, splits)
    if require_train and len(splits.train_y) == 0:
        raise UserError(f"{layout.path}: holds only the test split; expected the training data too "
                        f"({layout.kind.train_hint}); point the data root at a copy that has them, or load with "
                        f"require_train=False to evaluate only")
    source = DataSource(path=str(layout.path.resolve()), format=layout.format, checksum=checksum,
                        lossy=splits.lossy, note=layout.note)
    return Cifar10Arrays(splits.train_x, splits.train_y, splits.test_x, splits.test_y, source)


def _find_or_download(root: Path, download: bool) -> layouts.Layout:
    if root.exists():
        try:
            return layouts.find(root)
        except layouts.NoLayout:
            if not download:
                raise
    elif not download:
        raise UserError(f"{root}: no such file or folder; expected a CIFAR-10 copy there; point the data root "
                        f"(--data-root or $CIFAR10_ROOT) at one, or allow the download to fetch it there")
    download_archive(root)
    return layouts.find(root)


def load_for_spec(spec: Spec, require_train: bool = True) -> Cifar10Arrays:
    """The data a spec trains and tests on: its root, download flag and stratified subsets."""
    data = load_cifar10(spec.data.root, download=spec.data.download, require_train=require_train)
    return data.subsample(spec.data.subset if require_train else None, spec.data.test_subset, seed=SUBSET_SEED)
