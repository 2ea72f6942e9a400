"""Study and profile files: expansion into cells, run directories, and one-line errors for bad files."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace

import re

from pathlib import Path

import pytest

import backends
from bench import store
from bench.errors import UserError
from bench.estimate import estimate
from bench.spec import DIGEST_SINCE, build_spec, load_spec
from bench.studies import ABLATIONS, expand, load_profiles, load_study, parse_seeds, study_names

GOOD = """
title = "t"
question = "q"
backends = ["torch"]
[base]
estimator.name = "fda"
[[grid]]
estimator.n = [1, 2]
noise.enabled = [false, true]
"""


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def profiles():
    return load_profiles()


def test_shipped_studies_expand_to_the_cells_they_describe(profiles):
    smoke = profiles.profiles["smoke"]
    assert study_names() == ["architectures", "estimators", "fourier-terms", "noise-shortcut", "noise-transfer",
                             "precision", "protocol"]
    labels = {name: sorted(c.spec.label() for c in expand(load_study(name), smoke, ("torch",)))
              for name in study_names()}
    fda = [f"fda-n{n}{noise}" for n in (1, 2, 4, 9, 16, 32) for noise in ("", "+noise")]
    fda += ["fda-n9-18", "fda-n9-18+noise", "ste", "approx_sign"]
    assert labels["fourier-terms"] == sorted(f"torch-{tag}-fp32" for tag in fda)
    assert labels["estimators"] == sorted(f"torch-{tag}-fp32" for tag in (
        "ste-identity", "ste", "approx_sign", "swish_sign", "dsq", "ede", "reste", "rbnn", "fda-n9", "fda-n9-18+noise"))
    assert labels["noise-transfer"] == sorted([f"torch-{tag}{noise}-fp32" for tag in ("dsq", "swish_sign", "fda-n9")
                                               for noise in ("", "+noise")] + ["torch-ste-fp32"])
    assert labels["noise-shortcut"] == sorted(f"torch-{tag}-fp32" for tag in (
        "fda-n9-18+noise", "fda-n9-18+noise-linear", "fda-n9-18+noise-none", "ste"))
    assert labels["precision"] == sorted(f"torch-{tag}-{p}" for tag in ("ste", "fda-n9+noise")
                                         for p in ("fp32", "bf16", "fp16"))
    assert labels["architectures"] == sorted(f"torch-{network}{tag}-fp32" for network in ("", "vgg_small-") for tag in (
        "ste", "swish_sign", "dsq", "ede", "fda-n9", "fda-n9-18+noise", "fp"))
    assert labels["protocol"] == sorted([f"torch-{tag}{start}-fp32" for tag in ("ste", "fda-n9", "fda-n9-18+noise")
                                         for start in ("", "-from-fp")] + ["torch-fp-fp32"])
    # both backends by default
    assert len(expand(load_study("fourier-terms"), smoke)) == 32


def test_profile_is_laid_over_base_and_under_the_grid(profiles):
    cells = expand(load_study("fourier-terms"), profiles.profiles["smoke"], ("torch",), "cpu")
    spec = cells[0].spec
    assert (spec.train.epochs, spec.train.max_steps_per_epoch, spec.train.batch_size) == (1, 2, 16)
    assert (spec.data.subset, spec.data.test_subset, spec.train.eval_batch_size, spec.device) == (4, 4, 40, "cpu")
    paper = expand(load_study("fourier-terms"), profiles.profiles["paper"], ("torch",))[0].spec
    assert (paper.train.epochs, paper.train.batch_size, paper.data.subset) == (400, 128, None)
    quick = profiles.profiles["quick"].spec
    assert build_spec(quick).data.subset == 100 and build_spec(quick).train.epochs == 3


def test_identity_ste_is_spelt_none_in_toml(profiles):
    cells = expand(load_study("estimators"), profiles.profiles["smoke"], ("torch",))
    identity = [c for c in cells if c.spec.label() == "torch-ste-identity-fp32"]
    assert identity and identity[0].spec.estimator.clip is None


def test_seeds_multiply_cells_and_name_distinct_run_directories(profiles):
    study = load_study("estimators")
    cells = expand(study, profiles.profiles["smoke"], ("torch",), seeds=parse_seeds("0,1,2"))
    assert len(cells) == 30  # 10 variants x 3 seeds
    assert len({c.run_id for c in cells}) == 30
    first = cells[0]
    assert first.run_id == (f"estimators-smoke-{first.spec.label()}-s{first.spec.train.seed}-{first.spec.digest()}")
    # the same study expanded again names the same directories: a rerun finds its cells
    again = expand(load_study("estimators"), profiles.profiles["smoke"], ("torch",), seeds=(0, 1, 2))
    assert [c.run_id for c in again] == [c.run_id for c in cells]


def test_the_spec_file_a_cell_is_handed_rebuilds_the_exact_spec(profiles, tmp_path):
    """The runner writes a cell's resolved spec to its run directory and the child reads it back."""
    for name in study_names():
        for profile in profiles.profiles.values():
            for cell in expand(load_study(name), profile, device="cpu", seeds=(0, 3)):
                path = tmp_path / f"{cell.run_id}.json"
                store.atomic_write_json(path, cell.spec.to_dict())
                assert load_spec(path) == cell.spec


