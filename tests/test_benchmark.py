"""The benchmark harness on the real torch backend and real CIFAR-10, at toy sizes."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bench import benchmark
from bench.errors import Unsupported, UserError
from bench.suite import load_suite

TINY_SUITE = """
title = "tiny"
device = "cpu"
backends = ["torch"]
warmup = 1
steps = 2
rounds = 2
eval_images = 20
budget_s = 600
[base]
"data.subset" = 4
[[groups]]
backend = "torch"
precision = "fp32"
batch = 8
compile = false
estimators = ["ste", "fda-n9", "fda-n9+noise"]
"""


def test_unknown_suite_and_label_are_refused(tmp_path):
    with pytest.raises(UserError, match="no .*choose one of cpu, gpu"):
        load_suite("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_SUITE.replace('"fda-n9"]', '"fda-n99"]').replace('"fda-n9", ', '"fda-n99", '))
    with pytest.raises(UserError, match="unknown estimator label"):
        load_suite(str(bad))


def test_gpu_suite_without_cuda_names_the_cpu_target():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(Unsupported, match="make bench-cpu"):
        benchmark.require_device(load_suite("gpu"))


def test_tiny_suite_measures_every_case_and_resumes(cifar10, tmp_path, monkeypatch):
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path / "results"))
    suite_file = tmp_path / "tiny.toml"
    suite_file.write_text(TINY_SUITE)
    assert benchmark.run_suite(str(suite_file)) == 0
    directory = tmp_path / "results" / "bench" / "tiny"
    records = {r["case"]: r for r in benchmark.load_records(directory)}
    assert set(records) == {"ste", "fda-n9", "fda-n9+noise"}
    for record in records.values():
        assert record["status"] == "ok", record
        assert len(record["step_ms"]) == 2 * 2  # rounds x steps, warm-up kept apart
        assert len(record["warmup_ms"]) == 2
        assert record["timing"]["median_ms"] > 0
        assert record["timing"]["p10_ms"] <= record["timing"]["median_ms"] <= record["timing"]["p90_ms"]
        assert record["eval"]["images"] == 20 and record["eval"]["images_per_s"] > 0
        assert record["environment"]["torch"]
        assert record["environment"]["onednn_isa"] == "the CPU's own (no cap)"  # MindSpore's cap is its own
        assert record["spec"]["train"]["batch_size"] == 8
    assert records["fda-n9+noise"]["spec"]["noise"]["enabled"] is True
    before = {p: p.stat().st_mtime_ns for p in directory.glob("*/*.json")}
    assert benchmark.run_suite(str(suite_file)) == 0  # measured already: nothing rewritten
    assert before == {p: p.stat().st_mtime_ns for p in directory.glob("*/*.json")}
    json.dumps(records)  # records are plain JSON


def test_input_pipeline_is_timed_on_its_own(cifar10, tmp_path, monkeypatch):
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path / "results"))
    suite_file = tmp_path / "tiny.toml"
    suite_file.write_text(TINY_SUITE.replace('["ste", "fda-n9", "fda-n9+noise"]', '["ste"]'))
    assert benchmark.run_suite(str(suite_file)) == 0
    (record,) = benchmark.load_records(tmp_path / "results" / "bench" / "tiny")
    assert 0 < record["data_step_ms"] < record["timing"]["median_ms"]
    assert 0 < record["data_share"] < 1


def test_a_diverging_case_is_recorded_and_the_others_go_on(cifar10, tmp_path):
    from rich.console import Console

    suite_file = tmp_path / "tiny.toml"
    suite_file.write_text(TINY_SUITE)
    suite = load_suite(str(suite_file))
    suite.variants["blowup"] = {"estimator.name": "fda", "noise.enabled": True, "noise.alpha": 1e30}
    group = replace(suite.groups[0], estimators=("ste", "blowup"), rounds=3)  # a group's own rounds
    benchmark.run_group(suite, group, tmp_path, Console(stderr=True))
    records = {r["case"]: r for r in benchmark.load_records(tmp_path)}
    assert records["ste"]["status"] == "ok" and len(records["ste"]["step_ms"]) == 3 * 2
    assert records["blowup"]["status"] == "diverged"
    assert "non-finite training loss" in records["blowup"]["reason"] and "timing" not in records["blowup"]


def test_a_group_is_not_started_when_its_estimate_exceeds_the_budget_left(tmp_path, monkeypatch):
    """No group is started only to be cut off: the first fits ([estimate] 1 s + 1 s a case), the
    second (an estimate of 10,000 s) is recorded as not started, with both numbers, and no process ran."""
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path / "results"))
    suite_file = tmp_path / "tiny.toml"
    slow = TINY_SUITE.split("[[groups]]")[1].replace("precision = \"fp32\"", "precision = \"bf16\"")
    suite_file.write_text(TINY_SUITE.replace('["ste", "fda-n9", "fda-n9+noise"]', '["ste"]')
                          + "[[groups]]" + slow.replace("compile = false", "compile = true")
                          + "[estimate]\nstartup_s = 1\ncase_s = 1\ncompiled_case_s = 10000\n")
    assert load_suite(str(suite_file)).groups[1].estimate_s(load_suite(str(suite_file)).estimate) == 30001
    launched = []
    monkeypatch.setattr(benchmark, "run_child", lambda module, args, env: launched.append(args[3]) or
                        type("Exit", (), {"ok": True})())
    assert benchmark.run_suite(str(suite_file), budget_s=100) == 0
    assert launched == ["torch-fp32-b8-eager"]
    skipped = [r for r in benchmark.load_records(tmp_path / "results" / "bench" / "tiny") if r["group"]["compile"]]
    assert sorted(r["case"] for r in skipped) == ["fda-n9", "fda-n9+noise", "ste"]
    for record in skipped:
        assert record["status"] == "skipped"
        assert "expected to take ~30001 s" in record["reason"] and "of the 100 s budget" in record["reason"]


def test_cases_beside_a_group_share_its_rounds_and_are_recorded_as_their_own_group(cifar10, tmp_path):
    """A captured group with the eager step and bf16 beside times every case in the same rounds and
    writes each where its own group's records go (on a CPU the "captured" steps run eagerly, which
    the records' specs say)."""
    from rich.console import Console

    suite_file = tmp_path / "tiny.toml"
    suite_file.write_text(TINY_SUITE.replace("compile = false", "compile = false\ncuda_graph = true")
                          .replace('["ste", "fda-n9", "fda-n9+noise"]', '["ste"]')
                          + '[[groups.beside]]\ncuda_graph = false\n[[groups.beside]]\nprecision = "bf16"\n')
    suite = load_suite(str(suite_file))
    assert suite.groups[0].id == "torch-fp32-b8-graph" and len(suite.groups[0].cases()) == 3
    benchmark.run_group(suite, suite.groups[0], tmp_path, Console(stderr=True))
    records = {(r["group"]["precision"], r["group"].get("cuda_graph", False), r["case"]): r
               for r in benchmark.load_records(tmp_path)}
    assert set(records) == {("fp32", True, "ste"), ("fp32", False, "ste"), ("bf16", True, "ste")}
    assert sorted(p.parent.name for p in tmp_path.glob("*/ste.json")) == [
        "torch-bf16-b8-graph", "torch-fp32-b8-eager", "torch-fp32-b8-graph"]
    for (precision, graph, _), record in records.items():
        assert record["status"] == "ok" and len(record["step_ms"]) == 2 * 2
        assert record["spec"]["runtime"]["cuda_graph"] is graph and record["spec"]["precision"] == precision
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_SUITE + '[[groups.beside]]\nprecision = "fp32"\n')
    with pytest.raises(UserError, match="changes nothing of the group"):
        load_suite(str(bad))


