"""Per-step and per-epoch schedules, framework-neutral so both backends train on identical values.

- learning rate: cosine from optim.lr to 0 over all optimizer steps (model zoo), or constant;
- n: fixed, or the paper's final recipe, linear from n to n_end over the epochs (9 -> 18);
- alpha (noise module weight): cosine from noise.alpha to 0 over all steps, reaching 0 on the last.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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
        est = self.spec.estimator
        if est.n_end is None or self.spec.train.epochs == 1:
            return est.n
        return int(round(est.n + (est.n_end - est.n) * epoch / (self.spec.train.epochs - 1)))

    def alpha(self, step: int) -> float:
        noise = self.spec.noise
        if not noise.enabled:
            return 0.0
        if noise.alpha_schedule == "constant":
            return noise.alpha
        last = max(self.total_steps - 1, 1)
        return 0.5 * noise.alpha * (1.0 + math.cos(math.pi * min(step, last) / last))
