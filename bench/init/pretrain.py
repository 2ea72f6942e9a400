"""The full-precision checkpoints binarized runs start from: `make pretrain-fp ARCH=... PROFILE=...`
(`fdabnn pretrain-fp`) trains the FP twin (model.binarize = false) of one network through the
ablation runner, so it is a cell of a study named `pretrain-fp` with a record like any run, in
results/runs/pretrain-fp-<profile>-<label>-s0-<digest>/.

Its budget is the profile's with the profile's `pretrain` table laid over it (ablations/profiles.toml):
a pretraining is usually longer than the binarized runs that start from it (BiBench: 200 epochs of
full precision). One seed: the checkpoint is an input of the studies, not a result of their seeds.

`pretrain-fp:<profile>` (bench/init/reference.py) names the checkpoint of this training for the
referring run's network and backend: the cell this module would run for them, found in the results
store by its run id (the spec's device first: a pretraining run with --device cpu and one left at
auto are both found).
"""
from __future__ import annotations

from pathlib import Path

from bench import store
from bench.errors import UserError
from bench.init.reference import PRETRAIN
from bench.spec import DEVICES, Spec
from bench.studies import PROFILES_FILE, Cell, Profile, Study, expand, load_profiles

SEED = 0


def study() -> Study:
    """The pretraining as a study: one grid cell, the FP twin; the network comes from --arch."""
    return Study(PRETRAIN, PROFILES_FILE, "Full-precision checkpoints to start binarized runs from",
                 "The full-precision twin trained at the profile's pretraining budget (its `pretrain` table), "
                 "stored for `init.from = \"pretrain-fp\"` (BiBench's protocol: binarize a trained FP network).",
                 ("torch", "mindspore"), {}, ({"model.binarize": [False]},))


def budget(profile: Profile) -> Profile:
    """The profile with its pretraining budget laid over its spec, and one seed."""
    from bench.spec import merge

    return Profile(profile.name, profile.about, (SEED,), merge(profile.spec, profile.pretrain))


def cells(profile: Profile, arch: str, backends: tuple[str, ...] | None = None, device: str = "auto") -> list[Cell]:
    return expand(study(), budget(profile), backends, device, (SEED,), arch)


def run_dir_for(spec: Spec, profile_name: str) -> Path:
    """The finished pretraining `pretrain-fp:<profile_name>` names for `spec`'s network and backend;
    refused in one line, naming the make command that trains it, when the store has none."""
    profiles = load_profiles()
    if profile_name not in profiles.profiles:
        raise UserError(f"init.from {PRETRAIN}:{profile_name}: unknown profile; choose one of "
                        f"{', '.join(profiles.profiles)}")
    profile, runs = profiles.profiles[profile_name], store.results_root() / "runs"
    tried = []
    for device in dict.fromkeys((spec.device, *DEVICES)):
        cell = cells(profile, spec.model.name, (spec.backend,), device)[0]
        record = store.read_record(runs / cell.run_id)
        if record is not None and record["status"] == "finished":
            return runs / cell.run_id
        tried.append(cell.run_id)
    raise UserError(f"init.from {PRETRAIN}:{profile_name}: no finished full-precision {spec.model.name} of "
                    f"{spec.backend} in {runs} (looked for {tried[0]}); run `make pretrain-fp ARCH={spec.model.name} "
                    f"PROFILE={profile_name} BACKENDS={spec.backend}` first")
