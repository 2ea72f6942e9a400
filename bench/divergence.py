"""When a training has diverged: one rule, applied by the training loop (which then stops the run,
status "diverged") and by the report (to records written before the rule existed).

The rule: a run has diverged at the first epoch whose training or validation loss is not finite or
exceeds EXPLOSION times ln(classes), the cross-entropy of a uniform guess (2.30 for CIFAR-10): a
network that learns starts there and goes down, and no healthy run comes near 23. The FDA n = 32
runs this rule was written for reached training losses of 6,000-26,000 within their first epoch
(validation losses up to 3.2e7 later) with top-1 at chance, so a rule relative to the first epoch
would miss those that exploded at once. A run stuck at chance with a flat loss has not diverged by
this rule: it is reported with its (chance) accuracy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.metrics import VALIDATION_LOSS

EXPLOSION = 10.0
RULE = (f"diverged at the first epoch whose training or validation loss is not finite or exceeds {EXPLOSION:g} x "
        "ln(classes), the loss of a uniform guess (23.0 for CIFAR-10)")


@dataclass(frozen=True)
class Divergence:
    epoch: int  # 1-based, as progress lines count
    what: str  # which loss
    value: float
    limit: float

    def describe(self) -> str:
        if not math.isfinite(self.value):
            return f"{self.what} {self.value} in epoch {self.epoch}"
        return f"{self.what} {self.value:.3g} in epoch {self.epoch} (limit {self.limit:.3g})"


def divergence(history: list[dict[str, Any]], classes: int = 10) -> Divergence | None:
    """The first epoch of `history` at which the run diverged, or None."""
    limit = EXPLOSION * math.log(classes)
    for entry in history:
        for what, key in (("training loss", "train_loss"), ("validation loss", VALIDATION_LOSS)):
            value = entry.get(key)
            if value is not None and (not math.isfinite(value) or value > limit):
                return Divergence(entry["epoch"] + 1, what, value, limit)
    return None
