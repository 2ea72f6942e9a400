"""The model zoo's label-smoothed cross-entropy (research/cv/FDA-BNN/src/loss.py,
LabelSmoothingCrossEntropy), per sample:

    loss_b = -sum_c q_bc log softmax(z_b)_c,   q_bc = 1 - eps if c = y_b else eps / (C - 1)

(PyTorch's built-in label smoothing puts eps / C on every class instead.) Computed in float32
whatever the logits' dtype; reference: tests/oracle.py label_smoothed_cross_entropy.
"""
from __future__ import annotations

import mindspore as ms
from mindspore import Tensor, ops


def smoothed_cross_entropy(logits: Tensor, labels: Tensor, smoothing: float) -> Tensor:
    """Per-sample losses, shape (B,), float32."""
    num_classes = logits.shape[1]
    on = Tensor(1.0 - smoothing, ms.float32)
    off = Tensor(smoothing / (num_classes - 1), ms.float32)
    targets = ops.one_hot(labels, num_classes, on, off)
    log_p = ops.log_softmax(ops.cast(logits, ms.float32), axis=1)
    return -(targets * log_p).sum(axis=1)
