"""`fdabnn eval`: evaluate a checkpoint on the test split and print the model zoo's dict."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

import backends
from bench import store
from bench.convert import read_state
from bench.data.cifar10 import load_for_spec
from bench.errors import UserError
from bench.networks import model_of_state
from bench.spec import Spec, build_spec, merge, parse_overrides


def _model_of(checkpoint: Path) -> dict[str, Any]:
    state, meta = read_state(checkpoint)
    return model_of_state({name: tuple(np.shape(value)) for name, value in state.items()}, meta)


def resolve_checkpoint(path: Path) -> tuple[Path, dict[str, Any]]:
    """A run directory or a checkpoint file -> (checkpoint, spec tree). A bare checkpoint (the model
    zoo's fdabnn.ckpt, a converted file) gets the default spec with the backend its suffix implies and
    the network its tensors are (bench.networks.model_of_state: VGG-small or ResNet-20, full
    precision where its meta says so); other fields are given as key=value."""
    if path.is_dir():
        found = sorted(path.glob(f"{store.CHECKPOINT_STEM}.*"))
        found = [p for p in found if p.suffix in backends.CHECKPOINT_SUFFIXES]
        if not found:
            raise UserError(f"{path}: no checkpoint.pt or checkpoint.ckpt in this run directory; "
                            "train first or pass the checkpoint file")
        path = found[0]
    if not path.is_file():
        raise UserError(f"checkpoint {path}: not found; pass a run directory or a .pt/.ckpt file")
    backend = backends.checkpoint_backend(path)
    try:
        spec_tree = store.read_json(path.parent / store.SPEC) or {"backend": backend, "model": _model_of(path)}
    except store.TornRecord:
        raise UserError(f"{path.parent / store.SPEC}: torn (not valid JSON), so the run's spec is unknown; restore "
                        f"it, or evaluate {path} with its spec fields as key=value") from None
    if not isinstance(spec_tree, dict):
        raise UserError(f"{path.parent / store.SPEC}: not a spec (a JSON {type(spec_tree).__name__}); restore it")
    return path, spec_tree


def evaluate_checkpoint(path: Path, overrides: list[str] | None = None,
                        console: Console | None = None) -> dict[str, float]:
    """The model zoo's metrics of a checkpoint on the spec's test images; what is evaluated (the
    checkpoint's epoch, the estimator, the number of images) is said on `console` first."""
    console = console or Console(stderr=True)
    checkpoint, tree = resolve_checkpoint(path)
    spec: Spec = build_spec(merge(tree, parse_overrides(overrides or [])))
    native = backends.checkpoint_backend(checkpoint)
    if spec.backend != native:
        raise UserError(f"checkpoint {checkpoint} is a {native} checkpoint but backend={spec.backend}; convert it "
                        "with `fdabnn convert` first")
    backends.check_runnable(spec)
    with console.status(f"building the {spec.backend} model and loading CIFAR-10's test images ..."):
        backend = backends.prepare(spec)
        meta = store.checked_meta(checkpoint, backend.load_checkpoint(checkpoint))  # before the data: the likelier problem, found sooner
        data = load_for_spec(spec, require_train=False)
        backend.set_data(data)
    epoch = f"epoch {meta['epoch'] + 1} of {spec.train.epochs}" if "epoch" in meta else "no epoch recorded"
    console.print(f"evaluating {checkpoint} ({spec.label()}, {epoch}) on {len(data.test_y):,} test images "
                  f"({data.source.path})", soft_wrap=True, highlight=False)
    with console.status(f"evaluating {len(data.test_y):,} images on {backend.device} ..."):
        return backend.evaluate()