def test_a_measured_record_is_never_replaced_by_an_unmeasured_one(tmp_path, monkeypatch):
    """A half-measured group whose turn comes after the budget is spent: its measured case keeps its
    record byte for byte, the unmeasured one is recorded skipped; only --fresh measures again."""
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path / "results"))
    suite_file = tmp_path / "tiny.toml"
    suite_file.write_text(TINY_SUITE)
    suite = load_suite(str(suite_file))
    directory = benchmark.out_dir(suite)
    measured = directory / suite.groups[0].id / "ste.json"
    measured.parent.mkdir(parents=True)
    measured.write_text(json.dumps({"suite": "tiny", "group": suite.groups[0].key(), "case": "ste", "status": "ok",
                                    "timing": {"median_ms": 12.5, "p10_ms": 12.0, "p90_ms": 13.0,
                                               "images_per_s": 640.0}}))
    before = measured.read_bytes()
    assert benchmark.run_suite(str(suite_file), budget_s=1e-9) == 0
    assert measured.read_bytes() == before
    statuses = {r["case"]: r["status"] for r in benchmark.load_records(directory)}
    assert statuses == {"ste": "ok", "fda-n9": "skipped", "fda-n9+noise": "skipped"}


def test_a_case_that_times_nothing_is_refused_when_the_suite_loads(tmp_path):
    bad = tmp_path / "zero.toml"
    bad.write_text(TINY_SUITE.replace("steps = 2", "steps = 0"))
    with pytest.raises(UserError, match="key 'steps': expected a whole number >= 1, got 0"):
        load_suite(str(bad))


