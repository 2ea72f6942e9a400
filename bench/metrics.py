"""The evaluation metrics every backend reports, under the model zoo's names (its eval.py prints
this dict): label-smoothed validation loss and top-1 / top-5 accuracy as fractions of the images."""
from __future__ import annotations

VALIDATION_LOSS, TOP1, TOP5 = "Validation-Loss", "Top1-Acc", "Top5-Acc"
METRIC_KEYS = (VALIDATION_LOSS, TOP1, TOP5)


def eval_metrics(loss_sum: float, top1: float, top5: float, images: int) -> dict[str, float]:
    """Sums over the test images -> the model zoo's dict."""
    return {VALIDATION_LOSS: loss_sum / images, TOP1: top1 / images, TOP5: top5 / images}
