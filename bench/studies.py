"""Studies and profiles are data: TOML files under ablations/, read and expanded into cells here.

A study file (ablations/<name>.toml) holds

    title    = "..."                      one line
    question = "..."                      what the study answers, in words
    backends = ["torch", "mindspore"]     which backends run every cell
    [base]                                spec fields shared by every cell (dotted keys or tables)
    [[grid]]                              one or more: spec field -> list of values
    estimator.n   = [1, 2, 4]             the grid's cells are the cartesian product of its lists;
    noise.enabled = [false, true]         the study's cells are the union over its grids

TOML has no null: the string "none" stands for a field's None (estimator.clip = ["none"]).

A profile (ablations/profiles.toml, [profile.<name>]) is the training budget laid over every cell:
epochs, data subset, batch size and the seeds each cell runs with. The spec of a cell is, last
winning: the spec defaults <- study base <- profile <- grid values <- backend, device and seed.
So a grid may vary something a profile also sets (a batch-size study, say) and the grid wins.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.environment import REPO
from bench.errors import UserError
from bench.init.reference import for_profile
from bench.networks import NAMES as NETWORK_NAMES
from bench.spec import BACKENDS, PRECISIONS, Spec, _flatten, build_spec, canonical_key, merge
from bench.tomlfile import check_keys, nones, read_toml

ABLATIONS = REPO / "ablations"
PROFILES_FILE = ABLATIONS / "profiles.toml"
STUDY_KEYS = {"title": str, "question": str, "backends": list, "base": dict, "grid": list}
PROFILE_KEYS = {"about": str, "seeds": list, "spec": dict, "pretrain": dict}
ESTIMATE_KEYS = ("step_s_at_batch_128", "startup_s")
# fields the runner sets on every cell, last: a study that sets them would be overruled without a word
RUNNER_FIELDS = {"train.seed": "the seeds are the profile's; run others with --seeds 0,1,2",
                 "backend": "list them in the study's `backends = [...]` (or choose with --backends)",
                 "device": "choose it with --device"}


@dataclass(frozen=True)
class Study:
    name: str
    path: Path
    title: str
    question: str
    backends: tuple[str, ...]
    base: dict[str, Any]
    grids: tuple[dict[str, list[Any]], ...]


@dataclass(frozen=True)
class Profile:
    name: str
    about: str
    seeds: tuple[int, ...]
    spec: dict[str, Any]
    # laid over `spec` for `make pretrain-fp` (bench/init/pretrain.py): the FP checkpoint's budget
    pretrain: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CostModel:
    """Per-backend constants for estimating a study's duration before any record exists."""

    step_s_at_batch_128: float
    startup_s: float
    # a step's cost in another precision, as a multiple of fp32's (a precision the CPU cannot run
    # fast is not refused: its cost shows in the estimate)
    precision_factor: dict[str, float] = field(default_factory=dict)

    def step_s(self, precision: str, batch: int) -> float:
        return self.step_s_at_batch_128 * self.precision_factor.get(precision, 1.0) * batch / 128


@dataclass(frozen=True)
class Profiles:
    profiles: dict[str, Profile]
    default_cpu: str
    default_cuda: str
    costs: dict[str, CostModel]

    def pick(self, name: str | None, device: str) -> Profile:
        """`name`, else the CUDA default when a GPU may be used and is present, else the CPU default."""
        if name is None:
            name = self.default_cuda if device != "cpu" and cuda_present() else self.default_cpu
        if name not in self.profiles:
            raise UserError(f"profile '{name}': unknown; choose one of {', '.join(self.profiles)} "
                            f"(defined in {PROFILES_FILE})")
        return self.profiles[name]


@dataclass(frozen=True)
class Cell:
    """One training run of a study: a resolved spec, tagged with its study and profile."""

    study: str
    profile: str
    spec: Spec
    digest: str | None = None  # one of spec.digests() where an earlier version named the directory

    @property
    def run_id(self) -> str:
        """Derived from the resolved spec alone, so a rerun of the study finds the same directory."""
        return self._run_id(self.digest or self.spec.digest())

    def _run_id(self, digest: str) -> str:
        return f"{self.study}-{self.profile}-{self.spec.label()}-s{self.spec.train.seed}-{digest}"

    def found_in(self, runs: Path) -> "Cell":
        """This cell, in the directory of `runs` an earlier version of the suite named it where only
        that one exists, so that a study upgraded mid-way keeps its finished cells."""
        current, *earlier = self.spec.digests()
        if (runs / self._run_id(current)).exists():
            return self
        return next((replace(self, digest=d) for d in earlier if (runs / self._run_id(d)).exists()), self)

    @property
    def name(self) -> str:
        return f"{self.spec.label()} s{self.spec.train.seed}"


