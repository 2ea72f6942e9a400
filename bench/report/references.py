"""Published numbers set beside ours, never mixed into our columns: ResNet-20 on CIFAR-10."""
from __future__ import annotations

from bench.report.markdown import table

# (source, what, top-1 %, note, the variant of ours it corresponds to or None)
REFERENCES = [
    ("paper, Table 1", "DoReFa / STE", 84.44, "Xu et al., NeurIPS 2021: 400 epochs, full data", "ste"),
    ("paper, Table 2", "FDA, sine terms only", 85.83, "same recipe", "fda-n9"),
    ("paper, Table 2", "FDA, sine terms + noise module", 86.20, "same recipe", "fda-n9-18+noise"),
    ("model zoo, released checkpoint", "FDA-BNN (MindSpore)", 86.61,
     "0.27 s/step, 350 min of training on its GPU", None),
]


def paper_figure(variant: str) -> tuple[float, str] | None:
    """The paper's top-1 for one of our variants, with what the paper calls it."""
    for source, what, top1, _, ours in REFERENCES:
        if ours == variant and source.startswith("paper"):
            return top1, what
    return None


def references_section() -> str:
    rows = [[source, what, f"{top1:.2f}", note] for source, what, top1, note, _ in REFERENCES]
    return ("## References (published, not measured here)\n\n"
            "Numbers reported elsewhere for the binarized ResNet-20 on CIFAR-10, for comparison only; "
            "our tables never include them.\n\n"
            + table(["source", "estimator", "top-1 %", "note"], rows) + "\n")
