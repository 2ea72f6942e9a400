"""Does where a run starts change which estimator wins? For a decision table whose binarized rows
start in more than one way (from scratch, and from a checkpoint through init.from: BiBench's
protocol against the FDA paper's), the ranking of the estimators under each start and whether it
holds under the other.

Two estimators are ranked within one start by the difference of their top-1 over seeds (paired by
seed: the same start and data order on both sides; stats.py). A pair "reverses" when both starts
resolve it in opposite directions, "holds" when both resolve it the same way, and is "resolved under
one start only" otherwise; pairs with an unranked side (one seed) are only counted. Estimators are
matched across starts by their label without the start's suffix (-from-fp).
"""
from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING

import pandas as pd

from bench.init.reference import label_suffix
from bench.report.aggregate import started_from
from bench.report.stats import difference

if TYPE_CHECKING:  # decision.py imports this module
    from bench.report.decision import Entry


def _describe(start: str | None) -> str:
    return "from scratch" if start is None else f"from {start}"


def ranking_by_start(entries: dict[str, dict[str, Entry]], backends: list[str]) -> list[str]:
    """Sentences for the decision table, one block per backend; none where every row starts alike."""
    lines = []
    for backend in backends:
        by_start: dict[str | None, dict[str, pd.Series]] = {}
        for entry in (by[backend] for by in entries.values() if backend in by):
            cell = entry.cell
            if cell is None or entry.seeds == 0 or not cell["binarize"]:
                continue
            start = started_from(cell)
            by_start.setdefault(start, {})[cell["variant"].removesuffix(label_suffix(start))] = cell
        if len(by_start) < 2:
            continue
        starts = sorted(by_start, key=lambda s: (s is not None, s or ""))
        for start in starts:
            cells = by_start[start]
            order = sorted(cells, key=lambda n: -cells[n]["top1_mean"])
            lines.append(f"{backend}, {_describe(start)}, by mean top-1: "
                         + " > ".join(f"{n} ({cells[n]['top1_mean']:.2f})" for n in order) + ".")
        for first, other in combinations(starts, 2):
            lines.append(_compare(backend, first, other, by_start[first], by_start[other]))
    return lines


def _verdict(a: pd.Series, b: pd.Series) -> int | None:
    """+1 when b resolves above a, -1 below, 0 not resolved, None unranked."""
    diff = difference(a["seed_top1"], b["seed_top1"])
    return None if diff is None else diff.direction


def _compare(backend: str, first: str | None, other: str | None, one: dict[str, pd.Series],
             two: dict[str, pd.Series]) -> str:
    names = [n for n in one if n in two]
    if len(names) < 2:
        return f"{backend}: fewer than two estimators start both ways, so no ranking is compared across starts."
    holds, reverses, single, level, unranked = [], [], [], 0, 0
    for a, b in combinations(names, 2):
        here, there = _verdict(one[a], one[b]), _verdict(two[a], two[b])
        if here is None or there is None:
            unranked += 1
        elif here and there and here == there:
            holds.append(f"{b} {_SIGN[here]} {a}")
        elif here and there:
            reverses.append(f"{b} {_SIGN[here]} {a} {_describe(first)} but {_SIGN[there]} {_describe(other)}")
        elif here or there:
            single.append(f"{b} {_SIGN[here or there]} {a} ({_describe(first if here else other)} only)")
        else:
            level += 1
    head = f"{backend}: does starting {_describe(other)} instead of {_describe(first)} change the ranking? "
    if reverses:
        parts = ["Yes, it reverses " + "; ".join(reverses) + "."]
    elif single:
        parts = ["Partly: no pair reverses, but some are resolved under one start only."]
    elif holds:
        parts = ["No: every pair resolved under one start is resolved the same way under the other."]
    else:
        parts = ["Neither start resolves any pair at this budget, so there is no ranking to compare."]
    if holds:
        parts.append("Under both: " + ", ".join(holds) + ".")
    if single:
        parts.append("Under one: " + ", ".join(single) + ".")
    if level:
        parts.append(f"{level} pair(s) resolved under neither.")
    if unranked:
        parts.append(f"{unranked} pair(s) unranked (one seed on a side).")
    return head + " ".join(parts)


_SIGN = {1: ">", -1: "<"}
