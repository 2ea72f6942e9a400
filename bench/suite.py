"""Benchmark suites are data: TOML files under bench/suites/, read and validated here.

A suite file (bench/suites/<name>.toml) holds

    title, device ("cpu" | "cuda"), backends, warmup, steps, rounds, eval_images, budget_s
    [base]            spec fields shared by every case (dotted keys)
    [[groups]]        one or more, in priority order: backend, precision, batch, compile, and
                      optionally estimators (variant labels; default: every variant of the group's
                      network), steps and rounds, cuda_graph (the captured step), network (the
                      network the group is about, default resnet20: it names the group, e.g.
                      torch-fp32-b128-eager-vgg_small, and chooses its default variants; a
                      group may still time another network's variant beside its own, e.g. ResNet-20's
                      STE beside VGG-small's for the ratio of the two), part (2, 3, ...: a later part of a
                      group whose cases cannot all be built in one process, e.g. because a MindSpore
                      process keeps every case's graph in memory; each part is a process of its own
                      with its own STE, names the group, e.g. mindspore-fp32-b128-eager-part2, and a
                      ratio to STE is taken within one part; the first part names none)
    [[groups.beside]] cases timed in the same rounds as the group's own with one of its key fields
                      changed (precision, cuda_graph) and optionally their own estimators: a ratio
                      between precisions or step modes then comes from one run; their records are
                      those of the group with that key
    [estimate]        seconds a group is expected to take before it starts: startup_s, and per
                      estimator case case_s (eager, graph) and compiled_case_s; a group whose
                      estimate exceeds what is left of the budget is not started

The estimator variants are bench/suites/estimators.toml, each a set of spec overrides labelled by
bench.estimators.variant_label: its [sets] (every estimator of bench.estimators.ESTIMATORS at its
defaults under one set of overrides, e.g. "every+noise") and its listed variants. A group's
estimators name variants by label or sets by name, so a new estimator is timed without an edit
here. A variant may set model.name and model.binarize: the full-precision twin `fp` is timed beside
the binarized ResNet-20 in the same rounds (what the binarization itself costs), VGG-small's variants
(the `vgg_small` set, `vgg_small-fp`) in groups of their own network. A case is a (group, variant); its spec is, last winning: the spec defaults <- the group
(backend, precision, batch, compile) and the suite's device <- [base] <- the variant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.networks import NAMES as NETWORK_NAMES
from bench.estimators import NAMES as ESTIMATOR_NAMES
from bench.estimators import variant_label
from bench.spec import BACKENDS, PRECISIONS, Spec, build_spec
from bench.tomlfile import check_keys, nones, read_toml

SUITES = Path(__file__).resolve().parent / "suites"
VARIANTS_FILE = SUITES / "estimators.toml"
GROUP_KEYS = ("backend", "precision", "batch", "compile")
SUITE_KEYS = {"title": str, "device": str, "backends": list, "warmup": int, "steps": int, "rounds": int,
              "eval_images": int, "budget_s": (int, float), "base": dict, "groups": list, "estimate": dict}
GROUP_FIELDS = {"backend": str, "precision": str, "batch": int, "compile": bool, "cuda_graph": bool,
                "beside": list, "estimators": list, "steps": int, "rounds": int, "network": str, "part": int}
DEFAULT_NETWORK = "resnet20"  # a group's network unless it names one: not in its id, as before networks
BESIDE_FIELDS = {"precision": str, "cuda_graph": bool, "estimators": list}
ESTIMATE_KEYS = {"startup_s": (int, float), "case_s": (int, float), "compiled_case_s": (int, float)}
# without an [estimate] table: what a group took on the 2-core development CPU, generously
DEFAULT_ESTIMATE = {"startup_s": 30.0, "case_s": 30.0, "compiled_case_s": 90.0}
# the smallest value of each count that still measures something (steps = 0 times nothing)
LEAST = {"warmup": 0, "steps": 1, "rounds": 1, "batch": 1, "eval_images": 10}
CHOICES = {"device": ("cpu", "cuda"), "backend": BACKENDS, "precision": PRECISIONS}


@dataclass(frozen=True)
class Group:
    """Cases that share a process: one backend, precision, batch size and step mode (eager,
    torch.compile, or on CUDA one CUDA graph replay: runtime.cuda_graph)."""

    backend: str
    precision: str
    batch: int
    compile: bool
    estimators: tuple[str, ...]
    steps: int
    rounds: int
    cuda_graph: bool = False
    beside: tuple[tuple[dict[str, Any], tuple[str, ...]], ...] = ()  # (key overrides, estimator labels)
    network: str = DEFAULT_NETWORK
    part: int | None = None  # one of several processes that time one group's cases (module docstring)

    @property
    def id(self) -> str:
        return group_id(self.key())

    def key(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """What a record stores of its group (and group_id names), with `overrides` (a beside's);
        cuda_graph, network and part only where set, so the records of groups without them keep their ids."""
        key = {k: getattr(self, k) for k in GROUP_KEYS} | {"cuda_graph": self.cuda_graph} | (overrides or {})
        graph = key.pop("cuda_graph")
        network = {} if self.network == DEFAULT_NETWORK else {"network": self.network}
        part = {} if self.part is None else {"part": self.part}
        return key | ({"cuda_graph": True} if graph else {}) | network | part

    def cases(self) -> list[tuple[str, dict[str, Any]]]:
        """(label, key overrides) of every case, in the order a round times them: the group's own
        ({}), then each beside's."""
        return [(label, {}) for label in self.estimators] + [
            (label, overrides) for overrides, labels in self.beside for label in labels]

    def estimate_s(self, estimate: dict[str, float]) -> float:
        """Seconds this group is expected to take: start-up, then each case's build, compile and
        timed steps."""
        per_case = estimate["compiled_case_s"] if self.compile else estimate["case_s"]
        return estimate["startup_s"] + per_case * len(self.cases())


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    title: str
    device: str
    warmup: int
    eval_images: int
    budget_s: float
    estimate: dict[str, float]
    base: dict[str, Any]
    groups: tuple[Group, ...]
    variants: dict[str, dict[str, Any]]  # label -> spec overrides

    def group(self, gid: str) -> Group:
        for group in self.groups:
            if group.id == gid:
                return group
        raise UserError(f"{self.path}: no group '{gid}'; groups: {', '.join(g.id for g in self.groups)}")

    def case_spec(self, group: Group, label: str, overrides: dict[str, Any] | None = None) -> Spec:
        key = group.key(overrides)
        tree: dict[str, Any] = {
            "backend": group.backend, "device": self.device, "precision": key["precision"],
            "train.batch_size": group.batch, "train.eval_batch_size": max(group.batch, 500),
            "runtime.compile": group.compile, "runtime.cuda_graph": key.get("cuda_graph", False),
            "data.test_subset": self.eval_images // 10,
            **self.base, **self.variants[label],
        }
        return build_spec(tree)


def step_mode(key: dict[str, Any]) -> str:
    return "compiled" if key["compile"] else "graph" if key.get("cuda_graph") is True else "eager"


def group_id(key: dict[str, Any]) -> str:
    network = f"-{key['network']}" if key.get("network", DEFAULT_NETWORK) != DEFAULT_NETWORK else ""
    part = f"-part{int(key['part'])}" if key.get("part") is not None else ""  # a float once in a frame
    return f"{key['backend']}-{key['precision']}-b{key['batch']}-{step_mode(key)}{network}{part}"


def home_group_id(key: dict[str, Any], case: str) -> str:
    """The id of the group a case of this key belongs to: its own network's first part (ResNet-20's
    STE timed beside VGG-small's cases, or in a later part, is a guest there)."""
    network = case_network(case)
    home = {k: v for k, v in key.items() if k not in ("network", "part")}
    return group_id(home | ({} if network == DEFAULT_NETWORK else {"network": network}))


def case_network(label: str) -> str:
    """The network a case's label is of ('vgg_small-ste': vgg_small; 'ste': resnet20)."""
    return next((name for name in NETWORK_NAMES if name != DEFAULT_NETWORK and label.startswith(f"{name}-")),
                DEFAULT_NETWORK)


def case_reference(label: str) -> str:
    """The case a case's step is relative to: the clipped STE of its network ('ste', 'vgg_small-ste')."""
    return reference_case({"model": {"name": case_network(label)}})


def bench_case(spec_tree: dict[str, Any]) -> str:
    """The benchmark case that times the variant of `spec_tree`: its own label, with an n schedule
    of the closed form dropped (FDA n 9 -> 18 is timed at n = 9: the closed form costs the same at
    any n), and init.from too (where the weights started does not change a step)."""
    spec = build_spec(spec_tree)
    if spec.estimator.n_end is not None and spec.estimator.form == "closed":
        spec = spec.model_copy(update={"estimator": spec.estimator.model_copy(update={"n_end": None})})
    return variant_label(spec.model_copy(update={"init": spec.init.model_copy(update={"from_": None})}))


def reference_case(spec_tree: dict[str, Any]) -> str:
    """The case a step time is relative to: the clipped STE on the same network ('ste',
    'vgg_small-ste'), binarized, without the noise module."""
    network = build_spec(spec_tree).model.name
    return bench_case({"model": {"name": network}, "estimator": {"name": "ste"}})


def _sets(raw: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """set name -> the spec overrides of its variants: every estimator, in ESTIMATORS' order, at its
    default parameters under the set's overrides."""
    return {name: [{"estimator.name": estimator, **nones(overrides)} for estimator in ESTIMATOR_NAMES]
            for name, overrides in raw.get("sets", {}).items()}


def load_variants(path: Path = VARIANTS_FILE) -> dict[str, dict[str, Any]]:
    """label -> spec overrides: the sets' variants, then the listed ones, in the file's order; two
    variants with one label are refused."""
    raw = read_toml(path)
    variants: dict[str, dict[str, Any]] = {}
    for overrides in [*(o for members in _sets(raw).values() for o in members), *nones(raw.get("variants", []))]:
        label = variant_label(build_spec(overrides))
        if label in variants:
            raise UserError(f"{path}: two variants are labelled '{label}'; each must differ in what it times")
        variants[label] = overrides
    return variants


def variant_sets(path: Path = VARIANTS_FILE) -> dict[str, tuple[str, ...]]:
    """set name (e.g. "every+noise") -> the labels of its variants."""
    return {name: tuple(variant_label(build_spec(o)) for o in members)
            for name, members in _sets(read_toml(path)).items()}


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES.glob("*.toml") if p != VARIANTS_FILE)


def load_suite(name: str) -> Suite:
    """A suite by name (bench/suites/<name>.toml) or by the path of a .toml file."""
    path = Path(name) if name.endswith(".toml") else SUITES / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"bench suite '{name}': no {path}; choose one of {', '.join(suite_names())}")
    raw = read_toml(path)
    check_keys(path, "", raw, SUITE_KEYS)
    _check_values(path, "", raw)
    budget = raw.get("budget_s", 3600)
    if not (math.isfinite(budget) and budget > 0):
        raise UserError(f"{path}: key 'budget_s': expected a number of seconds > 0, got {budget!r}")
    variants, sets = load_variants(), variant_sets()
    groups = tuple(_group(path, i, table, raw, variants, sets) for i, table in enumerate(raw.get("groups", []), 1))
    if not groups:
        raise UserError(f"{path}: key 'groups': missing or empty; add at least one [[groups]] table")
    ids = [g.id for g in groups]
    twice = next((gid for gid in ids if ids.count(gid) > 1), None)
    if twice:  # their records would land in one folder, and STE's of one run would serve the other
        raise UserError(f"{path}: two [[groups]] are both {twice}; tell them apart with part = 2, 3, ... on the later ones")
    estimate = raw.get("estimate", {})
    check_keys(path, "[estimate] ", estimate, ESTIMATE_KEYS)
    suite = Suite(path.stem, path, raw.get("title", path.stem), raw.get("device", "cpu"), raw.get("warmup", 3),
                  raw.get("eval_images", 2000), float(budget),
                  {**DEFAULT_ESTIMATE, **{k: float(v) for k, v in estimate.items()}}, nones(raw.get("base", {})),
                  groups, variants)
    for i, group in enumerate(groups, 1):  # every case's spec, so a bad one is this line, not a failed group
        for label, overrides in group.cases():
            try:
                suite.case_spec(group, label, overrides)
            except UserError as exc:
                raise UserError(f"{path}: [[groups]] {i} case '{label}': {exc}") from None
    return suite


