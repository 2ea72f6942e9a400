"""The summary's list of diverged runs (bench/divergence.py: the rule), kept out of every mean and
ranking, with why FDA diverges where it does (bench/fda_shape.py) and, for any other estimator that
diverged, the peak of its pseudo-gradient against the clipped STE's 1."""
from __future__ import annotations

import pandas as pd

from bench.divergence import RULE
from bench.estimators import peak_pseudo_grad
from bench.fda_shape import facts
from bench.report.markdown import table
from bench.spec import build_spec


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
    peaks = _peaks(runs[(runs["estimator"] != "fda") & runs["estimator"].notna()])
    if peaks:
        lines.append("Peak pseudo-gradient of the other estimators that diverged, max |g(x)| over x and over the "
                     "run's epochs (NumPy reference, bench/estimators.py; the clipped STE's is 1): " + "; ".join(peaks)
                     + ". A binarized layer passes its gradient back multiplied by up to this much.")
    return "\n".join(lines) + "\n"


def _peaks(runs: pd.DataFrame) -> list[str]:
    found: dict[str, float] = {}
    for _, run in runs.iterrows():
        if run["variant"] not in found:
            spec = build_spec(run["spec"])
            epochs = spec.train.epochs
            found[run["variant"]] = max(peak_pseudo_grad(spec.estimator, e, epochs) for e in range(epochs))
    return [f"{variant} {peak:.2f}" for variant, peak in sorted(found.items())]