def test_duplicate_cells_across_grids_run_once(tmp_path, profiles):
    path = write(tmp_path, GOOD + "[[grid]]\nestimator.n = [2]\nnoise.enabled = [true]\n")
    assert len(expand(load_study(str(path)), profiles.profiles["smoke"])) == 4


def test_backends_restrict_the_study(tmp_path, profiles):
    study = load_study(str(write(tmp_path, GOOD)))
    with pytest.raises(UserError, match="'mindspore' is not one of study study's backends"):
        expand(study, profiles.profiles["smoke"], ("mindspore",))


def test_base_section_tables_are_read(tmp_path, profiles):
    study = load_study(str(write(tmp_path, GOOD.replace('estimator.name = "fda"', 'noise.enabled = true')
                                 .replace("noise.enabled = [false, true]", ""))))
    assert all(c.spec.noise.enabled for c in expand(study, profiles.profiles["smoke"]))


def test_default_profile_on_cpu_is_quick(profiles):
    assert profiles.pick(None, "cpu").name == "quick"
    with pytest.raises(UserError, match="profile 'huge': unknown; choose one of smoke, quick, cpu, gpu, paper"):
        profiles.pick("huge", "cpu")


@pytest.mark.parametrize("text, key", [
    ("colour = 'red'\n" + GOOD, "key 'colour': unknown"),
    (GOOD + "[[grid]]\nestimator.m = [1]\n", "spec field 'estimator.m': unknown key"),
    (GOOD + "[[grid]]\n", "[[grid]] 2: empty"),
    (GOOD.split("[[grid]]")[0], "key 'grid': missing"),
    ("grid = []\n" + GOOD.split("[[grid]]")[0], "key 'grid': empty"),
    (GOOD + "[[grid]]\nestimator.n = 3\n", "[[grid]] 2 key 'estimator.n': expected a list of values"),
    (GOOD + "[[grid]]\nestimator.n = []\n", "[[grid]] 2 key 'estimator.n': empty list"),
    (GOOD + "[[grid]]\nestimator.n = ['many']\n", "spec field 'estimator.n'"),
    (GOOD.replace('title = "t"', "title = 3"), "key 'title': expected str"),
    (GOOD.replace('["torch"]', '["jax"]'), "key 'backends': unknown backend 'jax'"),
    (GOOD.replace('estimator.name = "fda"', 'estimator.name = "magic"'), "[base]: spec field 'estimator.name'"),
    ("title = \n", "not valid TOML"),
])
def test_bad_study_file_is_one_line_naming_file_and_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_study(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and key in message


def test_unknown_study_name_lists_the_studies():
    names = "architectures, estimators, fourier-terms, noise-shortcut, noise-transfer, precision, protocol"
    with pytest.raises(UserError, match=f"study 'nope': unknown; choose one of {names}"):
        load_study("nope")


def test_bad_profiles_file(tmp_path):
    text = (ABLATIONS / "profiles.toml").read_text()
    for bad, key in [(text.replace("seeds = [0]", "seeds = []", 1), "key 'seeds'"),
                     (text.replace("spec.train.epochs = 1", "spec.train.epoch = 1"), "spec field 'train.epoch'"),
                     (text.replace('default_cpu = "quick"', 'default_cpu = "fast"'), "key 'default_cpu'"),
                     (re.sub(r"startup_s = \d+", "startup_s = 'five'", text, count=1), "key 'startup_s'")]:
        path = write(tmp_path, bad, "profiles.toml")
        with pytest.raises(UserError) as info:
            load_profiles(path)
        assert key in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["", "a", "1,-2"])
def test_bad_seeds(text):
    with pytest.raises(UserError, match="seeds"):
        parse_seeds(text)


def test_estimate_from_constants_then_from_records(profiles):
    cells = expand(load_study("estimators"), profiles.profiles["quick"], ("torch",), "cpu")
    cost = profiles.costs["torch"]
    plan = estimate(cells, {}, profiles.costs, [])
    # quick: 1000 images at batch 64 -> 15 steps of 0.25 s, 3 epochs, evaluation of all 10,000 images
    per_epoch = 15 * cost.step_s_at_batch_128 * 64 / 128 + 10000 / 128 * cost.step_s_at_batch_128 / 3
    assert plan.seconds[cells[0].run_id] == pytest.approx(cost.startup_s + 3 * per_epoch)
    assert "constants" in plan.describe(cells)
    records = [{"profile": "quick", "spec": {"backend": "torch", "device": "cpu"}, "epochs_done": 2, "wall_s": w}
               for w in (10.0, 20.0, 40.0)]
    plan = estimate(cells, {cells[0].run_id: 1}, profiles.costs, records)
    assert plan.seconds[cells[0].run_id] == pytest.approx(cost.startup_s + 2 * 10.0)  # 2 epochs left
    assert plan.seconds[cells[1].run_id] == pytest.approx(cost.startup_s + 3 * 10.0)
    assert "from 3 earlier records" in plan.describe(cells)


