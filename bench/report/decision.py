"""The first screen of the summary: for each study, network, profile, device and precision, one
table that answers "which estimator, and what does it cost?", then sentences generated from it.

A row is a variant; each backend gets final top-1 (mean ± sd over seeds, the number of seeds), the
difference to the clipped STE of the same backend with its 95% interval (stats.py), and the step
time relative to the clipped STE from the benchmark of the same device (step_cost.py). The published
figure the variant corresponds to, where one was published (references.py), stands in a column of
its own with its source, table and budget: the table the study reproduces first.

One table per network: an estimator that wins on ResNet-20 may lose on VGG-small, and their step
times differ fifteenfold. A run started from another run's weights (init.from, label -from-fp) is a
row of its own, compared with the clipped STE started the same way (a from-fp row is never set
against a from-scratch reference). The network's full-precision twin is the last row, the upper
bound: its top-1 beside the binarized rows, its published figure beside it, never ranked nor picked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bench.data.dataset import split_sizes
from bench.report.aggregate import is_clipped_ste, started_from
from bench.report.markdown import table
from bench.report.protocol import ranking_by_start
from bench.report.references import published
from bench.report.stats import METHOD, UNRANKED, Difference, difference
from bench.report.step_cost import StepCost, step_cost
from bench.spec import build_spec

NETWORK_NAMES = {"resnet20": "ResNet-20", "vgg_small": "VGG-small"}


@dataclass(frozen=True)
class Entry:
    """One variant in one backend."""

    cell: pd.Series | None
    diff: Difference | None  # against the clipped STE; None for STE itself or with < 2 seeds
    cost: StepCost | None

    @property
    def seeds(self) -> int:
        return 0 if self.cell is None else int(self.cell["seeds"])

    @property
    def top1(self) -> float:
        return math.nan if self.cell is None else float(self.cell["top1_mean"])


def decision_sections(agg: pd.DataFrame, bench: pd.DataFrame, study: str | None = None) -> list[tuple[str, str]]:
    """(title, markdown) per profile, device and precision of the cells in `agg` (study `study`'s)."""
    out = []
    for (network, profile, device, precision), cells in agg.groupby(["network", "profile", "device", "precision"],
                                                                     sort=True):
        backends = list(dict.fromkeys(cells["backend"]))
        entries = _entries(cells, backends, bench, device, precision)
        if not entries:
            continue
        title = f"{NETWORK_NAMES.get(network, network)}, profile {profile}, {device}, {precision}"
        body = [budget_text(cells), "", _table(entries, backends, study), _legend(entries, backends), ""]
        body += [f"- {line}" for line in _sentences(entries, backends)] + [""]
        out.append((title, "\n".join(body)))
    return out


def _entries(cells: pd.DataFrame, backends: list[str], bench: pd.DataFrame, device: str,
             precision: str) -> dict[str, dict[str, Entry]]:
    """variant -> backend -> Entry, variants in the cells' order."""
    entries: dict[str, dict[str, Entry]] = {}
    for backend in backends:
        mine = cells[cells["backend"] == backend]
        for _, cell in mine.iterrows():
            base, diff = _reference(mine, cell), None
            if base is not None and cell["key"] != base["key"] and cell["binarize"]:
                diff = difference(base["seed_top1"], cell["seed_top1"])
            cost = step_cost(bench, device, backend, precision, cell["spec"])
            entries.setdefault(cell["variant"], {})[backend] = Entry(cell, diff, cost)
    return entries


def _reference(cells: pd.DataFrame, cell: pd.Series) -> pd.Series | None:
    """The clipped STE that started as `cell` did (from scratch, or from the same init.from)."""
    same_start = cells["init"].fillna("") == (started_from(cell) or "")
    ste = cells[is_clipped_ste(cells) & same_start]
    return ste.iloc[0] if len(ste) else None


def budget_text(cells: pd.DataFrame) -> str:
    spec = build_spec(cells.iloc[0]["spec"])
    n_train, n_test = split_sizes(spec.data.subset, spec.data.test_subset)
    seeds = sorted({int(s) for c in cells["seed_top1"] for s in c})
    text = (f"Budget: {spec.train.epochs} epoch(s) on {n_train:,} training images, batch {spec.train.batch_size}, "
            f"tested on {n_test:,} test images; seeds {', '.join(map(str, seeds)) or '-'}.")
    if spec.train.epochs < 400 or n_train < 50000:
        text += (" A short budget: it compares the variants with each other, and its accuracies cannot be set "
                 "against the paper's (400 epochs, all data).")
    return text


def top1_text(entry: Entry | None) -> str:
    if entry is None or entry.cell is None:
        return "-"
    cell = entry.cell
    if cell["seeds"] == 0:
        return cell["status"] or "-"
    spread = f" ± {cell['top1_std']:.2f}" if cell["seeds"] >= 2 else ""
    # the runs that are not in the mean (diverged, failed, ...), without the step-time notes
    others = [part.split(" (")[0] for part in cell["status"].split(", ") if "finished" not in part]
    extra = f" · {', '.join(others)}" if others else ""
    return f"{cell['top1_mean']:.2f}{spread} (n={cell['seeds']}){extra}"


def _delta(entry: Entry | None) -> str:
    if entry is None or entry.cell is None or entry.seeds == 0:
        return ""
    if not entry.cell["binarize"]:
        return "full precision: the upper bound"
    if is_clipped_ste(entry.cell.to_frame().T).iloc[0]:
        return "reference"
    if entry.diff is None:
        return UNRANKED if entry.seeds < 2 else "-"
    mark = "resolved" if entry.diff.resolved else "not resolved"
    return f"{entry.diff.describe()} ({mark})"


def _cost(entry: Entry | None) -> str:
    return "-" if entry is None or entry.cost is None else entry.cost.describe()


def _table(entries: dict[str, dict[str, Entry]], backends: list[str], study: str | None) -> str:
    header = ["variant"]
    for backend in backends:
        header += [f"{backend} top-1 %", f"{backend} Δ vs clipped STE", f"{backend} step × STE"]
    header.append("published top-1 %")
    rows = []
    for variant, by_backend in entries.items():
        row = [variant]
        for backend in backends:
            entry = by_backend.get(backend)
            row += [top1_text(entry), _delta(entry), _cost(entry)]
        row.append("; ".join(r.cite() for r in published(variant, study)) or "-")
        rows.append(row)
    return table(header, rows)


def _legend(entries: dict[str, dict[str, Entry]], backends: list[str]) -> str:
    costs = [e.cost for by in entries.values() for e in by.values() if e.cost is not None]
    text = ("Top-1: final epoch, mean ± sd over n seeds (all test images). Δ: percentage points against the "
            f"clipped STE of the same backend, 95% interval. {METHOD}")
    if costs:
        batch = "/".join(str(b) for b in sorted({c.batch for c in costs}))
        text += (f" Step × STE: the benchmark of this device (`fdabnn bench`, batch {batch}, one process, "
                 "interleaved rounds); the n 9 -> 18 schedule is timed at n = 9 (the closed form costs the same at "
                 "any n).")
        if any(c.precision for c in costs):
            text += (" A precision in brackets: that ratio was measured at it, the benchmark having no such case "
                     "at this one.")
        if any(c.stale for c in costs):
            text += " (stale): measured before the current kernel code of its backend; run `make bench-cpu` again."
    else:
        text += " Step × STE: no benchmark of this device yet (`make bench-cpu` / `make bench-gpu`)."
    text += (" Published: the figure the variant corresponds to, as its source prints it, with its budget "
             "(References); \"-\" where none was published. Never mixed into our columns.")
    return text


def _sentences(entries: dict[str, dict[str, Entry]], backends: list[str]) -> list[str]:
    lines = []
    verdicts: dict[str, dict[str, int]] = {}  # variant -> backend -> +1 / -1 / 0 against STE
    for backend in backends:
        mine = {v: by[backend] for v, by in entries.items() if backend in by and by[backend].seeds > 0}
        twin = {v: e for v, e in mine.items() if not e.cell["binarize"]}
        mine = {v: e for v, e in mine.items() if e.cell["binarize"]}  # the FP twin is never ranked
        lines += [_upper_bound(backend, v, e, mine) for v, e in twin.items()]
        if not mine:
            continue
        if not any(is_clipped_ste(e.cell.to_frame().T).iloc[0] for e in mine.values()):
            lines.append(f"{backend}: no clipped STE in this table, so nothing is compared with it.")
            continue
        if all(e.seeds < 2 for e in mine.values()):
            lines.append(f"{backend}: one seed per cell, so nothing is ranked; run this study with SEEDS=0,1,2.")
            continue
        above, below, level = [], [], []
        for variant, entry in mine.items():
            if entry.diff is None:
                continue
            sign = entry.diff.direction
            verdicts.setdefault(variant, {})[backend] = sign
            text = f"{variant} ({entry.diff.describe()})"
            (above if sign > 0 else below if sign < 0 else level).append(text)
        parts = [f"{backend}:"]
        parts.append("resolved above clipped STE: " + (", ".join(above) if above else "none") + ";")
        parts.append("resolved below: " + (", ".join(below) if below else "none") + ";")
        parts.append("not resolved: " + (", ".join(level) if level else "none") + ".")
        lines.append(" ".join(parts))
        lines.append(_pick(backend, mine))
    shared = [v for v, by in verdicts.items() if len(by) == len(backends) > 1]
    agree = [v for v in shared if len(set(verdicts[v].values())) == 1 and next(iter(verdicts[v].values())) != 0]
    disagree = [v for v in shared if len(set(verdicts[v].values())) > 1]
    if agree:
        lines.append("Both backends resolve the same direction for: " + ", ".join(agree) + ".")
    one_only = [f"{v} ({', '.join(b for b, s in verdicts[v].items() if s)})" for v in disagree
                if 0 in verdicts[v].values()]
    opposite = [v for v in disagree if v not in {o.split(" (")[0] for o in one_only}]
    if one_only:
        lines.append("Resolved in one backend only (the other's interval includes zero): " + ", ".join(one_only) + ".")
    if opposite:
        lines.append("The backends resolve opposite directions for: " + ", ".join(opposite) + ".")
    return lines + ranking_by_start(entries, backends)


def _upper_bound(backend: str, variant: str, twin: Entry, binarized: dict[str, Entry]) -> str:
    text = f"{backend}: the full-precision twin ({variant}) reaches {twin.top1:.2f}"
    if not binarized:
        return text + "."
    best = max(binarized, key=lambda v: binarized[v].top1)
    gap = twin.top1 - binarized[best].top1
    return text + f"; the best binarized row, {best} ({binarized[best].top1:.2f}), is {gap:.2f} points below it."


def _pick(backend: str, mine: dict[str, Entry]) -> str:
    better = {v: e for v, e in mine.items() if e.diff is not None and e.diff.resolved and e.diff.mean > 0}
    if better:
        best = max(better, key=lambda v: better[v].top1)
        cost = better[best].cost
        cost_text = f", at {cost.describe()} the clipped STE's step time" if cost else ""
        return (f"Pick for {backend} at this budget: {best} ({better[best].diff.describe()} over clipped STE"
                f"{cost_text}).")
    return (f"Pick for {backend} at this budget: no variant beats the clipped STE resolvably, so the cheapest "
            "(clipped STE) is the pick here; a longer budget or more seeds may separate them.")
