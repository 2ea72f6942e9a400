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

    pseudo_grad(x, values, *options)     options = Estimator.options(spec), e.g. (clip,) for ste

`values` are the estimator's runtime values, a float32 vector in the order `Estimator.runtime`
names them (FDA: (n,); EDE and RBNN: (t, k); ReSTE: (o,); the others: empty). They change per epoch
by one schedule, `runtime_values(spec, epoch, epochs, role)` (the estimator's `schedule`), and may
differ between the binarised weights and activations (role "weight" or "activation": RBNN's do).
A backend holds them in one small device buffer per estimator module that it overwrites in place at
each epoch (`Backend.set_estimator_values`), so a compiled or captured step reads the new values
without being rebuilt. The options are constants of a run.

Adding an estimator: one `Estimator` in ESTIMATORS below (its formula, parameters, runtime values and
their schedule, NumPy reference) and one `pseudo_grad` per backend in
backends/{pytorch,mindspore}/estimators/<name>.py; nothing else (README, "Adding an estimator").
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bench.init.reference import label_suffix

if TYPE_CHECKING:  # the spec imports this module for its choices
    from bench.spec import EstimatorSpec, Spec

ROLES = ("weight", "activation")  # what an estimator module binarises; its runtime values may differ


def sign(x: np.ndarray) -> np.ndarray:
    """+1 where x >= 0 (0 included), else -1."""
    return np.where(np.asarray(x) >= 0, 1.0, -1.0)


# ---- NumPy references: pseudo_grad(x, values, *options), float64, as the papers write them -------

def ste_reference(x: np.ndarray, values: np.ndarray, clip: float | None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.ones_like(x) if clip is None else (np.abs(x) <= clip).astype(np.float64)


def approx_sign_reference(x: np.ndarray, values: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(0.0, 2.0 - 2.0 * np.abs(x))


def fda_reference(x: np.ndarray, n: float, omega: float, form: str = "sum", n_max: int | None = None) -> np.ndarray:
    """The term-by-term sum of paper Eq. 10, zero outside [-1, 1], whatever form the backends use;
    n: FDA's runtime value (a number, or the values vector (n,))."""
    x = np.asarray(x, dtype=np.float64)
    total = np.zeros_like(x)
    for i in range(int(np.asarray(n).reshape(-1)[0]) + 1):
        total += np.cos((2 * i + 1) * omega * x)
    return np.where(np.abs(x) <= 1.0, 4.0 * omega / np.pi * total, 0.0)


def swish_sign_reference(x: np.ndarray, values: np.ndarray, beta: float) -> np.ndarray:
    """Larq's formula as written; NumPy's float64 cosh overflows to inf past |beta x| ~ 710, where
    the quotient correctly becomes 0."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return beta * (2 - beta * x * np.tanh(beta * x / 2)) / (1 + np.cosh(beta * x))


def dsq_constants(alpha: float) -> tuple[float, float]:
    """DSQ's (s, k) of the one interval [-1, 1] (width 2): k = ln(2/alpha - 1) / 2 makes the tanh
    reach 1 - alpha at the interval's ends, s = 1 / (1 - alpha) rescales that to 1."""
    return 1.0 / (1.0 - alpha), math.log(2.0 / alpha - 1.0) / 2.0


def dsq_reference(x: np.ndarray, values: np.ndarray, alpha: float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    s, k = dsq_constants(alpha)
    return np.where(np.abs(x) <= 1.0, s * k * (1 - np.tanh(k * x) ** 2), 0.0)


def ede_reference(x: np.ndarray, values: np.ndarray) -> np.ndarray:
    t, k = values
    x = np.asarray(x, dtype=np.float64)
    return k * t * (1 - np.tanh(t * x) ** 2)


def reste_reference(x: np.ndarray, values: np.ndarray, cut: float, interval: float) -> np.ndarray:
    """The authors' four masks: the secant m^(1/o) / m on |x| <= m, the power's derivative on
    m < |x| <= c, 0 beyond. The region edges are compared as float32, as the backends compare a
    float32 x with them (x = float32(0.1) is 0.1000000015 and on the secant's side)."""
    (o,) = values
    a = np.abs(np.asarray(x, dtype=np.float64))
    m, c = float(np.float32(interval)), float(np.float32(cut))
    power = (1 / o) * np.maximum(a, interval) ** ((1 - o) / o)
    return np.where(a <= m, interval ** (1 / o) / interval, np.where(a <= c, power, 0.0))


def rbnn_reference(x: np.ndarray, values: np.ndarray) -> np.ndarray:
    t, k = values
    return k * np.maximum(0.0, math.sqrt(2) * t - t * t * np.abs(np.asarray(x, dtype=np.float64)))


# ---- schedules: an estimator's runtime values at an epoch -----------------------------------------

def scheduled_n(spec: EstimatorSpec, epoch: int, epochs: int) -> int:
    """FDA's n: fixed, or the paper's final recipe, linear from n to n_end over the epochs (9 -> 18)."""
    if spec.n_end is None or epochs == 1:
        return spec.n
    return int(round(spec.n + (spec.n_end - spec.n) * epoch / (epochs - 1)))


def log_ramp(t_min: float, t_max: float, epoch: int, epochs: int) -> float:
    """IR-Net's and RBNN's t (their trainers' cpt_tk): log-linear from t_min at epoch 0 toward t_max,
    10^(log10 t_min + (log10 t_max - log10 t_min) e / E); the last epoch E - 1 stops short of t_max."""
    low, high = math.log10(t_min), math.log10(t_max)
    return 10.0 ** (low + (high - low) * epoch / epochs)


def _fda_schedule(spec: EstimatorSpec, epoch: int, epochs: int, role: str) -> dict[str, float]:
    return {"n": scheduled_n(spec, epoch, epochs)}


def _ede_schedule(spec: EstimatorSpec, epoch: int, epochs: int, role: str) -> dict[str, float]:
    t = log_ramp(ESTIMATORS["ede"].value(spec, "t_min"), spec.t_max, epoch, epochs)
    return {"t": t, "k": max(1.0 / t, 1.0)}


def _reste_schedule(spec: EstimatorSpec, epoch: int, epochs: int, role: str) -> dict[str, float]:
    return {"o": 1.0 + (spec.o_end - 1.0) * (1.0 - math.cos(math.pi * epoch / (2 * epochs)))}


def _rbnn_schedule(spec: EstimatorSpec, epoch: int, epochs: int, role: str) -> dict[str, float]:
    t = log_ramp(ESTIMATORS["rbnn"].value(spec, "t_min"), spec.t_max, epoch, epochs)
    if role == "activation":  # the authors' BinaryQuantize_a: k = 1, t at least 1
        return {"t": max(t, 1.0), "k": 1.0}
    return {"t": t, "k": max(1.0 / t, 1.0)}


# ---- labels and checks ------------------------------------------------------------------------------

def _ste_tag(spec: EstimatorSpec) -> str:
    if spec.clip is None:
        return "ste-identity"
    return "ste" if spec.clip == 1.0 else f"ste-clip{spec.clip:g}"


def _fda_tag(spec: EstimatorSpec) -> str:
    tag = f"fda-n{spec.n}" if spec.n_end is None else f"fda-n{spec.n}-{spec.n_end}"
    if spec.omega != 0.1:
        tag += f"-w{spec.omega:g}"
    return tag + ("-sum" if spec.form == "sum" else "")


def _tag(name: str, **short: str) -> Callable[[EstimatorSpec], str]:
    """The name, then -<short><value> for each parameter (field: short) not at its default."""
    def tag(spec: EstimatorSpec) -> str:
        est = ESTIMATORS[name]
        return "-".join([name, *(f"{prefix}{est.value(spec, f):g}" for f, prefix in short.items()
                                 if est.value(spec, f) != est.default(f))])
    return tag


def _t_range_check(name: str) -> Callable[[EstimatorSpec], str | None]:
    def check(spec: EstimatorSpec) -> str | None:
        t_min = ESTIMATORS[name].value(spec, "t_min")
        if t_min >= spec.t_max:
            return (f"estimator.t_min ({t_min:g}{'' if spec.t_min is not None else f', {name} default'}) must be "
                    f"< estimator.t_max ({spec.t_max:g})")
        return None
    return check


def _reste_check(spec: EstimatorSpec) -> str | None:
    if spec.cut <= spec.interval:
        return f"estimator.cut ({spec.cut:g}) must be > estimator.interval ({spec.interval:g})"
    return None


@dataclass(frozen=True)
class Param:
    """A constant of an estimator; it becomes the spec field `estimator.<name>`. Estimators that
    share a parameter name share the field, so they must describe it identically."""

    type: Any  # the annotation: float, float | None, Literal[...]
    default: Any
    doc: str
    bounds: dict[str, float] = field(default_factory=dict)  # pydantic's gt / ge / lt / le


N_FIELDS = ("n", "n_end")  # the spec's n schedule, for estimators that read n

T_MIN = Param(float | None, None, "ede, rbnn: t's value at epoch 0 (none: the estimator's own, ede 0.1, rbnn 0.01)",
              {"gt": 0})
T_MAX = Param(float, 10.0, "ede, rbnn: t rises log-linearly from t_min toward t_max over the epochs", {"gt": 0})


@dataclass(frozen=True)
class Estimator:
    name: str
    title: str  # what it is, one line, with its paper and the authors' code it follows
    formula: str  # forward and pseudo-gradient, as the paper writes them
    params: dict[str, Param]  # its own constants (spec fields)
    option_fields: tuple[str, ...]  # EstimatorSpec attributes passed to every pseudo_grad after (x, values)
    reference: Callable[..., np.ndarray]  # the NumPy pseudo_grad(x, values, *options), float64
    tag: Callable[[EstimatorSpec], str]  # its part of a label
    # its runtime values, in the order pseudo_grad's `values` holds them, and their schedule:
    # (spec, epoch, epochs, role) -> {name: value} (see runtime_values)
    runtime: tuple[str, ...] = ()
    schedule: Callable[[EstimatorSpec, int, int, str], dict[str, float]] = lambda spec, epoch, epochs, role: {}
    # the largest n a backend can set once built for `spec` (None: any n)
    n_limit: Callable[[EstimatorSpec], int | None] = lambda spec: None
    # option fields that only some settings read (field -> whether `spec` reads it): a field a
    # setting does not read is passed as None, so that specs differing only there share one compiled
    # kernel (FDA's closed form takes any n: n_max would make a kernel variant per n)
    read_only_when: dict[str, Callable[[EstimatorSpec], bool]] = field(default_factory=dict)
    # its value of a shared parameter the spec leaves unset (None): EDE's and RBNN's own t_min
    unset: dict[str, Any] = field(default_factory=dict)
    # a check across its fields: the problem in one line, None when there is none
    check: Callable[[EstimatorSpec], str | None] = lambda spec: None

    @property
    def uses_n(self) -> bool:
        """Whether it reads FDA's runtime n (then the spec's n and n_end matter to it)."""
        return "n" in self.runtime

    @property
    def fields(self) -> tuple[str, ...]:
        """The EstimatorSpec fields that change this estimator; the others are ignored, not shown."""
        return (*(N_FIELDS if self.uses_n else ()), *self.params)

    def default(self, name: str) -> Any:
        """Parameter `name`'s value when the spec leaves it at its default."""
        return self.unset.get(name, self.params[name].default)

    def value(self, spec: EstimatorSpec, name: str) -> Any:
        """Parameter `name` as this estimator reads it (an unset shared one resolved)."""
        given = getattr(spec, name)
        return self.unset.get(name) if given is None and name in self.unset else given

    def options(self, spec: EstimatorSpec) -> tuple[Any, ...]:
        return tuple(self.value(spec, name) if self.read_only_when.get(name, lambda _: True)(spec) else None
                     for name in self.option_fields)


ESTIMATORS: dict[str, Estimator] = {e.name: e for e in (
    Estimator(
        "ste", 'Straight-through estimator (Hubara et al. 2016, "Binarized Neural Networks", Eq. 4)',
        "forward sign(x); backward g(x) = 1{|x| <= clip}, or g = 1 with clip = None (the model zoo's identity STE)",
        {"clip": Param(float | None, 1.0, "ste: the gradient passes where |x| <= clip; none: everywhere (identity "
                       "STE, the model zoo's)", {"gt": 0})},
        ("clip",), ste_reference, _ste_tag),
    Estimator(
        "approx_sign", 'ApproxSign (Liu et al. 2018, "Bi-Real Net", Eq. 6-7)',
        "forward sign(x); backward g(x) = max(0, 2 - 2|x|), the derivative of a piecewise quadratic",
        {}, (), approx_sign_reference, lambda spec: "approx_sign"),
    Estimator(
        "fda", 'Frequency-domain approximation (Xu et al. 2021, "Learning Frequency Domain Approximation for '
               'Binary Neural Networks", NeurIPS, Eq. 10)',
        "forward sign(x); backward g(x) = (4 w / pi) sum_{i=0..n} cos((2i+1) w x) for |x| <= 1, else 0: n+1 terms "
        "of the derivative of the sine series of the square wave; form closed: sin(2(n+1) w x) / (2 sin(w x)), "
        "limit n+1 at x = 0; n: the spec's n, or linear from n to n_end over the epochs",
        {"omega": Param(float, 0.1, "fda: the frequency w of the sine series", {"gt": 0}),
         "form": Param(Literal["closed", "sum"], "closed", "fda: closed = sin(2(n+1)wx) / (2 sin(wx)), cost "
                       "independent of n; sum = the n+1 cosines term by term (the paper's definition)")},
        ("omega", "form", "n_max"), fda_reference, _fda_tag, ("n",), _fda_schedule,
        # the term sum is unrolled to n_max + 1 terms; the closed form takes any n
        lambda spec: spec.n_max if spec.form == "sum" else None,
        {"n_max": lambda spec: spec.form == "sum"}),
    Estimator(
        "swish_sign", 'SignSwish (Darabi et al. 2018, "BNN+: Improved Binary Network Training", Eq. 4); no '
                      "official code: Larq's larq/quantizers.py swish_sign (beta fixed, not learned) is followed",
        "forward sign(x); backward g(x) = beta (2 - beta x tanh(beta x / 2)) / (1 + cosh(beta x)), the derivative "
        "of 2 sigmoid(beta x) (1 + beta x (1 - sigmoid(beta x))) - 1; g(0) = beta",
        {"beta": Param(float, 5.0, "swish_sign: the steepness beta of SignSwish (Larq's 5)", {"gt": 0})},
        ("beta",), swish_sign_reference, _tag("swish_sign", beta="b")),
    Estimator(
        "dsq", 'Differentiable Soft Quantization (Gong et al. 2019, "Differentiable Soft Quantization", ICCV, '
               "Eq. 3-6), 1 bit, clip [-1, 1]; no official code: MQBench's mqbench/fake_quantize/dsq.py (fixed "
               "alpha) is followed",
        "forward sign(x); backward g(x) = s k (1 - tanh(k x)^2) for |x| <= 1, else 0, with k = ln(2/alpha - 1) / 2, "
        "s = 1 / (1 - alpha): the derivative of DSQ's phi(x) = s tanh(k x) on its one interval",
        {"dsq_alpha": Param(float, 0.2, "dsq: alpha, how far the tanh stays from ±1 at the interval's ends "
                            "(0 < alpha < 1; smaller is closer to sign)", {"gt": 0, "lt": 1})},
        ("dsq_alpha",), dsq_reference, _tag("dsq", dsq_alpha="a")),
    Estimator(
        "ede", 'Error Decay Estimator of IR-Net (Qin et al. 2020, "Forward and Backward Information Retention for '
               'Accurate Binary Neural Networks", CVPR, Eq. 11-12); '
               "authors' code: htqin/IR-Net CIFAR-10/ResNet20/1w1a/modules/binaryfunction.py and trainer.py "
               "(cpt_tk). Their 1W1A ResNet-20 script uses Tmin = 1e-3, their VGG-small script 0.1 (this default)",
        "forward sign(x); backward g(x) = k t (1 - tanh(t x)^2), t = 10^(log10 Tmin + (log10 Tmax - log10 Tmin) "
        "e / E) at epoch e of E, k = max(1/t, 1); weights and activations alike",
        {"t_min": T_MIN, "t_max": T_MAX},
        (), ede_reference, _tag("ede", t_min="tmin", t_max="tmax"), ("t", "k"), _ede_schedule,
        unset={"t_min": 0.1}, check=_t_range_check("ede")),
    Estimator(
        "reste", 'Rectified straight-through estimator (Wu et al. 2023, "Estimator Meets Equilibrium Perspective: '
                 'A Rectified Straight Through Estimator for Binary Neural Networks Training", ICCV); '
                 "authors' code: DravenALG/ReSTE model/binary_module/binarized_modules.py and main.py",
        "forward sign(x); backward g(x) = (1/o) |x|^((1-o)/o) for m < |x| <= c, the fixed secant m^(1/o) / m for "
        "|x| <= m, 0 beyond c: the derivative of sign(x) |x|^(1/o); o = 1 + (o_end - 1)(1 - cos(pi e / (2E))) "
        "at epoch e of E",
        {"o_end": Param(float, 3.0, "reste: the power o rises from 1 toward o_end over the epochs (>= 1)", {"ge": 1}),
         "cut": Param(float, 1.5, "reste: c, the gradient is 0 where |x| > c (the authors' t)", {"gt": 0}),
         "interval": Param(float, 0.1, "reste: m, a fixed secant replaces the power on |x| <= m (the authors' "
                           "interval)", {"gt": 0})},
        ("cut", "interval"), reste_reference, _tag("reste", o_end="o", cut="c", interval="m"), ("o",),
        _reste_schedule, check=_reste_check),
    Estimator(
        "rbnn", 'Training-aware approximation of RBNN (Lin et al. 2020, "Rotated Binary Neural Network", NeurIPS, '
                "Eq. 12-13); authors' code: lmbxmu/RBNN cifar/modules/binarized_modules.py (BinaryQuantize, "
                "BinaryQuantize_a) and cifar/main.py (cpt_tk)",
        "forward sign(x); backward g(x) = k max(0, sqrt(2) t - t^2 |x|), t on EDE's log schedule from Tmin to Tmax; "
        "weights and activations differ, as the authors' code: weights k = max(1/t, 1), activations k = 1 and "
        "t = max(t, 1)",
        {"t_min": T_MIN, "t_max": T_MAX},
        (), rbnn_reference, _tag("rbnn", t_min="tmin", t_max="tmax"), ("t", "k"), _rbnn_schedule,
        unset={"t_min": 0.01}, check=_t_range_check("rbnn")),
)}
NAMES = tuple(ESTIMATORS)


def estimator(name: str) -> Estimator:
    """The description of `name`; an unknown name raises, listing the known ones."""
    from bench.errors import UserError

    if name not in ESTIMATORS:
        raise UserError(f"estimator '{name}': unknown; choose one of {', '.join(NAMES)}")
    return ESTIMATORS[name]


def runtime_values(spec: EstimatorSpec, epoch: int, epochs: int, role: str) -> dict[str, float]:
    """The runtime values of `spec`'s estimator at epoch `epoch` (0-based) of `epochs`, for the
    binarised weights or activations (`role`), in the order Estimator.runtime names them. Epoch 0
    gives the values a backend builds with, whatever the run's length."""
    if role not in ROLES:
        raise ValueError(f"role '{role}': expected one of {', '.join(ROLES)}")
    described = estimator(spec.name)
    values = described.schedule(spec, epoch, epochs, role)
    if tuple(values) != described.runtime:
        raise ValueError(f"{spec.name}: its schedule gives {tuple(values)}, its runtime names {described.runtime}")
    return values


def epoch_values(spec: EstimatorSpec, epoch: int, epochs: int) -> dict[str, dict[str, float]]:
    """runtime_values for each role: what Backend.set_estimator_values takes and a run's history keeps."""
    return {role: runtime_values(spec, epoch, epochs, role) for role in ROLES}


def reference_pseudo_grad(spec: EstimatorSpec, x: np.ndarray, values: dict[str, float] | None = None) -> np.ndarray:
    """g(x) of `spec` from its NumPy reference, at `values` (default: its weights' values at epoch 0)."""
    described = estimator(spec.name)
    values = runtime_values(spec, 0, 1, "weight") if values is None else values
    vector = np.array([values[name] for name in described.runtime], dtype=np.float64)
    return described.reference(x, vector, *described.options(spec))


PEAK_GRID = np.linspace(-3.0, 3.0, 60_001)  # x = 0 and every region edge of the defaults fall on it


def peak_pseudo_grad(spec: EstimatorSpec, epoch: int, epochs: int) -> float:
    """max |g(x)| over x and both roles at `epoch` of `epochs`: by how much at most a binarized layer
    can multiply the gradient it passes back (the clipped STE: 1)."""
    return max(float(np.max(np.abs(reference_pseudo_grad(spec, PEAK_GRID, values))))
               for values in epoch_values(spec, epoch, epochs).values())


def variant_label(spec: Spec) -> str:
    """What a run, a bench case and a micro-benchmark are called: the estimator's tag with only the
    fields that matter to it, '+noise' with the noise module ('+noise-linear', '+noise-none' with a
    shortcut other than the paper's sin), '-unfused' when the PyTorch backward runs op by op
    (runtime.fused_estimators = false); 'fp' instead of all that for a full-precision twin
    (model.binarize = false); the network first unless it is the default ResNet-20 ('vgg_small-ste'),
    so the labels of ResNet-20 runs, which name their directories, are what they always were; where
    the weights started last ('ste-from-fp', bench/init/reference.py), nothing for a fresh start."""
    network = "" if spec.model.name == "resnet20" else f"{spec.model.name}-"
    start = label_suffix(spec.init.from_)
    if not spec.model.binarize:
        return network + "fp" + start
    label = estimator(spec.estimator.name).tag(spec.estimator)
    if spec.noise.enabled:
        label += "+noise" + ("" if spec.noise.shortcut == "sin" else f"-{spec.noise.shortcut or 'none'}")
    if not spec.runtime.fused_estimators:
        label += "-unfused"
    return network + label + start


def relevant(spec: EstimatorSpec, name: str) -> bool:
    """Whether field `name` of EstimatorSpec changes this estimator (n means nothing to STE)."""
    return name in estimator(spec.name).fields


def canonical(spec_tree: dict[str, Any]) -> dict[str, Any]:
    """A spec dict with the estimator fields that do not matter to its estimator removed, and a
    shared one it leaves unset resolved: two specs that train the same model have the same canonical
    form (used for a cell's identity)."""
    tree = {**spec_tree, "estimator": dict(spec_tree.get("estimator", {}))}
    name = tree["estimator"].get("name")
    if name in ESTIMATORS:
        described = ESTIMATORS[name]
        tree["estimator"] = {k: described.unset.get(k, v) if v is None else v
                             for k, v in tree["estimator"].items() if k == "name" or k in described.fields}
    return tree
