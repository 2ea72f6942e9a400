"""Published numbers set beside ours, never mixed into our columns: ResNet-20 on CIFAR-10."""
from __future__ import annotations

from bench.report.markdown import table

# (source, what, top-1 %, note)
REFERENCES = [
    ("paper, Table 1", "DoReFa / STE", 84.44, "Xu et al., NeurIPS 2021: 400 epochs, full data"),
    ("paper, Table 2", "FDA, sine terms only", 85.83, "same recipe"),
    ("paper, Table 2", "FDA, sine terms + noise module", 86.20, "same recipe"),
    ("model zoo, released checkpoint", "FDA-BNN (MindSpore)", 86.61,
     "0.27 s/step, 350 min of training on its GPU"),
]


def references_section() -> str:
    rows = [[source, what, f"{top1:.2f}", note] for source, what, top1, note in REFERENCES]
    return ("## References (published, not measured here)\n\n"
            "Numbers reported elsewhere for the binarized ResNet-20 on CIFAR-10, for comparison only; "
            "our tables above never include them.\n\n"
            + table(["source", "estimator", "top-1 %", "note"], rows) + "\n")