def test_a_gpu_study_is_estimated_from_gpu_benchmarks_only(profiles):
    cells = [c for c in expand(load_study("estimators"), profiles.profiles["gpu"], ("torch",), "cpu")]
    cells = [replace(c, spec=c.spec.model_copy(update={"device": "cuda"})) for c in cells]
    unknown = estimate(cells, {}, profiles.costs, [], [])
    assert math.isnan(unknown.total_s) and "no GPU benchmark record" in unknown.describe(cells)
    assert "unknown" in unknown.describe(cells)  # never the CPU constants
    bench = [{"device": "cuda", "status": "ok", "case": label,
              "group": {"backend": "torch", "precision": "bf16", "batch": 128, "compile": False, "cuda_graph": True},
              "timing": {"median_ms": 3.0}, "eval": {"images_per_s": 50000.0}}
             for label in ("ste", "ste-identity", "approx_sign", "fda-n9", "fda-n9+noise")]
    known = estimate(cells, {}, profiles.costs, [], bench)
    # gpu profile: 100 epochs of 390 steps at 3 ms, and 10,000 test images at 50,000 img/s an epoch
    per_epoch = 390 * 0.003 + 10000 / 50000
    assert known.seconds[cells[0].run_id] == pytest.approx(profiles.costs["torch"].startup_s + 100 * per_epoch)
    assert "GPU benchmark" in known.describe(cells)


def test_a_slow_precision_is_not_refused_but_costs_what_it_costs_in_the_estimate(profiles):
    """PyTorch fp16 on a CPU without AVX512_FP16 runs, at ~12x fp32's step (ablations/profiles.toml):
    the precision study's fp16 cells are runnable and estimated at that cost, the records of other
    precisions do not stand in for it."""
    cells = expand(load_study("precision"), profiles.profiles["quick"], ("torch",), "cpu")
    by_precision = {(c.spec.estimator.name, c.spec.precision): c for c in cells}
    assert {p for _, p in by_precision} == {"fp32", "bf16", "fp16"}
    for cell in cells:
        backends.check_runnable(cell.spec)  # nothing refused
    plan = estimate(cells, {}, profiles.costs, [])
    cost = profiles.costs["torch"]
    seconds = {key: plan.seconds[cell.run_id] - cost.startup_s for key, cell in by_precision.items()}
    assert seconds["ste", "fp16"] == pytest.approx(cost.precision_factor["fp16"] * seconds["ste", "fp32"])
    assert seconds["ste", "bf16"] == pytest.approx(cost.precision_factor["bf16"] * seconds["ste", "fp32"])
    assert seconds["ste", "fp16"] > 10 * seconds["ste", "fp32"]
    assert "fp16 11.6x" in plan.describe(cells)
    fp32_records = [{"profile": "quick", "spec": {"backend": "torch", "device": "cpu", "precision": "fp32"},
                     "epochs_done": 3, "wall_s": 30.0}]
    again = estimate(cells, {}, profiles.costs, fp32_records)
    assert again.seconds[by_precision["ste", "fp32"].run_id] == pytest.approx(cost.startup_s + 3 * 10.0)
    assert again.seconds[by_precision["ste", "fp16"].run_id] == pytest.approx(plan.seconds[by_precision["ste", "fp16"].run_id])


def test_a_cell_named_before_a_field_existed_is_found_under_its_old_name(tmp_path):
    # the first runs' specs had no runtime.cuda_graph nor runtime.fused_estimators: their digests lack them
    from bench.studies import Cell

    spec = build_spec({"estimator": {"name": "ste"}})
    cell = Cell("estimators", "cpu", spec)
    tree = spec.to_dict()
    for section, name in (("runtime", "cuda_graph"), ("runtime", "fused_estimators")):
        tree[section].pop(name)
    for section, name in DIGEST_SINCE:
        tree[section].pop(name)  # left out of every digest while at the value older runs had
    tree = {section: fields for section, fields in tree.items() if fields != {}}  # init: a section added since
    oldest = hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:10]
    assert spec.digests()[-1] == oldest and len(spec.digests()) == 3
    assert cell.found_in(tmp_path) == cell  # nothing there: the current name
    (tmp_path / cell._run_id(oldest)).mkdir()
    assert cell.found_in(tmp_path).run_id.endswith(oldest)
    (tmp_path / cell.run_id).mkdir()
    assert cell.found_in(tmp_path) == cell  # the current name wins where both exist
    unfused = Cell("estimators", "cpu", build_spec({"runtime": {"fused_estimators": False}}))
    assert len(unfused.spec.digests()) == 2  # older runs all ran fused: none of them is this spec