def _flat(tree: dict[str, Any]) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    return {key[1:]: value for key, value in _flatten(tree, "").items()}


def gpu_count() -> int:
    """Framework-neutral: the GPUs an NVIDIA driver lists (0 without one), as CUDA_VISIBLE_DEVICES
    narrows them."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return 0
    listed = sum(line.startswith("GPU ") for line in out.stdout.splitlines()) if out.returncode == 0 else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return min(listed, len([v for v in visible.split(",") if v.strip()]))
    return listed


def cuda_present() -> bool:
    return gpu_count() > 0


def study_path(name_or_path: str) -> Path:
    """A study's name (a file under ablations/) or the path of a study file anywhere."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        return path
    path = ABLATIONS / f"{name_or_path}.toml"
    if not path.is_file() or path == PROFILES_FILE:
        raise UserError(f"study '{name_or_path}': unknown; choose one of {', '.join(study_names())} "
                        "or give the path of a study .toml file")
    return path


def study_names() -> list[str]:
    return sorted(p.stem for p in ABLATIONS.glob("*.toml") if p != PROFILES_FILE)


def load_study(name_or_path: str) -> Study:
    """Read and validate a study file; every problem is one line naming the file and the key."""
    path = study_path(name_or_path)
    raw = read_toml(path)
    check_keys(path, "", raw, STUDY_KEYS)
    for key in ("title", "question", "grid"):
        if key not in raw:
            raise UserError(f"{path}: key '{key}': missing")
    backends = tuple(raw.get("backends", list(BACKENDS)))
    for backend in backends:
        if backend not in BACKENDS:
            raise UserError(f"{path}: key 'backends': unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if not backends:
        raise UserError(f"{path}: key 'backends': empty; name at least one of {', '.join(BACKENDS)}")
    base = nones(raw.get("base", {}))
    _refuse_runner_fields(path, "[base]", _flat(base))
    _validate(path, "[base]", base)
    grids = tuple(_read_grid(path, i, table) for i, table in enumerate(raw["grid"], 1))
    if not grids:
        raise UserError(f"{path}: key 'grid': empty; add at least one [[grid]] table")
    study = Study(path.stem, path, raw["title"], raw["question"].strip(), backends, base, grids)
    for i, grid in enumerate(grids, 1):
        for combo in _combinations(grid):
            _validate(path, f"[[grid]] {i}", merge(base, combo))
    return study


def _read_grid(path: Path, index: int, table: Any) -> dict[str, list[Any]]:
    where = f"[[grid]] {index}"
    if not isinstance(table, dict):
        raise UserError(f"{path}: key 'grid': expected [[grid]] tables, got {type(table).__name__} {table!r}")
    grid = _flat(nones(table))
    if not grid:
        raise UserError(f"{path}: {where}: empty; give at least one spec field with a list of values")
    out = {}
    for key, values in grid.items():
        if not isinstance(values, list):
            raise UserError(f"{path}: {where} key '{key}': expected a list of values, got {values!r} "
                            f"(write [{json.dumps(values)}] for a single value)")
        if not values:
            raise UserError(f"{path}: {where} key '{key}': empty list; give at least one value")
        out[key] = values
    _refuse_runner_fields(path, where, out)
    return out


def _refuse_runner_fields(path: Path, where: str, fields: dict[str, Any]) -> None:
    for key in fields:
        if (dotted := canonical_key(key)) in RUNNER_FIELDS:
            raise UserError(f"{path}: {where} key '{key}': {dotted} is set by the runner, not the study; "
                            f"{RUNNER_FIELDS[dotted]}")


def _combinations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())]


def _validate(path: Path, where: str, tree: dict[str, Any]) -> Spec:
    try:
        return build_spec(tree)
    except UserError as exc:
        raise UserError(f"{path}: {where}: {exc}") from None


