"""For a study that runs the same variants in several precisions: does reduced precision change
top-1, and what does it cost a step? One table per profile and device, then sentences.

A row is one variant in one backend and precision. Δ vs fp32 is against the same variant, backend,
profile and device in fp32, paired by seed (stats.py): reduced precision is the only difference.
Step × fp32 is the benchmark's ratio of the same case in both precisions (`fdabnn bench`, one
process and interleaved rounds where the suite puts the precisions beside each other); where the
benchmark has no such pair, the study's own median step times, when neither was timed while sharing
the machine, marked "(study)".
"""
from __future__ import annotations

import math

import pandas as pd

from bench.report.decision import Entry, budget_text, top1_text
from bench.report.markdown import table
from bench.report.stats import METHOD, UNRANKED, Difference, difference
from bench.report.step_cost import precision_cost

REFERENCE = "fp32"
MATCH = ["profile", "device", "backend", "variant"]  # what a precision row holds fixed against fp32


def has_precisions(cells: pd.DataFrame) -> bool:
    """Whether some variant of these cells ran in fp32 and in another precision."""
    counts = cells.groupby(MATCH)["precision"].agg(lambda p: REFERENCE in set(p) and len(set(p)) > 1)
    return bool(counts.any())


def precision_sections(cells: pd.DataFrame, bench: pd.DataFrame) -> list[tuple[str, str]]:
    """(title, markdown) per profile and device of one study's cells."""
    out = []
    for (profile, device), mine in cells.groupby(["profile", "device"], sort=True):
        if not has_precisions(mine):
            continue
        rows, lines = [], []
        for (backend, variant), group in mine.groupby(["backend", "variant"], sort=False):
            base = group[group["precision"] == REFERENCE]
            base_cell = base.iloc[0] if len(base) else None
            verdicts = []
            for _, cell in group.iterrows():
                diff, cost = _compare(base_cell, cell, bench)
                rows.append([variant, backend, cell["precision"], _top1_of(cell), _delta(base_cell, cell, diff),
                             cost or "-"])
                if cell["precision"] != REFERENCE and cell["seeds"] > 0:
                    verdicts.append(_verdict(cell["precision"], diff, cost))
            if verdicts:
                lines.append(f"{backend} {variant}: " + "; ".join(verdicts) + ".")
        body = [budget_text(mine), "", table(["variant", "backend", "precision", "top-1 %", f"Δ vs {REFERENCE}",
                                          f"step × {REFERENCE}"], rows), _legend(), ""]
        body += [f"- {line}" for line in lines] + [""]
        out.append((f"precision against {REFERENCE}, profile {profile}, {device}", "\n".join(body)))
    return out


def _top1_of(cell: pd.Series) -> str:
    text = top1_text(Entry(cell, None, None))
    return f"{text}: {cell['not_run_reason']}" if cell["seeds"] == 0 and cell["not_run_reason"] else text


def _compare(base: pd.Series | None, cell: pd.Series, bench: pd.DataFrame) -> tuple[Difference | None, str | None]:
    if base is None or cell["precision"] == REFERENCE:
        return None, None
    diff = difference(base["seed_top1"], cell["seed_top1"])
    measured = precision_cost(bench, cell["device"], cell["backend"], cell["precision"], cell["spec"], REFERENCE)
    if measured is not None:
        return diff, measured.describe()
    ours, theirs = cell["step_ms_mean"], base["step_ms_mean"]
    if not (math.isnan(ours) or math.isnan(theirs)) and theirs > 0:
        return diff, f"{ours / theirs:.2f}× (study)"
    return diff, None


def _delta(base: pd.Series | None, cell: pd.Series, diff: Difference | None) -> str:
    if cell["precision"] == REFERENCE:
        return "reference"
    if cell["seeds"] == 0:
        return ""
    if base is None or base["seeds"] == 0:
        return f"no {REFERENCE} cell"
    if diff is None:
        return UNRANKED
    return f"{diff.describe()} ({'resolved' if diff.resolved else 'not resolved'})"


def _verdict(precision: str, diff: Difference | None, cost: str | None) -> str:
    if diff is None:
        change = f"{precision} unranked (fewer than two seeds on a side)"
    elif diff.resolved:
        change = f"{precision} changes top-1 resolvably ({diff.describe()})"
    else:
        change = f"{precision} does not change top-1 resolvably ({diff.describe()})"
    return change + (f", at {cost} the fp32 step" if cost else ", step cost not measured")


def _legend() -> str:
    return ("Top-1: final epoch, mean ± sd over n seeds (all test images). Δ: percentage points against the same "
            f"variant and backend in {REFERENCE}, 95% interval. {METHOD} Step × {REFERENCE}: the benchmark of this "
            f"device (`fdabnn bench`: the same case in both precisions, one process, interleaved rounds, batch 128; "
            "(stale) when measured before the current kernel code); (study): no such benchmark pair, so the "
            "study's own median step times, both timed without another process busy on the machine.")
