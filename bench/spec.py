"""The experiment spec: one typed, validated description of a run that drives every backend.

Defaults are the paper's CIFAR-10 recipe (Xu et al. 2021; model zoo FDA-BNN): 400 epochs, batch 128,
SGD lr 0.1 momentum 0.9 weight decay 1e-4, cosine schedule, label smoothing 0.1.

A spec is loaded from TOML or YAML and/or `key=value` overrides (dotted keys, or the short aliases
in ALIASES). Anything invalid is refused before work starts with a message naming the field.
"""
from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from bench.networks import NAMES as NETWORK_NAMES
from bench.networks.layers import NOISE_SHORTCUTS as NOISE_SHORTCUT_NAMES
from bench.data.dataset import TEST_PER_CLASS, TRAIN_PER_CLASS, split_sizes
from bench.errors import UserError
from bench.estimators import ESTIMATORS, Param, variant_label
from bench.estimators import NAMES as ESTIMATOR_NAMES
from bench.tomlfile import plain_tree, read_text
from bench.yamlfile import load_yaml

BACKENDS = ("torch", "mindspore")
DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("fp32", "bf16", "fp16")


class _Strict(BaseModel):
    # inf and nan are never a valid setting (lr=inf would pass a gt=0 bound)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class _EstimatorCore(_Strict):
    """Which pseudo-gradient replaces the zero gradient of sign(x), and the n it reads."""

    name: Literal[ESTIMATOR_NAMES] = Field("fda", description="the sign estimator (bench/estimators.py)")
    n: int = Field(9, ge=0, description="fda: n+1 sine terms (paper Eq. 10)")
    n_end: int | None = Field(None, ge=0, description="fda: n grows linearly from n to n_end over the epochs "
                                                      "(the paper: 9 -> 18)")

    @model_validator(mode="after")
    def _n_end_not_below_n(self) -> "_EstimatorCore":
        if self.n_end is not None and self.n_end < self.n:
            raise ValueError(f"estimator.n_end ({self.n_end}) must be >= estimator.n ({self.n})")
        return self

    @model_validator(mode="after")
    def _estimator_check(self) -> "_EstimatorCore":
        """The chosen estimator's own check across its fields (bench/estimators.py, Estimator.check)."""
        problem = ESTIMATORS[self.name].check(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def n_max(self) -> int:
        """The largest n the run sets (n_end with a schedule): what the term sum is unrolled to."""
        return self.n if self.n_end is None else self.n_end


def _estimator_params() -> dict[str, Any]:
    """The estimators' own parameters (bench/estimators.py) as fields: estimator.clip, .omega, ..."""
    fields: dict[str, Any] = {}
    described: dict[str, Param] = {}
    for est in ESTIMATORS.values():
        for name, param in est.params.items():
            if described.setdefault(name, param) != param:
                raise TypeError(f"estimators describe parameter '{name}' differently; share one Param")
            fields[name] = (param.type, Field(param.default, description=param.doc, **param.bounds))
    return fields


EstimatorSpec = create_model("EstimatorSpec", __base__=_EstimatorCore, __module__=__name__,
                             __doc__=_EstimatorCore.__doc__, **_estimator_params())


class NoiseSpec(_Strict):
    """The noise adaptation module (paper Eq. 13-14): z = sign(t) + alpha * e(t), e(t) = fc2(ReLU(fc1(t)))
    + the shortcut (bench/networks/layers.py NOISE_SHORTCUTS; paper Table 4 ablates it)."""

    enabled: bool = Field(False, description="train with FDA's noise adaptation module")
    k: int = Field(64, ge=1, description="its hidden width is max(1, d // k) for input size d")
    alpha: float = Field(0.1, ge=0, description="alpha at step 0; the cosine schedule decays it to 0 at the last "
                                                "step")
    alpha_schedule: Literal["cosine", "constant"] = Field("cosine", description="how alpha changes over the steps")
    shortcut: Literal[NOISE_SHORTCUT_NAMES] | None = Field(
        "sin", description="the module's shortcut beside its two linears: sin = sin_scale * sin(t) (the paper's), "
                           "linear = sin_scale * t, none = no shortcut (paper Table 4)")
    # the name is kept for the records and specs stored before `shortcut` existed: it is the weight of
    # whichever shortcut is chosen
    sin_scale: float = Field(0.1, ge=0, description="the weight a of the shortcut: a sin(t) or a t")


class ModelSpec(_Strict):
    name: Literal[NETWORK_NAMES] = Field("resnet20", description="the network (bench/networks): the model zoo's "
                                                                "ResNet-20 or IR-Net's VGG-small")
    binarize: bool = Field(True, description="false: the full-precision twin, real-valued convolutions where the "
                                             "binarized ones were (estimator, noise and runtime.fused_estimators "
                                             "are then ignored and reset to their defaults)")
    scaling: Literal["layer", "channel"] = Field(
        "layer", description="the binary weights' scale mean|W|: one per layer (model zoo) or per output channel")
    num_classes: int = Field(10, ge=2, description="outputs of the classifier")


class InitSpec(_Strict):
    """Where the weights start (bench/init: the reference's forms, its resolution and the checks)."""

    # `from` is a Python keyword: the attribute is from_, the field (spec files, key=value, records) `from`
    model_config = ConfigDict(populate_by_name=True)

    from_: str | None = Field(
        None, alias="from", min_length=1,
        description="none: a fresh initialisation; else a run directory or a .pt/.pth/.ckpt checkpoint of either "
                    "backend whose network matches (its last epoch's weights), or pretrain-fp:<profile> (the FP "
                    "checkpoint `make pretrain-fp PROFILE=<profile>` stored for this network and backend; in a "
                    "study, pretrain-fp alone names the study's profile)")


class OptimSpec(_Strict):
    name: Literal["sgd", "adam"] = Field("sgd", description="the optimizer")
    lr: float = Field(0.1, gt=0, le=10, description="learning rate at step 0")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(1e-4, ge=0, description="weight decay on every parameter")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="cosine: lr decays to 0 at the last step")


