"""What init.from may say, and the label it gives a run. Pure: nothing here reads a file.

    none                      a fresh initialisation (the default; labels unchanged)
    <path>                    a run directory (its last epoch's checkpoint) or a .pt/.pth/.ckpt file of
                              either backend; a relative path is relative to the working directory
    pretrain-fp:<profile>     the full-precision checkpoint `make pretrain-fp PROFILE=<profile>` stored
                              in this results store for the run's network and backend (pretrain.py):
                              the same words name the same training on every machine, whatever the
                              store's path there
    pretrain-fp               in a study file or profile: the study's own profile (the runner writes
                              pretrain-fp:<profile> into each cell's spec)

The label (bench.estimators.variant_label) says where a run started: `-from-fp` after a pretrain-fp
reference (its source is a full-precision twin by construction), `-from-<name>` after a path, <name>
the run directory's name or the file's stem (a run's checkpoint.* file: its directory's name), so a
run started from a binarized run says which. A label names the run's directory: a name is cut to
NAME_CHARS characters and anything but letters, digits and . _ + - becomes _.
"""
from __future__ import annotations

import re
from pathlib import PurePath

PRETRAIN = "pretrain-fp"
NAME_CHARS = 40


def pretrain_profile(reference: str) -> str | None:
    """The profile a pretrain-fp reference names ('' for the bare form a study resolves), None for a path."""
    if reference == PRETRAIN:
        return ""
    head, colon, profile = reference.partition(":")
    return profile if head == PRETRAIN and colon else None


def for_profile(reference: str | None, profile: str) -> str | None:
    """A study's init.from as its cell under `profile` holds it: bare pretrain-fp names the profile."""
    return f"{PRETRAIN}:{profile}" if reference == PRETRAIN else reference


def label_suffix(reference: str | None) -> str:
    """'' without init.from, '-from-fp' after a pretrain-fp reference, else '-from-<name>'."""
    if reference is None:
        return ""
    if pretrain_profile(reference) is not None:
        return "-from-fp"
    path = PurePath(reference.rstrip("/") or "/")
    name = path.parent.name if path.suffix and path.stem == "checkpoint" else (path.stem if path.suffix in
                                                                                (".pt", ".pth", ".ckpt") else path.name)
    return "-from-" + (re.sub(r"[^A-Za-z0-9._+-]", "_", name)[:NAME_CHARS] or "root")
