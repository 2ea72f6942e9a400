"""The canonical parameter naming every backend speaks at its interface: the FDA-BNN model zoo's
(backends/reference/modelzoo-resnet20-params.txt), plus the noise module's
`<conv>.noise_{w,a}.fc{1,2}.weight`. Framework-neutral, so the MindSpore backend, the PyTorch
backend and the checkpoint converter share one check and one alias rule.
"""
from __future__ import annotations

from bench.errors import UserError

PRELU_ALIAS = "a"  # MindSpore 1.x names the slope after its Parameter (name='a'); 2.x by attribute (w)
PRELU_NAME = "w"


def canonical_zoo_name(name: str) -> str:
    """Accept reluK.a (a MindSpore 1.x checkpoint's PReLU slope) for reluK.w."""
    head, _, attr = name.rpartition(".")
    if attr == PRELU_ALIAS and head.rpartition(".")[2].startswith("relu"):
        return f"{head}.{PRELU_NAME}"
    return name


def canonical_state(state: dict[str, object]) -> dict[str, object]:
    """`state` with every PReLU alias renamed; both spellings of one slope are refused."""
    out = {canonical_zoo_name(k): v for k, v in state.items()}
    if len(out) != len(state):
        raise UserError("model state names both reluK.a and reluK.w for one PReLU slope; keep one")
    return out


def check_names(expected: dict[str, tuple[int, ...]], given: dict[str, tuple[int, ...]],
                what: str = "model state") -> None:
    """Refuse any missing, unexpected or mis-shaped name with one UserError listing them all."""
    problems = []
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [f"{k} {tuple(given[k])} (expected {tuple(expected[k])})"
              for k in expected if k in given and tuple(given[k]) != tuple(expected[k])]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected)}")
    if shapes:
        problems.append(f"mis-shaped {', '.join(shapes)}")
    if problems:
        raise UserError(f"{what} does not match this model (model zoo names): " + "; ".join(problems))