class TrainSpec(_Strict):
    epochs: int = Field(400, ge=1, description="passes over the training images")
    batch_size: int = Field(128, ge=1, description="training images per step")
    eval_batch_size: int = Field(500, ge=1, description="test images per evaluation batch")
    label_smoothing: float = Field(0.1, ge=0, lt=1, description="eps: 1 - eps on the true class, eps / (C - 1) on "
                                                                "each other")
    seed: int = Field(0, ge=0, description="initialisation, data order and augmentation")
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap on steps per epoch (none: a full pass); "
                                                                    "for smoke runs")


class DataSpec(_Strict):
    root: str | None = Field(None, description="CIFAR-10 location (none: --data-root, then $CIFAR10_ROOT, then "
                                               "~/.cache/fdabnn/cifar10)")
    subset: int | None = Field(None, ge=1, le=TRAIN_PER_CLASS,
                               description="training images PER CLASS, stratified (none: all 5,000)")
    test_subset: int | None = Field(None, ge=1, le=TEST_PER_CLASS,
                                    description="test images PER CLASS, stratified (none: all 1,000)")
    normalization: Literal["imagenet", "cifar"] = Field("imagenet", description="per-channel mean/std: ImageNet's "
                                                                                "(model zoo) or CIFAR-10's")
    augment: bool = Field(True, description="random crop (padding 4) and horizontal flip")
    download: bool = Field(True, description="fetch the official archive when no local copy is found")


class RuntimeSpec(_Strict):
    compile: bool = Field(False, description="torch.compile the model (PyTorch)")
    fused_estimators: bool = Field(True, description="PyTorch: each estimator's backward as one compiled kernel "
                                                     "(MindSpore's graph always compiles it)")
    mode: Literal["graph", "pynative"] = Field("graph", description="MindSpore execution mode")
    channels_last: bool = Field(True, description="PyTorch on CUDA: NHWC memory layout")
    deterministic: bool = Field(True, description="deterministic kernels (CPU always; cuDNN when true)")
    threads: int | None = Field(None, ge=1, description="CPU kernel threads (none: the backend's default)")
    cuda_graph: bool = Field(True, description="PyTorch on CUDA: the whole train step as one CUDA graph replay "
                                               "(not with fp16 or runtime.compile; ignored elsewhere)")


# (section, field) -> the value every run recorded before the field existed had
DIGEST_SINCE = {("noise", "shortcut"): "sin", ("estimator", "beta"): 5.0, ("estimator", "dsq_alpha"): 0.2,
                ("estimator", "t_min"): None, ("estimator", "t_max"): 10.0, ("estimator", "o_end"): 3.0,
                ("estimator", "cut"): 1.5, ("estimator", "interval"): 0.1, ("model", "binarize"): True,
                ("init", "from"): None}

