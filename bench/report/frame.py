"""One row per run record: the spec fields a study varies, the final metrics and where it ran."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from bench.errors import UserError
from bench.data.dataset import split_sizes
from bench.divergence import divergence
from bench.estimators import NAMES, canonical, relevant, variant_label
from bench.metrics import TOP1, TOP5, VALIDATION_LOSS
from bench.report.step_cost import is_stale
from bench.store.record import best_epoch
from bench.spec import Spec, build_spec

ESTIMATOR_ORDER = {name: i for i, name in enumerate(NAMES)}


def cell_key(spec: dict[str, Any], *drop: str) -> str:
    """Identity of a cell across seeds (train.seed and the estimator fields its estimator ignores
    left out), optionally ignoring more fields (dotted), to pair cells that differ in exactly those."""
    tree = json.loads(json.dumps(canonical(spec)))
    for dotted in ("train.seed", *drop):
        *parents, leaf = dotted.split(".")
        node = tree
        for part in parents:
            node = node[part]
        node.pop(leaf, None)
    return json.dumps(tree, sort_keys=True)


def records_frame(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[str]]:
    """The frame, and the run ids of records whose spec this version no longer accepts (written by
    an older version of the suite): left out and named in the summary rather than stopping it."""
    rows, stale = [], []
    for record in records:
        try:
            rows.append(_row(record))
        except UserError:
            stale.append(record["run_id"])
    return pd.DataFrame(rows, columns=COLUMNS).astype({"n": "Int64", "n_end": "Int64"}), stale


COLUMNS = [
    "study", "profile", "study_title", "study_question", "run_id", "status", "reason", "label", "variant", "key",
    "spec", "seed", "backend", "device", "precision", "network", "binarize", "init", "init_sha256", "estimator", "clip", "n", "n_end",
    "noise", "epochs",
    "batch_size", "n_test",
    "top1", "top5", "val_loss", "best_top1", "best_top5", "best_val_loss", "best_epoch", "diverged", "history",
    "step_ms", "step_stale", "shared", "threads", "wall_s", "finished_at", "cpu_model", "cpu_count", "gpu", "os",
    "python", "frameworks", "git_commit", "onednn_isa", "data_path", "data_format", "data_checksum", "data_lossy",
]


def _row(record: dict[str, Any]) -> dict[str, Any]:
    spec = build_spec(record["spec"])
    env = record.get("environment", {})
    final = record.get("final") or {}
    data = env.get("data") or {}
    device = env.get("device", spec.device)
    timing = record.get("timing") or {}
    # a step time measured while another training shared the device is never compared with the others
    shared = bool(timing.get("shared", False))
    _, n_test = split_sizes(spec.data.subset, spec.data.test_subset)
    history = record.get("history") or []
    status, reason = record["status"], record.get("reason", "")
    diverged = divergence(history, spec.model.num_classes) if status in ("finished", "diverged", "nonfinite") else None
    if status == "finished" and diverged:  # a record written before the training loop applied the rule
        status, reason = "diverged", diverged.describe()
    best = best_epoch(history) if status == "finished" else {}
    return {
        "study": record.get("study"), "profile": record.get("profile"), "study_title": record.get("study_title"),
        "study_question": record.get("study_question"), "run_id": record["run_id"],
        "status": status, "reason": reason, "label": spec.label(), "variant": variant_label(spec),
        # the validated spec, not the stored one: a field added since the record was written (e.g.
        # noise.shortcut) takes its default, so old and new records of one spec are one cell
        "key": cell_key(spec.to_dict()), "spec": spec.to_dict(), "seed": spec.train.seed,
        "backend": spec.backend, "device": device, "precision": spec.precision,
        # the network, whether it is binarized (an FP twin's spec holds the default estimator, which it
        # does not use: no estimator here), and where its weights started (None: from scratch)
        "network": spec.model.name, "binarize": spec.model.binarize, "init": spec.init.from_,
        # the checksum of the file the run started from: one reference (pretrain-fp:cpu) can name
        # different files over time, and a cell's seeds are only comparable when they started alike
        "init_sha256": (record.get("init") or {}).get("sha256"),
        "estimator": spec.estimator.name if spec.model.binarize else None, **_estimator_fields(spec),
        "noise": spec.noise.enabled,
        "epochs": spec.train.epochs,
        "batch_size": spec.train.batch_size, "n_test": n_test,
        "top1": _pct(final.get("Top1-Acc")), "top5": _pct(final.get("Top5-Acc")),
        "val_loss": final.get("Validation-Loss"), "best_top1": _pct(best.get(TOP1)), "best_top5": _pct(best.get(TOP5)),
        "best_val_loss": best.get(VALIDATION_LOSS), "best_epoch": best["epoch"] + 1 if best else None,
        "diverged": diverged, "history": history,
        "step_ms": None if shared else timing.get("median_ms"), "shared": shared, "threads": env.get("threads"),
        "step_stale": bool(is_stale(spec.backend, env.get("git_commit"))),
        "wall_s": record.get("wall_s"), "finished_at": record.get("finished_at"),
        "cpu_model": env.get("cpu_model"), "cpu_count": env.get("cpu_count"),
        "gpu": env.get("device_name") if device == "cuda" else None, "os": env.get("os"),
        "python": env.get("python"), "frameworks": _frameworks(env), "git_commit": env.get("git_commit"),
        # records before bench/isa.py name only the variable
        "onednn_isa": env.get("onednn_isa") or (f"ONEDNN_MAX_CPU_ISA={env['env']['ONEDNN_MAX_CPU_ISA']}" if
                                                 (env.get("env") or {}).get("ONEDNN_MAX_CPU_ISA") else None),
        "data_path": data.get("path"), "data_format": data.get("format"), "data_checksum": data.get("checksum"),
        "data_lossy": data.get("lossy"),
    }


def _estimator_fields(spec: Spec) -> dict[str, Any]:
    """clip, n and n_end where the estimator uses them, else None (STE has no n; an FP twin none)."""
    est = spec.estimator
    if not spec.model.binarize:
        return dict.fromkeys(("clip", "n", "n_end"))
    return {field: getattr(est, field) if relevant(est, field) else None for field in ("clip", "n", "n_end")}


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else 100.0 * fraction


def _frameworks(env: dict[str, Any]) -> str | None:
    parts = [f"{name} {env[name]}" for name in ("torch", "mindspore") if env.get(name)]
    if env.get("cuda") and env["cuda"] != "none":
        parts.append(f"CUDA {env['cuda']}")
    return ", ".join(parts) or None
