"""The test oracle: what both backends' tests compare against, computed in float64 from the formulas
as the papers write them, term by term where the paper has a sum, so a backend's closed form or
fused kernel is checked against the definition, not against itself.

The estimators' NumPy references are part of their descriptions (bench/estimators.py); here are
the shortcuts the tests use and the loss.

Loss (the model zoo's CrossEntropySmooth): targets 1 - eps on the true class and eps / (C - 1) on
each other class, averaged over the batch.
"""
from __future__ import annotations

import numpy as np

from bench.estimators import fda_reference, reference_pseudo_grad, sign  # noqa: F401  (sign: re-export)
from bench.spec import EstimatorSpec


def pseudo_grad(name: str, x: np.ndarray, *, clip: float | None = 1.0, n: int = 9, omega: float = 0.1) -> np.ndarray:
    """g(x) of the estimator called `name` (the spec's estimator.name)."""
    return reference_pseudo_grad(EstimatorSpec(name=name, clip=clip, n=n, omega=omega), x)


def fda_grad(x: np.ndarray, n: int, omega: float = 0.1) -> np.ndarray:
    """The term-by-term sum of FDA's paper Eq. 10, zero outside [-1, 1]."""
    return fda_reference(x, n, omega)


# the noise module's shortcut s(t) and its derivative (bench.networks.layers.NOISE_SHORTCUTS)
NOISE_SHORTCUTS = {"sin": (np.sin, np.cos), "linear": (lambda t: t, np.ones_like),
                   None: (np.zeros_like, np.zeros_like)}


def noise_e(t: np.ndarray, w1: np.ndarray, w2: np.ndarray, shortcut: str | None, scale: float) -> np.ndarray:
    """The noise module's e(t) = w2 ReLU(w1 t) + scale * s(t) over the last axis of t (paper Eq. 14
    with the shortcut s: sin(t), t or 0)."""
    t = np.asarray(t, dtype=np.float64)
    return np.maximum(t @ w1.T, 0.0) @ w2.T + scale * NOISE_SHORTCUTS[shortcut][0](t)


def noise_e_grads(t: np.ndarray, w1: np.ndarray, w2: np.ndarray, shortcut: str | None, scale: float,
                  g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradients of sum(g * e(t)) with respect to t, w1 and w2, by the chain rule written out."""
    t, g = np.asarray(t, dtype=np.float64), np.asarray(g, dtype=np.float64)
    h = t @ w1.T
    dh = (g @ w2) * (h > 0)
    dt = dh @ w1 + scale * NOISE_SHORTCUTS[shortcut][1](t) * g
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    return dt, flat(dh).T @ flat(t), flat(g).T @ flat(np.maximum(h, 0.0))


def smoothed_targets(labels: np.ndarray, num_classes: int, smoothing: float) -> np.ndarray:
    """One row per label: 1 - eps on the label, eps / (C - 1) elsewhere (each row sums to 1)."""
    labels = np.asarray(labels)
    q = np.full((len(labels), num_classes), smoothing / (num_classes - 1), dtype=np.float64)
    q[np.arange(len(labels)), labels] = 1.0 - smoothing
    return q


def label_smoothed_cross_entropy(logits: np.ndarray, labels: np.ndarray, smoothing: float) -> float:
    """Mean over the batch of -sum_c q_c log softmax(logits)_c with the model zoo's q."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    q = smoothed_targets(labels, z.shape[1], smoothing)
    return float(-(q * log_p).sum(axis=1).mean())
