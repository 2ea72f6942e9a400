"""Per-step and per-epoch schedules, framework-neutral so both backends train on identical values.

- learning rate: cosine from optim.lr to 0 over all optimizer steps (model zoo), or constant;
- the estimator's runtime values per epoch (FDA's n: fixed, or the paper's final recipe, linear from
  n to n_end over the epochs (9 -> 18); EDE's t and k, ...): bench/estimators.py, runtime_values;
- alpha (noise module weight): cosine from noise.alpha to 0 over all steps, reaching 0 on the last.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from bench.estimators import epoch_values, scheduled_n
from bench.spec import Spec


@dataclass(frozen=True)
class Schedules:
    spec: Spec
    steps_per_epoch: int

    @property
    def total_steps(self) -> int:
        return self.spec.train.epochs * self.steps_per_epoch

    def lr(self, step: int) -> float:
        base = self.spec.optim.lr
        if self.spec.optim.schedule == "constant":
            return base
        return 0.5 * base * (1.0 + math.cos(math.pi * step / self.total_steps))

    def n(self, epoch: int) -> int:
        return scheduled_n(self.spec.estimator, epoch, self.spec.train.epochs)

    def estimator_values(self, epoch: int) -> dict[str, dict[str, float]]:
        """{role: {name: value}}: what Backend.set_estimator_values takes at `epoch`."""
        return epoch_values(self.spec.estimator, epoch, self.spec.train.epochs)

    def alpha(self, step: int) -> float:
        noise = self.spec.noise
        if not noise.enabled:
            return 0.0
        if noise.alpha_schedule == "constant":
            return noise.alpha
        last = max(self.total_steps - 1, 1)
        return 0.5 * noise.alpha * (1.0 + math.cos(math.pi * min(step, last) / last))
