"""The sign estimators, each described once, framework-neutral: everything else derives from here.

Binarisation (all estimators):  sign(x) = +1 if x >= 0 else -1   (sign(0) = +1: a binary layer never
outputs 0). Each estimator replaces the zero derivative of sign with a pseudo-gradient g(x); the
input gradient is grad_output * g(x).

From an `Estimator` below come: the spec's allowed `estimator.name` values and the `estimator.<param>`
fields of its own parameters (bench/spec.py), the labels of runs, bench cases and micro-benchmarks
(`variant_label`), which spec fields a study table shows and a cell's identity keeps (`relevant`),
and both backends' registries: backend B computes
estimator NAME with the function `pseudo_grad` of the module `backends/<B>/estimators/<NAME>.py`,
found by name. Every implementation of a pseudo-gradient, the NumPy reference here included, has
one signature:

    pseudo_grad(x, n, *options)      options = Estimator.options(spec), e.g. (clip,) for ste

n (FDA's number of terms, changed per epoch by the spec's n -> n_end schedule) is a runtime value
every pseudo-gradient receives, whether it reads it or not; the options are fixed for a run.

Adding an estimator: one `Estimator` in ESTIMATORS below (its formula, parameters and NumPy
reference) and one `pseudo_grad` per backend in backends/{pytorch,mindspore}/estimators/<name>.py;
nothing else (README, "Adding an estimator").
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # the spec imports this module for its choices
    from bench.spec import EstimatorSpec, Spec


def sign(x: np.ndarray) -> np.ndarray:
    """+1 where x >= 0 (0 included), else -1."""
    return np.where(np.asarray(x) >= 0, 1.0, -1.0)


def ste_reference(x: np.ndarray, n: float, clip: float | None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.ones_like(x) if clip is None else (np.abs(x) <= clip).astype(np.float64)


def approx_sign_reference(x: np.ndarray, n: float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(0.0, 2.0 - 2.0 * np.abs(x))


def fda_reference(x: np.ndarray, n: float, omega: float, form: str = "sum", n_max: int | None = None) -> np.ndarray:
    """The term-by-term sum of paper Eq. 10, zero outside [-1, 1], whatever form the backends use."""
    x = np.asarray(x, dtype=np.float64)
    total = np.zeros_like(x)
    for i in range(int(n) + 1):
        total += np.cos((2 * i + 1) * omega * x)
    return np.where(np.abs(x) <= 1.0, 4.0 * omega / np.pi * total, 0.0)


def _ste_tag(spec: EstimatorSpec) -> str:
    if spec.clip is None:
        return "ste-identity"
    return "ste" if spec.clip == 1.0 else f"ste-clip{spec.clip:g}"


def _fda_tag(spec: EstimatorSpec) -> str:
    tag = f"fda-n{spec.n}" if spec.n_end is None else f"fda-n{spec.n}-{spec.n_end}"
    if spec.omega != 0.1:
        tag += f"-w{spec.omega:g}"
    return tag + ("-sum" if spec.form == "sum" else "")


@dataclass(frozen=True)
class Param:
    """A constant of an estimator; it becomes the spec field `estimator.<name>`. Estimators that
    share a parameter name share the field, so they must describe it identically."""

    type: Any  # the annotation: float, float | None, Literal[...]
    default: Any
    doc: str
    bounds: dict[str, float] = field(default_factory=dict)  # pydantic's gt / ge / lt / le


N_FIELDS = ("n", "n_end")  # the spec's n schedule, for estimators that read n


@dataclass(frozen=True)
class Estimator:
    name: str
    title: str  # what it is, one line, with its paper
    formula: str  # forward and pseudo-gradient, as the paper writes them
    params: dict[str, Param]  # its own constants (spec fields)
    uses_n: bool  # whether it reads the runtime n (then the spec's n and n_end matter to it)
    option_fields: tuple[str, ...]  # EstimatorSpec attributes passed to every pseudo_grad after (x, n)
    reference: Callable[..., np.ndarray]  # the NumPy pseudo_grad(x, n, *options), float64
    tag: Callable[[EstimatorSpec], str]  # its part of a label
    # the largest n a backend can set once built for `spec` (None: any n)
    n_limit: Callable[[EstimatorSpec], int | None] = lambda spec: None
    # option fields that only some settings read (field -> whether `spec` reads it): a field a
    # setting does not read is passed as None, so that specs differing only there share one compiled
    # kernel (FDA's closed form takes any n: n_max would make a kernel variant per n)
    read_only_when: dict[str, Callable[[EstimatorSpec], bool]] = field(default_factory=dict)

    @property
    def fields(self) -> tuple[str, ...]:
        """The EstimatorSpec fields that change this estimator; the others are ignored, not shown."""
        return (*(N_FIELDS if self.uses_n else ()), *self.params)

    def options(self, spec: EstimatorSpec) -> tuple[Any, ...]:
        return tuple(getattr(spec, name) if self.read_only_when.get(name, lambda _: True)(spec) else None
                     for name in self.option_fields)


ESTIMATORS: dict[str, Estimator] = {e.name: e for e in (
    Estimator(
        "ste", 'Straight-through estimator (Hubara et al. 2016, "Binarized Neural Networks", Eq. 4)',
        "forward sign(x); backward g(x) = 1{|x| <= clip}, or g = 1 with clip = None (the model zoo's identity STE)",
        {"clip": Param(float | None, 1.0, "ste: the gradient passes where |x| <= clip; none: everywhere (identity "
                       "STE, the model zoo's)", {"gt": 0})},
        False, ("clip",), ste_reference, _ste_tag),
    Estimator(
        "approx_sign", 'ApproxSign (Liu et al. 2018, "Bi-Real Net", Eq. 6-7)',
        "forward sign(x); backward g(x) = max(0, 2 - 2|x|), the derivative of a piecewise quadratic",
        {}, False, (), approx_sign_reference, lambda spec: "approx_sign"),
    Estimator(
        "fda", 'Frequency-domain approximation (Xu et al. 2021, "Learning Frequency Domain Approximation for '
               'Binary Neural Networks", NeurIPS, Eq. 10)',
        "forward sign(x); backward g(x) = (4 w / pi) sum_{i=0..n} cos((2i+1) w x) for |x| <= 1, else 0: n+1 terms "
        "of the derivative of the sine series of the square wave; form closed: sin(2(n+1) w x) / (2 sin(w x)), "
        "limit n+1 at x = 0",
        {"omega": Param(float, 0.1, "fda: the frequency w of the sine series", {"gt": 0}),
         "form": Param(Literal["closed", "sum"], "closed", "fda: closed = sin(2(n+1)wx) / (2 sin(wx)), cost "
                       "independent of n; sum = the n+1 cosines term by term (the paper's definition)")},
        True, ("omega", "form", "n_max"), fda_reference, _fda_tag,
        # the term sum is unrolled to n_max + 1 terms; the closed form takes any n
        lambda spec: spec.n_max if spec.form == "sum" else None,
        {"n_max": lambda spec: spec.form == "sum"}),
)}
NAMES = tuple(ESTIMATORS)


def estimator(name: str) -> Estimator:
    """The description of `name`; an unknown name raises, listing the known ones."""
    from bench.errors import UserError

    if name not in ESTIMATORS:
        raise UserError(f"estimator '{name}': unknown; choose one of {', '.join(NAMES)}")
    return ESTIMATORS[name]


def reference_pseudo_grad(spec: EstimatorSpec, x: np.ndarray, n: float | None = None) -> np.ndarray:
    """g(x) of `spec` from its NumPy reference, with n = spec.n unless given."""
    return estimator(spec.name).reference(x, spec.n if n is None else n, *estimator(spec.name).options(spec))


def variant_label(spec: Spec) -> str:
    """What a run, a bench case and a micro-benchmark are called: the estimator's tag with only the
    fields that matter to it, '+noise' with the noise module ('+noise-linear', '+noise-none' with a
    shortcut other than the paper's sin), '-unfused' when the PyTorch backward runs op by op
    (runtime.fused_estimators = false)."""
    label = estimator(spec.estimator.name).tag(spec.estimator)
    if spec.noise.enabled:
        label += "+noise" + ("" if spec.noise.shortcut == "sin" else f"-{spec.noise.shortcut or 'none'}")
    if not spec.runtime.fused_estimators:
        label += "-unfused"
    return label


def relevant(spec: EstimatorSpec, name: str) -> bool:
    """Whether field `name` of EstimatorSpec changes this estimator (n means nothing to STE)."""
    return name in estimator(spec.name).fields


def canonical(spec_tree: dict[str, Any]) -> dict[str, Any]:
    """A spec dict with the estimator fields that do not matter to its estimator removed: two specs
    that train the same model have the same canonical form (used for a cell's identity)."""
    tree = {**spec_tree, "estimator": dict(spec_tree.get("estimator", {}))}
    name = tree["estimator"].get("name")
    if name in ESTIMATORS:
        tree["estimator"] = {k: v for k, v in tree["estimator"].items() if k == "name" or k in ESTIMATORS[name].fields}
    return tree
