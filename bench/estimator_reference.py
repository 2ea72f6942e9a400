"""Framework-neutral NumPy references that both backends' tests compare against.

Everything is computed in float64 from the formulas as the papers write them, term by term where
the paper has a sum, so a backend's closed form or fused kernel is checked against the definition,
not against itself.

Binarisation (all estimators):  sign(x) = +1 if x >= 0 else -1   (sign(0) = +1, a binary layer
never outputs 0).  Each estimator replaces the zero derivative of sign with a pseudo-gradient g(x);
the input gradient is grad_output * g(x).

- ste (Hubara et al. 2016, "Binarized Neural Networks"):  g(x) = 1{|x| <= clip};  clip=None is
  the identity straight-through estimator, g(x) = 1.
- approx_sign (Liu et al. 2018, Bi-Real Net, Eq. 6):  g(x) = max(0, 2 - 2|x|).
- fda (Xu et al. 2021, FDA-BNN, Eq. 10):  g(x) = (4 w / pi) * sum_{i=0..n} cos((2i+1) w x) for
  |x| <= 1, else 0  (n+1 terms of the derivative of the sine series of the square wave).

Loss (the model zoo's CrossEntropySmooth): targets 1 - eps on the true class and eps / (C - 1) on
each other class, averaged over the batch.
"""
from __future__ import annotations

import numpy as np


def sign(x: np.ndarray) -> np.ndarray:
    """+1 where x >= 0 (0 included), else -1."""
    return np.where(np.asarray(x) >= 0, 1.0, -1.0)


def ste_grad(x: np.ndarray, clip: float | None = 1.0) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if clip is None:
        return np.ones_like(x)
    return (np.abs(x) <= clip).astype(np.float64)


def approx_sign_grad(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(0.0, 2.0 - 2.0 * np.abs(x))


def fda_grad(x: np.ndarray, n: int, omega: float = 0.1) -> np.ndarray:
    """The term-by-term sum of paper Eq. 10, zero outside [-1, 1]."""
    x = np.asarray(x, dtype=np.float64)
    total = np.zeros_like(x)
    for i in range(n + 1):
        total += np.cos((2 * i + 1) * omega * x)
    return np.where(np.abs(x) <= 1.0, 4.0 * omega / np.pi * total, 0.0)


def pseudo_grad(name: str, x: np.ndarray, *, clip: float | None = 1.0, n: int = 9, omega: float = 0.1) -> np.ndarray:
    """g(x) of the estimator called `name` (the spec's estimator.name)."""
    if name == "ste":
        return ste_grad(x, clip)
    if name == "approx_sign":
        return approx_sign_grad(x)
    if name == "fda":
        return fda_grad(x, n, omega)
    raise ValueError(f"estimator '{name}': unknown; choose one of ste, approx_sign, fda")


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
