"""The "Estimator micro-benchmarks" section of the summary, from pytest-benchmark's JSON files
(`make bench-micro` writes results/micro/estimators-<cpu|gpu>.json).

One table per tensor shape and backend/device: each estimator variant's median forward+backward
time and its ratio to the clipped STE measured in the same run (PyTorch's op-by-op STE,
`ste-unfused`, where the table has it, so the fused kernels show what fusing buys; else `ste`).
The layer benchmarks (groups
`layers-...`: a convolution, BatchNorm, PReLU on one tensor) compare the frameworks instead, each
row against PyTorch's time in the same run.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.report.markdown import number, table

BASELINES = ("ste-unfused", "ste")  # the first a table has
LAYER_BASELINE = "torch"


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
             "rounds; × STE is relative to the clipped STE on the same tensor in the same run. Activation shapes are "
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
            baselines, ratio = ((LAYER_BASELINE,), "× PyTorch") if layers else (BASELINES, "× STE")
            base = next((medians[name] for name in baselines if name in medians), None)
            rows = [[b["extra_info"].get("variant", b["name"]), number(b["stats"]["median"] * 1e6, 0),
                     number(b["stats"]["min"] * 1e6, 0), number(b["stats"]["iqr"] * 1e6, 0), b["stats"]["rounds"],
                     number(b["stats"]["median"] / base, 2) if base else "-"] for b in items]
            lines += [f"#### {group}", "", table(["backend" if layers else "variant", "median µs", "min µs",
                                                  "IQR µs", "rounds", ratio], rows), ""]
    return "\n".join(lines)
