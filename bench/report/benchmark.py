"""The place of the "Step time" benchmark in the summary; its records live under results/bench/
(a folder per suite).

The benchmark (not the ablations) owns the content of this section: `step_time_section` receives
every benchmark record as one DataFrame row and returns its Markdown, or "" when there are none.
Until the benchmark shapes its section, it only says that the records are there.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench import store


def benchmark_frame(root: Path) -> pd.DataFrame:
    """Every results/bench/**/*.json (a record or a list of records), flattened to dotted columns."""
    rows: list[dict] = []
    for path in sorted((root / "bench").rglob("*.json")):
        try:
            data = store.read_json(path)
        except store.TornRecord:
            continue
        rows.extend(data if isinstance(data, list) else [data])
    return pd.json_normalize(rows) if rows else pd.DataFrame()


def step_time_section(bench: pd.DataFrame) -> str:
    if bench.empty:
        return ""
    return (f"## Step time\n\n{len(bench)} benchmark records under results/bench/ (`fdabnn bench`); their "
            "tables belong to the benchmark and are not drawn here yet.\n")
