"""The "Estimator micro-benchmarks" section of the summary, from pytest-benchmark's JSON files
(`make bench-micro` writes results/micro/estimators-<cpu|gpu>.json).

One table per tensor shape and backend/device: each estimator variant's median forward+backward
time and its ratio to the clipped STE of the same form measured in the same run (a fused kernel
against the fused STE, an op-by-op form, `-unfused`, against `ste-unfused`), and where the table has
PyTorch's op-by-op STE a second ratio to it, which shows what fusing buys. The layer benchmarks (groups
`layers-...`: a convolution, BatchNorm, PReLU on one tensor) compare the frameworks instead, each
row against PyTorch's time in the same run.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.report.markdown import number, table

FUSED, UNFUSED = "ste", "ste-unfused"
LAYER_BASELINE = "torch"


def _same_form(variant: str, medians: dict[str, float]) -> float | None:
    """The clipped STE's median in the form of `variant` (fused or op by op), else the other form's."""
    order = (UNFUSED, FUSED) if variant.endswith("-unfused") else (FUSED, UNFUSED)
    return next((medians[name] for name in order if name in medians), None)


def micro_section(root: Path) -> str:
    files = sorted((root / "micro").glob("*.json"))
    runs = []
    for path in files:
        try:
            runs.append((path, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError):
            continue
    if not runs:
        return ""
    lines = ["## Estimator micro-benchmarks", "",
             "Forward (sign) plus backward (the estimator's pseudo-gradient) of one estimator on one tensor, timed by "
             "pytest-benchmark (`make bench-micro`; device synchronised inside the timed function). Median of all "
             "rounds; × STE is relative to the clipped STE of the same form (fused or op by op, `-unfused`) on the same "
             "tensor in the same run, × op-by-op STE to PyTorch's op-by-op STE (what fusing buys). Activation shapes are "
             "ResNet-20's stage 1 and stage 3 at batch 128. The `layers-` tables time one layer's forward and backward "
             "(3x3 convolution, training-mode BatchNorm, PReLU) in each framework at one kernel thread per core: "
             "where a MindSpore train step's extra time goes.", ""]
    for path, run in runs:
        env = run.get("machine_info", {}).get("fdabnn", {})
        benchmarks = run.get("benchmarks", [])
        versions = ", ".join(f"{k} {env[k]}" for k in ("torch", "mindspore") if k in env)
        # both frameworks run in the one pytest process: oneDNN's ISA is the same for both
        isa = env.get("onednn_isa") or (env.get("env") or {}).get("ONEDNN_MAX_CPU_ISA", "not recorded")
        lines += [f"### `{path.name}`", "",
                  f"Measured {str(run.get('datetime', ''))[:16]} on {env.get('cpu_model', '?')} "
                  f"({env.get('cpu_count', '?')} logical CPUs){', ' + env['device_name'] if 'device_name' in env else ''}; "
                  f"{versions}; git {env.get('git_commit', '?')}; {len(benchmarks)} benchmarks; oneDNN ISA, both "
                  f"frameworks (one process): {isa}.", ""]
        groups: dict[str, list[dict]] = {}
        for bench in benchmarks:
            groups.setdefault(bench.get("group") or "?", []).append(bench)
        for group, items in sorted(groups.items()):
            layers = group.startswith("layers-")
            medians = {b["extra_info"].get("variant"): b["stats"]["median"] for b in items}
            unfused = None if layers else medians.get(UNFUSED)
            rows = []
            for b in items:
                variant, median = b["extra_info"].get("variant", b["name"]), b["stats"]["median"]
                base = medians.get(LAYER_BASELINE) if layers else _same_form(str(variant), medians)
                row = [variant, number(median * 1e6, 0), number(b["stats"]["min"] * 1e6, 0),
                       number(b["stats"]["iqr"] * 1e6, 0), b["stats"]["rounds"],
                       number(median / base, 2) if base else "-"]
                rows.append(row + ([number(median / unfused, 2)] if unfused else []))
            header = ["backend" if layers else "variant", "median µs", "min µs", "IQR µs", "rounds",
                      "× PyTorch" if layers else "× STE"] + (["× op-by-op STE"] if unfused else [])
            lines += [f"#### {group}", "", table(header, rows), ""]
    return "\n".join(lines)