def load_profiles(path: Path = PROFILES_FILE) -> Profiles:
    raw = read_toml(path)
    check_keys(path, "", raw, {"default_cpu": str, "default_cuda": str, "profile": dict, "estimate": dict})
    profiles = {}
    for name, table in raw.get("profile", {}).items():
        if not isinstance(table, dict):
            raise UserError(f"{path}: key 'profile.{name}': expected a table")
        check_keys(path, f"[profile.{name}] ", table, PROFILE_KEYS)
        seeds = table.get("seeds", [0])
        if not seeds or not all(type(s) is int and s >= 0 for s in seeds):
            raise UserError(f"{path}: [profile.{name}] key 'seeds': expected a non-empty list of integers >= 0")
        spec, pretrain = nones(table.get("spec", {})), nones(table.get("pretrain", {}))
        _validate(path, f"[profile.{name}.spec]", spec)
        _validate(path, f"[profile.{name}.pretrain]", merge(spec, pretrain))
        profiles[name] = Profile(name, table.get("about", ""), tuple(seeds), spec, pretrain)
    costs = {}
    for backend, table in raw.get("estimate", {}).items():
        if backend not in BACKENDS:
            raise UserError(f"{path}: key 'estimate.{backend}': unknown backend; choose from {', '.join(BACKENDS)}")
        factors = table.pop("precision_factor", {}) if isinstance(table, dict) else {}
        check_keys(path, f"[estimate.{backend}] ", table, dict.fromkeys(ESTIMATE_KEYS, (int, float)))
        missing = [k for k in ESTIMATE_KEYS if k not in table]
        if missing:
            raise UserError(f"{path}: [estimate.{backend}] key '{missing[0]}': missing")
        check_keys(path, f"[estimate.{backend}.precision_factor] ", factors, dict.fromkeys(PRECISIONS, (int, float)))
        costs[backend] = CostModel(float(table["step_s_at_batch_128"]), float(table["startup_s"]),
                                   {k: float(v) for k, v in factors.items()})
    for key in ("default_cpu", "default_cuda"):
        if raw.get(key) not in profiles:
            raise UserError(f"{path}: key '{key}': {raw.get(key)!r} is not a profile; "
                            f"choose one of {', '.join(profiles)}")
    return Profiles(profiles, raw["default_cpu"], raw["default_cuda"], costs)


def parse_arch(text: str) -> str:
    """The --arch / ARCH= network name, refused in one line unless it is one of bench.networks."""
    if text not in NETWORK_NAMES:
        raise UserError(f"--arch {text}: unknown network; choose one of {', '.join(NETWORK_NAMES)}")
    return text


def parse_seeds(text: str) -> tuple[int, ...]:
    """`0,1,2` -> (0, 1, 2); the SEEDS= / --seeds spelling."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise UserError(f"seeds '{text}': expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds or min(seeds) < 0:
        raise UserError(f"seeds '{text}': expected comma-separated integers >= 0, e.g. 0,1,2")
    return seeds


def expand(study: Study, profile: Profile, backends: tuple[str, ...] | None = None, device: str = "auto",
           seeds: tuple[int, ...] | None = None, arch: str | None = None) -> list[Cell]:
    """The study's cells under `profile`: backend, then seed, then grid order; duplicates (the same
    resolved spec from two grids) once. Ordered so a first pass over every cell finishes early.
    `arch` (--arch, ARCH=) puts every cell on that network (model.name), over the study's own. An
    init.from of bare `pretrain-fp` (bench/init/reference.py) becomes pretrain-fp:<profile>: the FP
    checkpoint pretrained at this profile's budget."""
    chosen = backends or study.backends
    for backend in chosen:
        if backend not in study.backends:
            raise UserError(f"backends: '{backend}' is not one of study {study.name}'s backends "
                            f"({', '.join(study.backends)})")
    cells: dict[str, Cell] = {}
    for backend in chosen:
        for seed in seeds or profile.seeds:
            for grid in study.grids:
                for combo in _combinations(grid):
                    tree = merge(merge(merge(study.base, profile.spec), combo),
                                 {"backend": backend, "device": device, "train.seed": seed,
                                  **({"model.name": arch} if arch else {})})
                    if (start := tree.get("init", {}).get("from")) is not None:
                        tree["init"]["from"] = for_profile(start, profile.name)
                    cell = Cell(study.name, profile.name, _validate(study.path, "cell", tree))
                    cells.setdefault(cell.run_id, cell)
    return list(cells.values())
