"""The summary's list of diverged runs (bench/divergence.py: the rule), kept out of every mean and
ranking, with why FDA diverges where it does (bench/fda_shape.py)."""
from __future__ import annotations

import pandas as pd

from bench.divergence import RULE
from bench.fda_shape import facts
from bench.report.markdown import table


def diverged_section(frame: pd.DataFrame) -> str:
    runs = frame[frame["status"].isin(["diverged", "nonfinite"])]
    if runs.empty:
        return ""
    rows = [[r["study"] or "-", r["profile"] or "-", r["backend"], r["variant"], r["seed"], r["status"],
             r["reason"], f"`{r['run_id']}`"] for _, r in runs.iterrows()]
    lines = ["## Diverged runs", "",
             f"Rule: a run has {RULE}; a non-finite training loss stops a run at once (status nonfinite). These "
             f"{len(runs)} run(s) are left out of every mean and ranking above.", "",
             table(["study", "profile", "backend", "variant", "seed", "status", "when and what", "run"], rows)]
    omegas = sorted({r["spec"]["estimator"].get("omega", 0.1) for _, r in runs.iterrows() if r["estimator"] == "fda"})
    for omega in omegas:
        lines.append(f"Why FDA diverges at large n: {facts(omega).describe()}")
    return "\n".join(lines) + "\n"