# What a full-precision twin (model.binarize = false) ignores: reset to the defaults when a spec is
# validated, so the spec, its label and its digest say only what trains, and a grid crossing
# estimators with binarize = [true, false] holds one FP cell, not one per estimator.
FP_IGNORED = ("estimator", "noise", "runtime.fused_estimators")


# Fields that the first runs' specs did not hold, oldest first, with the value those runs had; their
# directories were named by digests without them, and are kept as they are (Spec.digests).
LEGACY_FIELDS = {("runtime", "fused_estimators"): True, ("runtime", "cuda_graph"): True}


def _hash(tree: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:10]


class Spec(_Strict):
    backend: Literal[BACKENDS] = Field("torch", description="the framework")
    device: Literal[DEVICES] = Field("auto", description="auto: cuda when the backend can use a GPU, else cpu")
    precision: Literal[PRECISIONS] = Field("fp32", description="fp32, or mixed precision bf16 / fp16")
    estimator: EstimatorSpec = EstimatorSpec()
    noise: NoiseSpec = NoiseSpec()
    model: ModelSpec = ModelSpec()
    init: InitSpec = InitSpec()
    optim: OptimSpec = OptimSpec()
    train: TrainSpec = TrainSpec()
    data: DataSpec = DataSpec()
    runtime: RuntimeSpec = RuntimeSpec()

    @model_validator(mode="wrap")
    @classmethod
    def _fp_twin_ignores_the_binarization(cls, data: Any, handler: Any) -> "Spec":
        """A full-precision twin's FP_IGNORED fields at their defaults, once they were validated as
        given (a bad value is refused all the same)."""
        spec = handler(data)
        if spec.model.binarize or spec.to_dict() == spec._fp_normalised():
            return spec
        return handler(spec._fp_normalised())

    def _fp_normalised(self) -> dict[str, Any]:
        tree, defaults = self.to_dict(), Spec().to_dict()
        for dotted in FP_IGNORED:
            *parents, leaf = dotted.split(".")
            node, default = tree, defaults
            for part in parents:
                node, default = node[part], default[part]
            node[leaf] = default[leaf]
        return tree

    @model_validator(mode="after")
    def _batch_fits_the_data(self) -> "Spec":
        train_images = split_sizes(self.data.subset, None)[0]
        if self.train.batch_size > train_images:
            raise ValueError(f"train.batch_size ({self.train.batch_size}) exceeds the {train_images:,} training "
                             f"images (data.subset is images per class); lower train.batch_size or raise data.subset")
        return self

    def to_dict(self) -> dict[str, Any]:
        return _canonical(self.model_dump(mode="json", by_alias=True))

    def digest(self) -> str:
        """Stable hash of everything that changes the result, for run directory names. A field added
        after runs were recorded is left out while it holds the value those runs had (DIGEST_SINCE), so
        their directories keep their names: a run resumes and a study finds its finished cells."""
        return self.digests()[0]

    def digests(self) -> list[str]:
        """The digest, then those an earlier version of the suite gave this spec (LEGACY_FIELDS, newest
        first): where a study finds a finished cell named before a field existed."""
        tree = self.to_dict()
        for (section, name), value in DIGEST_SINCE.items():
            if tree[section].get(name, value) == value:
                tree[section].pop(name, None)
                if not tree[section]:  # a section added since (init): absent from the older trees
                    del tree[section]
        found = [_hash(tree)]
        for (section, name), value in reversed(LEGACY_FIELDS.items()):
            if tree[section].get(name, value) != value:
                break  # runs of an older version all had the value: this spec is none of theirs
            tree[section].pop(name, None)
            found.append(_hash(tree))
        return found

    def label(self) -> str:
        return f"{self.backend}-{variant_label(self)}-{self.precision}"


# Short spellings accepted on the command line and in study files.
ALIASES = {
    "n": "estimator.n",
    "n_end": "estimator.n_end",
    "omega": "estimator.omega",
    "clip": "estimator.clip",
    "form": "estimator.form",
    "noise": "noise.enabled",
    "alpha": "noise.alpha",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "lr": "optim.lr",
    "optimizer": "optim.name",
    "scaling": "model.scaling",
    "subset": "data.subset",
    "compile": "runtime.compile",
    "fused": "runtime.fused_estimators",
    "mode": "runtime.mode",
}