def _check_values(path: Path, where: str, table: dict[str, Any]) -> None:
    """Counts at least LEAST, names among CHOICES."""
    for key, low in LEAST.items():
        if key in table and table[key] < low:
            raise UserError(f"{path}: {where}key '{key}': expected a whole number >= {low}, got {table[key]}")
    for key, allowed in CHOICES.items():
        if key in table and table[key] not in allowed:
            raise UserError(f"{path}: {where}key '{key}': {table[key]!r} is not one of {', '.join(allowed)}")


def _group(path: Path, index: int, table: Any, suite: dict[str, Any], variants: dict[str, dict[str, Any]],
           sets: dict[str, tuple[str, ...]]) -> Group:
    where = f"[[groups]] {index} "
    if not isinstance(table, dict):
        raise UserError(f"{path}: key 'groups': expected [[groups]] tables, got {table!r}")
    check_keys(path, where, table, GROUP_FIELDS)
    _check_values(path, where, table)
    missing = [k for k in GROUP_KEYS if k not in table]
    if missing:
        raise UserError(f"{path}: {where}key '{missing[0]}': missing")
    network = table.get("network", DEFAULT_NETWORK)
    if network not in NETWORK_NAMES:
        raise UserError(f"{path}: {where}key 'network': {network!r} is not one of {', '.join(NETWORK_NAMES)}")
    part = table.get("part")
    if part is not None and part < 2:
        raise UserError(f"{path}: {where}key 'part': {part} is not a later part's number; use 2, 3, ... (the "
                        "first part names none)")
    own = [label for label, overrides in variants.items() if build_spec(overrides).model.name == network]
    labels = _labels(path, where, table.get("estimators", own), variants, sets)
    beside = []
    for number, extra in enumerate(table.get("beside", []), 1):
        if not isinstance(extra, dict):
            raise UserError(f"{path}: {where}key 'beside': expected [[groups.beside]] tables, got {extra!r}")
        inner = f"{where}[[groups.beside]] {number} "
        check_keys(path, inner, extra, BESIDE_FIELDS)
        _check_values(path, inner, extra)
        overrides = {k: v for k, v in extra.items() if k != "estimators"}
        if not overrides or all(table.get(k, False) == v for k, v in overrides.items()):
            raise UserError(f"{path}: {inner}changes nothing of the group; set a precision or cuda_graph other "
                            "than the group's")
        beside.append((overrides, _labels(path, inner, extra.get("estimators", labels), variants, sets)))
    return Group(table["backend"], table["precision"], table["batch"], table["compile"], labels,
                 table.get("steps", suite.get("steps", 5)), table.get("rounds", suite.get("rounds", 2)),
                 table.get("cuda_graph", False), tuple(beside), network, part)


def _labels(path: Path, where: str, labels: Any, variants: dict[str, dict[str, Any]],
            sets: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The variant labels a group lists, each set name expanded to its labels, each label once."""
    if not labels:
        raise UserError(f"{path}: {where}key 'estimators': empty, so the group would measure nothing; list at least "
                        f"one of {', '.join(variants)} (or drop the key for all)")
    unknown = [label for label in labels if label not in variants and label not in sets]
    if unknown:
        raise UserError(f"{path}: unknown estimator label(s) {unknown}; known: {', '.join([*sets, *variants])}")
    return tuple(dict.fromkeys(member for label in labels for member in sets.get(label, (label,))))
