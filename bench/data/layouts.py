"""The ways users hold CIFAR-10, how each is found under a root, and how each is read.

Three kinds of storage, each either as a folder or inside a tar archive:

- python batches: `cifar-10-batches-py/` (data_batch_1..5, test_batch), as the official
  `cifar-10-python.tar.gz` and torchvision keep it;
- binary batches: `cifar-10-batches-bin/` (data_batch_1..5.bin, test_batch.bin), as the official
  `cifar-10-binary.tar.gz` holds it, or split as the MindSpore model zoo keeps it, with the test
  batch in `cifar-10-verify-bin/` (which may be all there is, for evaluation);
- an image-folder tree `train/<class>/*`, `test/<class>/*` (PNG is lossless, JPEG lossy).

When a root holds several, the preference is python > binary > image folder (the first two are the
exact official pixels), an extracted folder before an archive of the same kind; the chosen layout
is what the run records, and the ones passed over are named in its note. Two equally preferred
candidates are an error rather than a silent pick.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bench.data import archive, records
from bench.data.checksum import file_sha256, files_sha256
from bench.data.dataset import CLASSES
from bench.data.splits import Splits, empty_images
from bench.errors import UserError

PYTHON_FOLDER = "cifar-10-batches-py"
BINARY_FOLDER = "cifar-10-batches-bin"
VERIFY_FOLDER = "cifar-10-verify-bin"
SPLITS = ("train", "test")
_PEEK_FILES = 16  # an archive's kind is told by its first recognisable file among these

Item = tuple[str, bytes, str]  # (name within the layout, raw bytes, where it came from for messages)


class NoLayout(UserError):
    """A root folder holding nothing recognisable; the loader downloads into it when allowed."""


@dataclass(frozen=True)
class BatchKind:
    """Python or binary batches: a fixed set of file names, train batches concatenated in order."""

    format: str
    train_names: tuple[str, ...]
    test_name: str
    decode: Callable[[bytes, str], tuple[np.ndarray, np.ndarray]]

    @property
    def archive_format(self) -> str:
        return self.format

    @property
    def train_hint(self) -> str:
        return f"{self.train_names[0]}..{self.train_names[-1]}"

    def key(self, name: str) -> str | None:
        base = name.rsplit("/", 1)[-1]
        return base if base in self.train_names or base == self.test_name else None

    def read(self, items: Iterable[Item], source: str) -> Splits:
        decoded = {self.key(name): self.decode(raw, where) for name, raw, where in items}
        if self.test_name not in decoded:
            raise UserError(f"{source}: no {self.test_name}; expected the test batch beside the training batches; "
                            f"re-extract the official archive or copy {self.test_name} there")
        present = [n for n in self.train_names if n in decoded]
        if present and len(present) < len(self.train_names):
            missing = ", ".join(n for n in self.train_names if n not in decoded)
            raise UserError(f"{source}: training batches incomplete, missing {missing}; expected all of "
                            f"{self.train_hint} (or none, for a test-only copy); re-extract the official archive")
        train = [decoded[n] for n in present]
        train_x, train_y = (np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train])) \
            if train else empty_images()
        test_x, test_y = decoded[self.test_name]
        return Splits(train_x, train_y, test_x, test_y, lossy=False)


class ImageFolderKind:
    """`train/<class>/<file>` and `test/<class>/<file>`; labels are the class's index in CLASSES,
    images ordered by label, then file name."""

    format = "image-folder"
    archive_format = "image-folder-tar"
    train_hint = "train/<class>/ folders"

    def key(self, name: str) -> str | None:
        parts = name.split("/")
        if len(parts) < 3 or parts[-3] not in SPLITS or parts[-1].startswith("."):
            return None
        return "/".join(parts[-3:])

    def read(self, items: Iterable[Item], source: str) -> Splits:
        decoded: dict[str, list[tuple[int, str, np.ndarray]]] = {split: [] for split in SPLITS}
        lossy = False
        for name, raw, where in items:
            split, cls, filename = self.key(name).split("/")
            pixels, is_jpeg = records.image(raw, where)
            decoded[split].append((class_label(cls, where), filename, pixels))
            lossy |= is_jpeg
        if not decoded["test"]:
            raise UserError(f"{source}: no images under test/<class>/; expected test/<class>/ folders beside "
                            f"train/<class>/ ones; add the test split")
        arrays = [self._stack(decoded[split], split, source) for split in SPLITS]
        return Splits(*arrays[0], *arrays[1], lossy=lossy)

    @staticmethod
    def _stack(images: list[tuple[int, str, np.ndarray]], split: str, source: str) -> tuple[np.ndarray, np.ndarray]:
        if not images:
            return empty_images()
        missing = sorted(set(CLASSES) - {CLASSES[label] for label, _, _ in images})
        if missing:
            raise UserError(f"{source}: {split}/ has no images of {', '.join(missing)}; expected a folder for "
                            f"each of the 10 classes; add them")
        images.sort(key=lambda item: item[:2])
        return np.stack([pixels for _, _, pixels in images]), np.array([label for label, _, _ in images], np.int64)


PYTHON = BatchKind("python-batches", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", records.python_batch)
BINARY = BatchKind("binary-batches", tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin",
                   records.binary_batch)
IMAGE_FOLDER = ImageFolderKind()
KINDS: tuple[BatchKind | ImageFolderKind, ...] = (PYTHON, BINARY, IMAGE_FOLDER)  # in order of preference

LOOKED_FOR = (f"{PYTHON_FOLDER}/ (or data_batch_1..5 and test_batch in the root itself), {BINARY_FOLDER}/ and "
              f"{VERIFY_FOLDER}/ (or *.bin batches in the root itself), train/<class>/ and test/<class>/ image "
              f"folders, and .tar.gz archives of any of these")


def class_label(name: str, where: str) -> int:
    if name not in CLASSES:
        raise UserError(f"{where}: class folder '{name}' is not a CIFAR-10 class; expected one of "
                        f"{', '.join(CLASSES)}; rename or remove it")
    return CLASSES.index(name)


@dataclass(frozen=True)
class Layout:
    """One CIFAR-10 copy found under a root: a folder layout's files, or an archive."""

    kind: BatchKind | ImageFolderKind
    path: Path  # the folder or archive a run records as its source
    files: tuple[tuple[str, Path], ...] = ()  # a folder layout's (name within the layout, file)
    note: str = ""

    @property
    def is_archive(self) -> bool:
        """An archive is hashed and streamed whole; a folder layout lists the files that make it."""
        return not self.files

    @property
    def format(self) -> str:
        return self.kind.archive_format if self.is_archive else self.kind.format

    def checksum(self) -> str:
        return file_sha256(self.path) if self.is_archive else files_sha256(self.files)

    def read(self) -> Splits:
        return self.kind.read(self._items(), str(self.path))

    def _items(self) -> Iterator[Item]:
        if self.is_archive:
            for name, raw in archive.files(self.path, lambda name: self.kind.key(name) is not None):
                yield name, raw, f"{self.path} (member {name})"
        else:
            for name, path in self.files:
                yield name, path.read_bytes(), str(path)