_NONE_TEXT = ("none", "null", "~", "")
_INT_TEXT = re.compile(r"[-+]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?:inf|nan)", re.IGNORECASE)


def _canonical(value: Any) -> Any:
    """-0.0 -> 0.0 throughout, so that numbers that are equal name the same run."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return 0.0 if isinstance(value, float) and value == 0 else value


def canonical_key(key: str, value: Any = None) -> str:
    """A dotted field name from a dotted key or an alias; `estimator=fda` names estimator.name and
    `noise=true` noise.enabled."""
    key = ALIASES.get(key, key)
    if key in ("estimator", "noise") and not isinstance(value, dict):
        key = "estimator.name" if key == "estimator" else "noise.enabled"
    return key


def _model_field(model: Any, part: str) -> Any:
    """The FieldInfo of `model`'s field named `part` as spec files spell it (its alias where it has
    one: init.from), None when there is none."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    return next((info for name, info in model.model_fields.items() if (info.alias or name) == part), None)


def _field_name(name: str, info: Any) -> str:
    return info.alias or name


def _annotation(dotted: str) -> Any:
    """The type of spec field `dotted`, None when there is no such field (build_spec names it)."""
    model: Any = Spec
    for part in dotted.split("."):
        info = _model_field(model, part)
        if info is None:
            return None
        model = info.annotation
    return None if isinstance(model, type) and issubclass(model, BaseModel) else model


def parse_value(dotted: str, text: str) -> Any:
    """A `key=value` value read as its field's type, never guessed from the text: true/false for a
    boolean, decimal digits for an integer (`010` is ten), a float's decimal or exponent form; a
    string field (a path, a name) takes the text as it is, `#` and `:` included; none/null -> None
    where the field allows it."""
    annotation = _annotation(dotted)
    if annotation is None:
        return text  # no such field: build_spec names it and lists the allowed ones
    kinds = get_args(annotation) if get_origin(annotation) is not Literal and get_args(annotation) else (annotation,)
    if type(None) in kinds and text.strip().lower() in _NONE_TEXT:
        return None
    kinds = tuple(k for k in kinds if k is not type(None))
    if str in kinds or kinds[0] not in (bool, int, float):  # a name, a path, one of a Literal's words
        return text
    kind, value = kinds[0], text.strip()
    if kind is bool and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind is int and _INT_TEXT.fullmatch(value):
        return int(value)
    if kind is float and _FLOAT_TEXT.fullmatch(value):
        return float(value)
    wanted = {bool: "true or false", int: "a whole number in decimal digits", float: "a number"}[kind]
    raise UserError(f"spec field '{dotted}': expected {wanted} (got {text!r})")


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    key = canonical_key(key, value)
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"spec key '{key}': '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep merge with dotted keys and aliases allowed in `overrides`."""
    out = json.loads(json.dumps(base))
    for key, value in overrides.items():
        # a section table by its own name; not via ALIASES, where "noise" means noise.enabled
        if isinstance(value, dict) and key in Spec.model_fields:
            for sub_key, sub_value in _flatten(value, key).items():
                _set_dotted(out, sub_key, sub_value)
        else:
            _set_dotted(out, key, value)
    return out


