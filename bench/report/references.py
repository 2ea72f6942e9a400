"""Published numbers set beside ours, never mixed into our columns: ResNet-20 and VGG-small on CIFAR-10,
binarized and full precision (the FP twins' rows: variants `fp`, `vgg_small-fp`).

Each figure is recorded as its source prints it (table and row name), with that source's training
budget, and the variants of ours (bench.estimators.variant_label) it corresponds to. Published
figures are not one controlled experiment: each paper used its own epochs, batch and schedule, so
a figure from another paper is labelled as that paper's, at its budget. No figure is entered that
was not read in its source.

Table 4's three shortcut figures (86.20 sin, 85.93 linear, 85.27 none) are entered as issue #21
quotes them: the stored copies of the paper reachable when they were added held only its first
section, so their row names are ours, and the note says so. Not entered (not read anywhere): the
FDA paper's Table 1 rows for DSQ, IR-Net (EDE) and BNN+ (SignSwish) and its Table 3 (the noise
module added to DSQ and BNN+). Enter each as a Reference once read, with the table and row name as
printed; the decision tables pick them up by variant and study.

The VGG-small figures and both full-precision ones are entered as issue #22 quotes the FDA paper
(FDA 92.54, DoReFa 90.20, BNN+ 91.31, DSQ 91.72 and IR-Net 90.40 on VGG-small; full precision
92.10 on ResNet-20 and 94.10 on VGG-small): which table holds them, their row names and the
budgets of the compared methods' rows (the paper may quote them from their own papers) were not
read here, so the table is left blank, the row names are ours and the budget says so.
"""
from __future__ import annotations

from dataclasses import dataclass

from bench.report.markdown import table

FDA_PAPER = "Xu et al. 2021 (FDA-BNN, NeurIPS; arXiv 2103.00841)"
FDA_BUDGET = "400 epochs, all training images"
_QUOTED = "as quoted in issue #21 (the table itself not read here; row names ours)"
_QUOTED_22 = "as quoted in issue #22 (the table itself not read here; row names ours)"
_BUDGET_22 = "the FDA paper's; its budget for this row not read here"


@dataclass(frozen=True)
class Reference:
    source: str  # who published it
    table: str  # where in the source ("Table 1"), "" where it is not a table
    row: str  # the row as the source names it
    top1: float  # top-1 %
    budget: str  # the source's training budget
    variants: tuple[str, ...] = ()  # our variant labels it corresponds to; () for none
    note: str = ""

    @property
    def where(self) -> str:
        return f"{self.source}, {self.table}" if self.table else self.source

    def cite(self) -> str:
        """The figure with everything needed to read it: '84.44 (<source>, Table 1: DoReFa / STE; 400 epochs ...)'."""
        return f"{self.top1:.2f} ({self.where}: {self.row}; {self.budget})"


REFERENCES = (
    Reference(FDA_PAPER, "Table 1", "DoReFa / STE", 84.44, FDA_BUDGET, ("ste",)),
    Reference(FDA_PAPER, "Table 2", "FDA, sine terms only", 85.83, FDA_BUDGET, ("fda-n9",)),
    Reference(FDA_PAPER, "Table 2", "FDA, sine terms + noise module", 86.20, FDA_BUDGET, ("fda-n9-18+noise",)),
    Reference(FDA_PAPER, "Table 4", "shortcut a sin(t)", 86.20, FDA_BUDGET, ("fda-n9-18+noise",), _QUOTED),
    Reference(FDA_PAPER, "Table 4", "shortcut a t", 85.93, FDA_BUDGET, ("fda-n9-18+noise-linear",), _QUOTED),
    Reference(FDA_PAPER, "Table 4", "no shortcut", 85.27, FDA_BUDGET, ("fda-n9-18+noise-none",), _QUOTED),
    Reference(FDA_PAPER, "", "ResNet-20, full precision", 92.10, _BUDGET_22, ("fp",), _QUOTED_22),
    Reference(FDA_PAPER, "", "VGG-small, FDA", 92.54, _BUDGET_22, ("vgg_small-fda-n9-18+noise",), _QUOTED_22),
    Reference(FDA_PAPER, "", "VGG-small, DoReFa", 90.20, _BUDGET_22, ("vgg_small-ste",), _QUOTED_22),
    Reference(FDA_PAPER, "", "VGG-small, BNN+", 91.31, _BUDGET_22, ("vgg_small-swish_sign",), _QUOTED_22),
    Reference(FDA_PAPER, "", "VGG-small, DSQ", 91.72, _BUDGET_22, ("vgg_small-dsq",), _QUOTED_22),
    Reference(FDA_PAPER, "", "VGG-small, IR-Net", 90.40, _BUDGET_22, ("vgg_small-ede",), _QUOTED_22),
    Reference(FDA_PAPER, "", "VGG-small, full precision", 94.10, _BUDGET_22, ("vgg_small-fp",), _QUOTED_22),
    Reference("FDA-BNN model zoo (MindSpore), released checkpoint", "", "FDA-BNN", 86.61,
              "its own training, 350 min on its GPU", (), "0.27 s/step; evaluated on 9,984 test images"),
)

# the table of the FDA paper each study reproduces: its figure is the one shown where a variant has
# figures in several tables
STUDY_TABLES = {"estimators": "Table 1", "fourier-terms": "Table 2", "noise-transfer": "Table 3",
                "noise-shortcut": "Table 4"}


def published(variant: str, study: str | None = None) -> list[Reference]:
    """The published figures for one of our variants: those of the table `study` reproduces when
    there are any, else all of them (each cites its own table)."""
    found = [r for r in REFERENCES if variant in r.variants]
    own = [r for r in found if study is not None and r.source == FDA_PAPER and r.table == STUDY_TABLES.get(study)]
    return own or found


def references_section() -> str:
    rows = [[r.where, r.row, f"{r.top1:.2f}", r.budget, ", ".join(r.variants) or "-", r.note] for r in REFERENCES]
    return ("## References (published, not measured here)\n\n"
            "Numbers reported elsewhere for ResNet-20 and VGG-small on CIFAR-10 (binarized, and the full-precision "
            "twins), for comparison only; "
            "our tables never include them. Each is as its source prints it, at that source's budget.\n\n"
            + table(["source", "as printed", "top-1 %", "budget", "our variant", "note"], rows) + "\n")