def find(root: Path) -> Layout:
    """The layout at `root`: an archive file, a layout folder, or a folder holding any of them."""
    if root.is_file():
        return _archive(root)
    candidates = [*_python_folders(root), *_binary_folders(root), *_image_folder(root)]
    unreadable = []
    for path in sorted(root.iterdir()):
        if path.is_file() and archive.is_archive_name(path):
            try:
                candidates.append(_archive(path))
            except UserError as exc:
                unreadable.append(str(exc))
    if not candidates and unreadable:  # a copy that is there but broken: say so rather than download around it
        raise UserError(f"{root}: no CIFAR-10 copy found that can be read; unusable: {'; '.join(unreadable)}")
    if not candidates:
        raise NoLayout(f"{root}: no CIFAR-10 copy found; looked for {LOOKED_FOR}; point the data root "
                       f"(--data-root or $CIFAR10_ROOT) at a CIFAR-10 copy, or allow the download")
    candidates.sort(key=_rank)
    best, others = candidates[0], candidates[1:]
    ties = [c for c in others if _rank(c) == _rank(best)]
    if ties:
        names = ", ".join(str(c.path) for c in (best, *ties))
        raise UserError(f"{root}: several equally preferred CIFAR-10 copies ({names}); expected one per kind; "
                        f"point the data root at the one to use")
    if others:
        passed_over = ", ".join(f"{c.path} ({c.format})" for c in others)
        best = replace(best, note="; ".join(filter(None, [best.note, f"preferred over {passed_over}"])))
    return best


def _rank(layout: Layout) -> tuple[int, bool]:
    return KINDS.index(layout.kind), layout.is_archive


def _archive(path: Path) -> Layout:
    names = archive.first_file_names(path, _PEEK_FILES)
    for name in names:
        for kind in KINDS:
            if kind.key(name) is not None:
                return Layout(kind, path)
    raise UserError(f"{path}: archive holds no CIFAR-10 layout (first files: {', '.join(names) or 'none'}); "
                    f"expected {PYTHON_FOLDER}/, {BINARY_FOLDER}/ or train/<class>/ inside; check the archive")


def _python_folders(root: Path) -> list[Layout]:
    found = []
    for folder in (root, root / PYTHON_FOLDER):
        files = _present(folder, (*PYTHON.train_names, PYTHON.test_name))
        if files:
            found.append(Layout(PYTHON, folder, files))
    return found


def _binary_folders(root: Path) -> list[Layout]:
    """Train and test batches may sit in different folders (the model zoo's `cifar-10-verify-bin`)."""
    folders = (root, root / BINARY_FOLDER, root / VERIFY_FOLDER)
    train_from = next((f for f in folders if _present(f, BINARY.train_names)), None)
    test_from = next((f for f in folders if _present(f, (BINARY.test_name,))), None)
    if train_from is None and test_from is None:
        return []
    files = (*(_present(train_from, BINARY.train_names) if train_from else ()),
             *(_present(test_from, (BINARY.test_name,)) if test_from else ()))
    if train_from is None or test_from is None or train_from == test_from:
        return [Layout(BINARY, train_from or test_from, files)]
    return [Layout(BINARY, root, files, note=f"train from {train_from.name}/, test from {test_from.name}/")]


def _image_folder(root: Path) -> list[Layout]:
    files = []
    for split in SPLITS:
        if not (root / split).is_dir():
            continue
        for class_dir in sorted(os.scandir(root / split), key=lambda e: e.name):
            if class_dir.is_dir():
                class_label(class_dir.name, class_dir.path)  # refuse a stray folder before hashing the tree
                files += [(f"{split}/{class_dir.name}/{f.name}", Path(f.path)) for f in os.scandir(class_dir.path)
                          if f.is_file() and not f.name.startswith(".")]
    return [Layout(IMAGE_FOLDER, root, tuple(files))] if files else []


def _present(folder: Path, names: Iterable[str]) -> tuple[tuple[str, Path], ...]:
    return tuple((name, folder / name) for name in names if (folder / name).is_file())
