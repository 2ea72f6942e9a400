"""What every network of bench/networks shares, framework-neutral: BatchNorm's constants and the
shape of the binarized convolution's noise module (backends/*/binconv.py, backends/*/noise.py).
"""
from __future__ import annotations

BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # weight of the new batch's statistics (MindSpore's momentum is 1 - this)

# The noise module's shortcut s(t) beside its two linears, e(t) = fc2(ReLU(fc1(t))) + a s(t) with a =
# noise.sin_scale: "sin" (a sin(t), the paper's Eq. 14 and the model zoo's), "linear" (a t), or None
# (written "none": no shortcut); the paper's Table 4 compares the three. Both backends compute exactly these.
NOISE_SHORTCUTS = ("sin", "linear")


def noise_hidden_width(d: int, k: int) -> int:
    """The noise module's hidden width for input size d: max(1, d // k). The public code's d // 64 is
    0 at widths 16 and 32 and silently degenerates to the sine alone; at least one unit is kept."""
    return max(1, d // k)


def noise_k(pairs: list[tuple[int, int]], default: int = 64) -> int:
    """The k giving every (hidden width h, input size d) pair h = noise_hidden_width(d, k), the
    default if none does (a shape check then names the culprits)."""
    for k in range(1, max((d for _, d in pairs), default=1) + 2):
        if all(noise_hidden_width(d, k) == h for h, d in pairs):
            return k
    return default
