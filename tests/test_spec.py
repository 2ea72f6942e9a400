"""The experiment spec: paper defaults, files, overrides, and refusals that name the field."""
from __future__ import annotations

import pytest

from bench.errors import Unsupported, UserError
from bench.schedules import Schedules
from bench.spec import build_spec, load_spec


def test_defaults_are_the_papers_cifar10_recipe():
    spec = build_spec({})
    assert (spec.train.epochs, spec.train.batch_size, spec.train.label_smoothing) == (400, 128, 0.1)
    assert (spec.optim.name, spec.optim.lr, spec.optim.momentum, spec.optim.weight_decay) == ("sgd", 0.1, 0.9, 1e-4)
    assert spec.optim.schedule == "cosine"
    assert (spec.estimator.name, spec.estimator.n, spec.estimator.omega) == ("fda", 9, 0.1)
    assert spec.data.normalization == "imagenet" and spec.model.scaling == "layer"


@pytest.mark.parametrize("suffix, text", [
    (".toml", 'backend = "torch"\n[estimator]\nname = "fda"\nn = 4\n[noise]\nenabled = true\n[train]\nepochs = 3\n'),
    (".yaml", "backend: torch\nestimator: {name: fda, n: 4}\nnoise: {enabled: true}\ntrain: {epochs: 3}\n"),
])
def test_files_and_overrides(tmp_path, suffix, text):
    path = tmp_path / f"spec{suffix}"
    path.write_text(text)
    spec = load_spec(path, ["n=7", "train.batch_size=64", "clip=none", "estimator=ste"])
    assert spec.estimator.name == "ste" and spec.estimator.n == 7 and spec.estimator.clip is None
    assert spec.noise.enabled and spec.train.epochs == 3 and spec.train.batch_size == 64


@pytest.mark.parametrize("override, field", [
    ("n=-1", "estimator.n"), ("estimator=sign", "estimator.name"), ("lr=-0.1", "optim.lr"),
    ("precision=fp8", "precision"), ("train.bogus=1", "train.bogus"), ("n_end=3", "estimator"),
    ("epochs=0", "train.epochs"), ("device=tpu", "device"),
])
def test_invalid_values_are_refused_naming_the_field(override, field):
    with pytest.raises(UserError) as err:
        load_spec(None, [override])
    message = str(err.value)
    assert f"'{field}" in message and "\n" not in message


def test_unknown_key_lists_the_allowed_ones():
    with pytest.raises(UserError, match="allowed here: epochs, batch_size"):
        load_spec(None, ["train.lr=1"])


def test_bad_override_syntax_and_files(tmp_path):
    with pytest.raises(UserError, match="expected key=value"):
        load_spec(None, ["epochs"])
    with pytest.raises(UserError, match="not found"):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_spec(bad)


def test_precision_the_backend_cannot_run_is_refused_before_work():
    import backends

    pytest.importorskip("mindspore")
    with pytest.raises(Unsupported, match="bf16"):
        backends.check_runnable(build_spec({"backend": "mindspore", "device": "cpu", "precision": "bf16"}))
    backends.check_runnable(build_spec({"backend": "torch", "device": "cpu", "precision": "fp16"}))  # slow, not refused


def test_schedules():
    spec = build_spec({"train.epochs": 10, "estimator.n": 9, "estimator.n_end": 18, "noise.enabled": True})
    sched = Schedules(spec, steps_per_epoch=5)
    assert [sched.n(e) for e in (0, 9)] == [9, 18] and sched.n(5) in (13, 14)
    assert sched.lr(0) == pytest.approx(0.1) and sched.lr(25) == pytest.approx(0.05)
    assert sched.alpha(0) == pytest.approx(0.1) and sched.alpha(49) == pytest.approx(0.0, abs=1e-12)
    assert build_spec({}).label() != spec.label() and spec.digest() == build_spec(spec.to_dict()).digest()


def test_override_values_parse_as_their_fields_type():
    """No YAML 1.1 guessing: decimal digits are decimal, a path keeps its `#` and `: `, a folder
    named 2024 is a string, none is None only where the field allows it."""
    from bench.spec import parse_overrides

    parsed = parse_overrides(["n=010", "data.root=/data/run #2: cifar", "noise=TRUE", "lr=1e-3", "clip=none",
                              "data.subset=none", "estimator=ste"])
    assert parsed == {"estimator.n": 10, "data.root": "/data/run #2: cifar", "noise.enabled": True,
                      "optim.lr": 0.001, "estimator.clip": None, "data.subset": None, "estimator.name": "ste"}
    assert load_spec(None, ["data.root=2024"]).data.root == "2024"


def test_equal_numbers_name_the_same_cell():
    assert load_spec(None, ["alpha=-0.0"]).digest() == load_spec(None, ["alpha=0"]).digest()
    assert load_spec(None, ["alpha=-0.0"]).to_dict()["noise"]["alpha"] == 0.0


def test_yaml_spec_files_are_read_as_yaml_1_2(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("estimator: {n: 010}\ndata: {root: 1:30}\nnoise: {enabled: True}\n")
    spec = load_spec(path)
    assert spec.estimator.n == 10 and spec.data.root == "1:30" and spec.noise.enabled  # YAML 1.1: 8, 90
    path.write_text("train: {seed: 0o10}\n")
    with pytest.raises(UserError, match="spec field 'train.seed'"):
        load_spec(path)  # YAML 1.1 read this as 8
