"""The model zoo's label-smoothed cross entropy (FDA-BNN CrossEntropySmooth).

    q_c = 1 - eps            for the true class y
    q_c = eps / (C - 1)      for every other class          (PyTorch's built-in uses eps / C on all)
    loss = -sum_c q_c log softmax(z)_c,  averaged over the batch ("mean") or summed ("sum")

Computed in float32 whatever the autocast dtype of the logits.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor


def label_smoothed_cross_entropy(logits: Tensor, target: Tensor, smoothing: float,
                                 reduction: Literal["mean", "sum", "none"] = "mean") -> Tensor:
    log_p = torch.log_softmax(logits.float(), dim=1)
    num_classes = log_p.shape[1]
    true = log_p.gather(1, target[:, None]).squeeze(1)
    others = log_p.sum(dim=1) - true
    loss = -((1.0 - smoothing) * true + (smoothing / (num_classes - 1)) * others)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