def _flatten(tree: dict[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, dotted))
        else:
            flat[dotted] = value
    return flat


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    twice = next((key for key in keys if keys.count(key) > 1), None)
    if twice is not None:
        raise ValueError(f"duplicate key '{twice}'")
    return dict(pairs)


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """A spec file's table of fields; a key given twice is refused in every format (TOML's own rule)."""
    path = Path(path)
    if path.suffix not in (".json", ".toml", ".yaml", ".yml") and not path.is_dir():
        raise UserError(f"spec file {path}: unknown extension '{path.suffix}'; use .toml, .yaml, .yml or .json")
    text = read_text(path, "spec file")
    try:
        if path.suffix == ".json":  # what the ablation runner hands a cell: a resolved spec
            tree = json.loads(text, object_pairs_hook=_no_duplicates)
        elif path.suffix == ".toml":
            tree = tomllib.loads(text)
        else:
            tree = load_yaml(text) or {}
    except (ValueError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:  # JSONDecodeError is a ValueError
        raise UserError(f"spec file {path}: not valid {path.suffix[1:].upper()}: {exc}".splitlines()[0]) from None
    return _spec_table(path, plain_tree(path, tree))


def _spec_table(path: Path, tree: Any) -> dict[str, Any]:
    if not isinstance(tree, dict):
        raise UserError(f"spec file {path}: the top level is a {type(tree).__name__}; expected a table of spec fields, "
                        "e.g. `estimator: {name: fda}` or `[train]`")
    return tree


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` items -> {dotted field: typed value}; a field given twice is refused, not the first dropped."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override '{item}': expected key=value, e.g. estimator=fda or train.epochs=1")
        key, value = item.split("=", 1)
        dotted = canonical_key(key.strip())
        if dotted in given:
            raise UserError(f"override '{item}': {dotted} is already given ('{given[dotted]}'); give it once")
        given[dotted] = item
        out[dotted] = parse_value(dotted, value)
    return out


def build_spec(tree: dict[str, Any]) -> Spec:
    """Validate a spec tree; the first problem becomes a one-line UserError naming the field."""
    try:
        # strict: a boolean is no integer (epochs=true), a float no integer, "yes" no boolean
        spec = Spec.model_validate(merge({}, tree), strict=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "spec"
        if err["type"] == "extra_forbidden":
            section = err["loc"][:-1]
            model: type[BaseModel] = Spec
            for part in section:
                model = _model_field(model, str(part)).annotation
            allowed = ", ".join(_field_name(name, info) for name, info in model.model_fields.items())
            raise UserError(f"spec field '{field}': unknown key; allowed here: {allowed}") from None
        if err["type"] == "value_error":  # a check across fields: its message names them
            where = f"spec field '{field}'" if err["loc"] else "spec"
            raise UserError(f"{where}: {err['msg'].removeprefix('Value error, ')}") from None
        got, info = err.get("input"), _field_info(err["loc"])
        allowed = f"; allowed: {_allowed(info)}" if info is not None else ""
        raise UserError(f"spec field '{field}': {err['msg']} (got {got!r}){allowed}") from None
    return spec


def load_spec(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None) -> Spec:
    tree = read_spec_file(path) if path else {}
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    return build_spec(merge(tree, overrides or {}))


def field_help() -> list[str]:
    """One line per spec field: dotted name, aliases, allowed values, default, meaning (`train --help`)."""
    aliases: dict[str, list[str]] = {}
    for alias, dotted in ALIASES.items():
        aliases.setdefault(dotted, []).append(alias)
    lines = []
    for dotted, info in _fields(Spec, ""):
        names = ", ".join([dotted, *aliases.get(dotted, [])])
        default = info.default if isinstance(info.default, str) else json.dumps(info.default).replace("null", "none")
        lines.append(f"  {names}: {_allowed(info)}, default {default}. {info.description or ''}".rstrip())
    return lines


def _fields(model: type[BaseModel], prefix: str) -> list[tuple[str, Any]]:
    out = []
    for name, info in model.model_fields.items():
        name = _field_name(name, info)
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            out.extend(_fields(info.annotation, f"{prefix}{name}."))
        else:
            out.append((f"{prefix}{name}", info))
    return out


def _field_info(loc: tuple[Any, ...]) -> Any:
    """The FieldInfo of the field an error's location names, None past the fields (a union's member)."""
    model: Any = Spec
    info = None
    for part in loc:
        info = _model_field(model, str(part))
        if info is None:
            return None
        model = info.annotation
    return None if isinstance(model, type) and issubclass(model, BaseModel) else info


def _allowed(info: Any) -> str:
    """'fda | ste | ...', 'int >= 0', 'float > 0 or none', ... from the annotation and bounds."""
    args = [a for a in get_args(info.annotation)] or [info.annotation]
    if get_origin(info.annotation) is Literal:
        return " | ".join(str(a) for a in args)
    kinds = [a.__name__ for a in args if a is not type(None)]
    bounds = [f"{op} {getattr(m, attr)}" for m in info.metadata for attr, op in
              (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if getattr(m, attr, None) is not None]
    text = " and ".join([" or ".join(kinds), *bounds])
    return text + (" or none" if type(None) in args else "")