def test_every_estimator_is_timed_fused_and_op_by_op_with_and_without_the_noise_module():
    """The suites name sets of bench/suites/estimators.toml, derived from bench.estimators.ESTIMATORS:
    a new estimator is timed without an edit to a suite. The GPU check leaves the bench about 220 s,
    which the gpu suite's first group must fit; make bench-gpu's budget holds its first two."""
    from bench.estimators import NAMES, variant_label
    from bench.spec import build_spec

    cpu, gpu = load_suite("cpu"), load_suite("gpu")
    for label in (variant_label(build_spec({"estimator.name": name})) for name in NAMES):
        for suffix in ("", "+noise", "-unfused", "+noise-unfused"):
            assert label + suffix in cpu.group("torch-fp32-b128-eager").estimators
        assert label in cpu.group("mindspore-fp32-b128-eager").estimators
        assert label + "+noise" in cpu.group("mindspore-fp32-b128-eager-part2").estimators
        assert label in gpu.groups[0].estimators
        for suffix in ("", "+noise", "-unfused"):
            assert label + suffix in gpu.groups[1].estimators
    assert gpu.groups[0].estimate_s(gpu.estimate) <= 200
    assert sum(group.estimate_s(gpu.estimate) for group in gpu.groups[:2]) <= gpu.budget_s


def test_vgg_small_groups_come_last_and_existing_group_ids_stay():
    """Records are keyed by group id: adding the networks must not rename a group, and a budget cuts
    VGG-small (~15x ResNet-20's step) first."""
    from bench.suite import case_reference, group_id

    cpu, gpu = load_suite("cpu"), load_suite("gpu")
    assert [g.id for g in cpu.groups] == ["torch-fp32-b128-eager", "mindspore-fp32-b128-eager",
                                          "mindspore-fp32-b128-eager-part2",
                                          "torch-fp32-b128-compiled", "mindspore-bf16-b128-eager",
                                          "torch-fp32-b128-eager-vgg_small", "mindspore-fp32-b128-eager-vgg_small",
                                          "mindspore-fp32-b128-eager-part3"]
    assert [g.id for g in gpu.groups][-2:] == ["torch-bf16-b128-graph-vgg_small", "mindspore-fp32-b128-eager-vgg_small"]
    assert len({g.id for g in gpu.groups}) == len(gpu.groups)
    torch_vgg = cpu.group("torch-fp32-b128-eager-vgg_small")
    labels = [label for label, _ in torch_vgg.cases()]
    assert {"vgg_small-ste", "vgg_small-fda-n9", "vgg_small-fp", "ste"} <= set(labels) and len(labels) <= 5
    spec = cpu.case_spec(torch_vgg, "vgg_small-fp")
    assert (spec.model.name, spec.model.binarize) == ("vgg_small", False)
    assert torch_vgg.key()["network"] == "vgg_small" and "network" not in cpu.groups[0].key()
    assert group_id({**cpu.groups[0].key(), "network": "resnet20"}) == "torch-fp32-b128-eager"
    # the binarized ResNet-20's STE and its FP twin in the same rounds: what the binarization costs
    first = [label for label, _ in cpu.groups[0].cases()]
    assert "fp" in first and "ste" in first and not any(label.startswith("vgg_small") for label in first)
    assert (case_reference("vgg_small-fda-n9"), case_reference("fp"), case_reference("ste")) == (
        "vgg_small-ste", "ste", "ste")


def test_a_ratio_to_ste_is_taken_within_one_process(tmp_path):
    """A group split into parts (and VGG-small's group, which times ResNet-20's STE too) holds one STE
    per process: a variant's ratio is against the STE of its own part, never a median of STEs of
    several runs; two groups of one id are refused."""
    from bench.report.benchmark import _unmeasured_groups, benchmark_frame
    from bench.report.step_cost import precision_cost, step_cost

    def put(group: dict, case: str, ms: float) -> None:
        folder = tmp_path / "bench" / "cpu" / case.replace("+", "_") / str(len(list(tmp_path.rglob("*.json"))))
        folder.mkdir(parents=True)
        (folder / "r.json").write_text(json.dumps({
            "suite": "cpu", "device": "cpu", "case": case, "status": "ok", "measured_at": "2026-12-03T14:00",
            "group": {"backend": "mindspore", "precision": "fp32", "batch": 128, "compile": False, **group},
            "timing": {"median_ms": ms, "p10_ms": ms, "p90_ms": ms, "images_per_s": 128e3 / ms},
            "environment": {"git_commit": None}}))

    put({}, "ste", 1000.0)
    put({}, "dsq", 1100.0)
    put({"part": 2}, "ste", 2000.0)  # the machine was slower while part 2 ran
    put({"part": 2}, "dsq+noise", 2300.0)
    put({"network": "vgg_small"}, "ste", 4000.0)  # ResNet-20's STE, a guest of VGG-small's group
    put({"precision": "bf16"}, "ste", 700.0)  # beside the first part's fp32 cases
    frame = benchmark_frame(tmp_path)
    bf16 = precision_cost(frame, "cpu", "mindspore", "bf16", {"estimator.name": "ste"})
    assert bf16.ratio == pytest.approx(0.70)  # against the first part's STE alone
    unmeasured = _unmeasured_groups("cpu", frame)
    assert "mindspore-fp32-b128-eager-part2" not in unmeasured and "mindspore-fp32-b128-eager-part3" in unmeasured
    assert step_cost(frame, "cpu", "mindspore", "fp32", {"estimator.name": "dsq"}).ratio == pytest.approx(1.10)
    noise = {"estimator.name": "dsq", "noise.enabled": True}
    assert step_cost(frame, "cpu", "mindspore", "fp32", noise).ratio == pytest.approx(1.15)

    suite = tmp_path / "twice.toml"
    group = '[[groups]]\nbackend = "mindspore"\nprecision = "fp32"\nbatch = 128\ncompile = false\nestimators = ["ste"]\n'
    suite.write_text('title = "t"\n' + group + group)
    with pytest.raises(UserError, match="both mindspore-fp32-b128-eager; tell them apart with part = 2, 3"):
        load_suite(str(suite))
