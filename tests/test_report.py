"""The summary from a fixed set of hand-built records in the schema bench/training.py writes."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench import store
from bench.report import write_summary
from bench.spec import build_spec
from bench.store import run_record

ENV = {
    "git_commit": "abc123def", "python": "3.11.7", "os": "Linux 6.1", "machine": "x86_64",
    "cpu_model": "Test CPU 9000", "cpu_count": 2, "env": {}, "torch": "2.13.0+cpu", "cuda": "none",
    "device_name": "Test CPU 9000", "device": "cpu",
    "data": {"path": "/data/cifar10-jpeg.tar.gz", "format": "image-folder-tar", "checksum": "c0ffee" * 4,
             "lossy": True, "note": ""},
    "subset": {"train": 100, "test": 100},
}
GPU_ENV = {**ENV, "torch": None, "mindspore": "2.10.0", "cuda": "12.4", "device_name": "NVIDIA H100 80GB HBM3",
           "device": "cuda"}
QUICK = {"train": {"epochs": 3, "batch_size": 64}, "data": {"subset": 100, "test_subset": 100}}


def put(root: Path, tree: dict, top1: float | None, step_ms: float, *, study: str | None = "demo",
        status: str = "finished", reason: str = "", env: dict = ENV, init: dict | None = None) -> None:
    """One run's directory: record.json built by training's own record function, and study.json."""
    spec = build_spec({**QUICK, **tree})
    run_dir = root / "runs" / f"{study}-{spec.label()}-s{spec.train.seed}-{spec.digest()}"
    history = [] if top1 is None else [{
        "epoch": e, "train_loss": 2.1, "train_acc": 0.5, "n": 9, "lr_last": 0.1, "alpha_last": 0.0,
        "Validation-Loss": 2.0 - top1 / 100, "Top1-Acc": top1 / 100 - (2 - e) * 0.01, "Top5-Acc": 0.9,
        "step_ms": [500.0, 400.0, 300.0] + [step_ms] * 12, "warmup_steps": 3 if e == 0 else 0, "wall_s": 10.0,
    } for e in range(3)]
    record = run_record(spec, run_dir, env, history, 30.0, status, reason, None, init)
    store.atomic_write_json(run_dir / store.RECORD, record)
    if study:
        store.atomic_write_json(run_dir / store.STUDY, {"study": study, "profile": "quick", "study_title": "Demo",
                                                         "study_question": "Which estimator wins?"})


@pytest.fixture()
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path))
    ste = {"estimator": {"name": "ste"}}
    # top-1 per seed: fda-n1 resolved above STE (+10.50 ± 6.35 paired), fda-n4 and +noise not
    for seed, values in ((0, (50.0, 60.0, 51.0, 52.0)), (1, (52.0, 63.0, 52.0, 54.5))):
        train = {**QUICK["train"], "seed": seed}
        put(tmp_path, {**ste, "train": train}, values[0], 100.0)
        put(tmp_path, {"estimator": {"n": 1}, "train": train}, values[1], 120.0)
        put(tmp_path, {"estimator": {"n": 4}, "train": train}, values[2], 150.0)
        put(tmp_path, {"estimator": {"n": 4}, "noise": {"enabled": True}, "train": train}, values[3], 160.0)
    # a seed run twice (the same spec in a second study): averaged into its seed, not a third seed
    put(tmp_path, {"estimator": {"n": 1}, "train": {**QUICK["train"], "seed": 1}}, 64.0, 120.0, study="demo2")
    put(tmp_path, {"estimator": {"name": "approx_sign"}}, None, 0.0, status="failed", reason="RuntimeError: boom")
    put(tmp_path, {**ste, "backend": "mindspore"}, 50.0, 90.0, env=GPU_ENV)
    put(tmp_path, ste, 99.0, 1.0, study=None)  # a standalone `fdabnn train` run: not in any study table
    torn = tmp_path / "runs" / "demo-torn" / store.RECORD
    torn.parent.mkdir(parents=True)
    torn.write_text('{"status": "finished", "final": {"Top1')
    old = store.read_json(next((tmp_path / "runs").glob("demo-torch-ste-fp32-s0-*")) / store.RECORD)
    old["spec"]["estimator"]["retired_field"] = 1  # a record from an older version of the spec
    store.atomic_write_json(tmp_path / "runs" / "demo-old" / store.RECORD, {**old, "run_id": "demo-old"})
    return tmp_path


def rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path) as fh:
        return {row["label"]: row for row in csv.DictReader(fh)}


def test_csv_aggregates_over_seeds(results):
    paths = write_summary()
    assert paths[0] == results / "summary.md"
    table = rows(results / "demo.csv")
    assert set(table) == {"torch-ste-fp32", "torch-fda-n1-fp32", "torch-fda-n4-fp32", "torch-fda-n4+noise-fp32",
                          "torch-approx_sign-fp32", "mindspore-ste-fp32"}
    n1 = table["torch-fda-n1-fp32"]
    assert (int(n1["runs"]), int(n1["seeds"]), int(n1["repeats"])) == (3, 2, 1)  # seed 1 twice: one seed
    assert float(n1["top1_mean"]) == pytest.approx((60.0 + (63.0 + 64.0) / 2) / 2)
    assert float(n1["repeat_spread"]) == pytest.approx(1.0)
    assert float(n1["best_top1_mean"]) == float(n1["top1_mean"])  # the last epoch is the best here
    assert float(n1["step_ms_mean"]) == 120.0  # median step, warm-up steps excluded
    assert float(table["torch-fda-n4-fp32"]["step_vs_ste"]) == 1.5
    assert float(table["torch-ste-fp32"]["step_vs_ste"]) == 1.0
    # one seed: the uncertainty is the binomial standard error on 1,000 test images
    ms = table["mindspore-ste-fp32"]
    assert (ms["device"], ms["seeds"], ms["top1_ci95"]) == ("cuda", "1", "")  # one seed: no interval
    assert ms["step_vs_ste"] == "1"  # its own clipped STE: same backend, device and precision
    assert table["torch-approx_sign-fp32"]["status"] == "1 failed" and table["torch-approx_sign-fp32"]["runs"] == "0"


def test_summary_header_says_where_it_was_measured(results):
    text = (write_summary()[0]).read_text()
    assert "from 12 run records (11 in studies)" in text.split("## Which estimator")[0]
    assert "Left out: 1 record(s) whose spec this version no longer accepts: demo-old" in text
    where = text[text.index("## Where these numbers were measured"):text.index("## Studies in full")]
    for expected in ("Test CPU 9000 (2 cores)", "NVIDIA H100 80GB HBM3", "torch 2.13.0+cpu", "mindspore 2.10.0",
                     "CUDA 12.4", "Linux 6.1", "fp32", "profiles: quick", "c0ffee" * 4, "lossy JPEG", "abc123def"):
        assert expected in where, expected


def test_the_first_screen_is_the_decision(results):
    text = (write_summary()[0]).read_text()
    answer = text[text.index("## Which estimator, and what does it cost?"):text.index("## Where these numbers")]
    cpu, cuda = "### Demo (`demo`): ResNet-20, profile quick, cpu, fp32", "### Demo (`demo`): ResNet-20, profile quick, cuda"
    assert answer.index(cpu) < answer.index(cuda)
    decision = answer[answer.index(cpu):answer.index(cuda)]
    assert "| variant | torch top-1 % | torch Δ vs clipped STE | torch step × STE | published top-1 % |" in decision
    assert ("| ste | 51.00 ± 1.41 (n=2) | reference | - | 84.44 (Xu et al. 2021 (FDA-BNN, NeurIPS; arXiv "
            "2103.00841), Table 1: DoReFa / STE; 400 epochs, all training images) |") in decision
    assert "| fda-n4 | 51.50 ± 0.71 (n=2) | +0.50 ± 6.35 pp (not resolved) | - | - |" in decision  # none published
    assert "| fda-n1 | 61.75 ± 2.47 (n=2) | +10.75 ± 9.53 pp (resolved) |" in decision
    assert "| fda-n4 | 51.50 ± 0.71 (n=2) | +0.50 ± 6.35 pp (not resolved) |" in decision
    assert "| approx_sign | 1 failed |" in decision
    assert "resolved above clipped STE: fda-n1 (+10.75 ± 9.53 pp)" in decision
    assert "not resolved: fda-n4 (+0.50 ± 6.35 pp), fda-n4+noise (+2.25 ± 3.18 pp)" in decision
    assert "Pick for torch at this budget: fda-n1" in decision
    assert "its accuracies cannot be set against the paper's" in decision
    assert "no benchmark of this device yet" in decision  # no bench records: no step cost invented
    one_seed = answer[answer.index(cuda):answer.index("### Demo (`demo2`)")]
    assert "one seed per cell, so nothing is ranked" in one_seed
    repeats = answer[answer.index("## Run-to-run repeatability"):]
    # fda-n1 seed 1 recorded twice (1.00 apart), and the standalone STE run beside its study twin
    assert "| torch | ? | 2 | 0 | 49.00 | 25.00 |" in repeats
    assert "torch: no clipped STE in this table" in answer[answer.index("### Demo (`demo2`)"):]


def test_full_tables_reading_and_references(results):
    text = (write_summary()[0]).read_text()
    study = text[text.index("### Study demo: Demo"):text.index("## Stand-alone runs")]
    assert "Which estimator wins?" in study
    assert "| torch-fda-n1-fp32 | cpu | quick | 2 | 61.75 ± 2.47 | 61.75 ± 2.47 | 90.00 ± 0.00 |" in study
    assert "3 finished (also in demo2)" in study
    assert "| torch-fda-n4-fp32 | cpu | quick | 2 | 51.50 ± 0.71 |" in study and "| 150 | 1.50 |" in study
    assert "| torch-approx_sign-fp32 | cpu | quick | 0 | - |" in study and "1 failed" in study
    assert "torch-fda-n4+noise-fp32 vs torch-fda-n4-fp32: +1.75 ± 9.53 pp (not resolved, paired over 2)" in study
    assert "the best is n = 1 and the worst n = 4: +10.25" in study
    for reference in ("84.44", "85.83", "86.20", "86.61", "0.27 s/step"):
        assert reference not in study  # published numbers: only in the decision's paper column and References
        assert reference in text[text.index("## References"):]
    assert "99.00" not in study  # the standalone run stays out of the study tables, in a section of its own
    standalone = text[text.index("## Stand-alone runs"):text.index("## References")]
    assert "| torch-ste-fp32 | 0 | cpu |" in standalone and "| 99.00 |" in standalone
    assert "## Step time" not in text and "[benchmarks.md](benchmarks.md)" in text


def test_diverged_runs_are_a_status_listed_apart(results):
    put(results, {"estimator": {"n": 32}}, 10.0, 100.0)
    put(results, {"estimator": {"name": "swish_sign"}}, 10.0, 100.0)
    for pattern in ("demo-torch-fda-n32-*", "demo-torch-swish_sign-*"):
        run = next((results / "runs").glob(pattern))
        record = store.read_record(run)
        record["history"][1]["train_loss"] = 7123.0  # written before the rule: status finished
        store.atomic_write_json(run / store.RECORD, record)
    text = write_summary()[0].read_text()
    diverged = text[text.index("## Diverged runs"):text.index("## Run-to-run")]
    row = "| demo | quick | torch | fda-n32 | 0 | diverged | training loss 7.12e+03 in epoch 2 (limit 23) |"
    assert row in diverged
    assert "from n = 7" in diverged and "from n = 15" in diverged
    assert "the clipped STE's is 1): swish_sign 5.00." in diverged  # beta (2 - 0) / (1 + cosh 0) at beta = 5
    assert "| fda-n32 | 1 diverged |" in text  # in the decision table, and out of every mean


def test_plots_curves_and_history(results):
    paths = write_summary()
    pngs = sorted(p.name for p in paths if p.suffix == ".png")
    assert pngs == ["demo-quick-cpu-fp32-curves.png", "demo-quick-cuda-fp32-curves.png", "demo-quick-step-vs-n.png",
                    "demo-quick-top1-vs-n.png", "demo2-quick-cpu-fp32-curves.png"]
    assert all((results / name).read_bytes()[:4] == b"\x89PNG" for name in pngs)
    text = paths[0].read_text()
    assert "![demo-quick-top1-vs-n](demo-quick-top1-vs-n.png)" in text and "![demo-quick-cpu-fp32-curves]" in text
    with open(results / "demo-history.csv") as fh:
        history = list(csv.DictReader(fh))
    assert len(history) == 3 * 9  # 9 runs of demo with a history, 3 epochs each
    first = next(r for r in history if r["variant"] == "fda-n1" and r["seed"] == "0")
    assert (first["epoch"], first["test_top1"], first["train_loss"]) == ("1", "0.58", "2.1")
    runs = {Path(p).name for p in (results / "runs").glob("*/tensorboard/events.out.tfevents.fdabnn")}
    assert runs  # curves for TensorBoard written for the records that had none


def _bench_record(case: str, median_ms: float, backend: str = "torch") -> dict:
    return {"suite": "cpu", "device": "cpu", "case": case, "status": "ok", "reason": "",
            "group": {"backend": backend, "precision": "fp32", "batch": 128, "compile": False},
            "timing": {"median_ms": median_ms, "p10_ms": median_ms * 0.9, "p90_ms": median_ms * 1.1,
                       "images_per_s": 128 / median_ms * 1e3, "first_step_ms": 3 * median_ms},
            "data_step_ms": 5.0, "data_share": 5.0 / median_ms, "eval": {"images_per_s": 900.0},
            "environment": {"device": "cpu", "cpu_model": "Test CPU", "cpu_count": 2, "torch": "2.13.0",
                            "python": "3.11", "os": "Linux", "git_commit": "abc"},
            "measured_at": "2026-11-26T15:00:00+0000"}


def test_benchmark_records_get_their_section(results):
    group_dir = results / "bench" / "cpu" / "torch-fp32-b128-eager"
    group_dir.mkdir(parents=True)
    for case, ms in (("ste", 400.0), ("fda-n1", 420.0), ("fda-n9", 440.0), ("fda-n18", 430.0),
                     ("fda-n64", 436.0), ("fda-n9-sum", 800.0)):
        (group_dir / f"{case}.json").write_text(json.dumps(_bench_record(case, ms)))
    ms_dir = results / "bench" / "cpu" / "mindspore-fp32-b128-eager"
    ms_dir.mkdir(parents=True)
    (ms_dir / "ste.json").write_text(json.dumps(_bench_record("ste", 1000.0, "mindspore")))
    summary = write_summary()[0].read_text()
    # the decision table's step cost comes from the benchmark of the same device (420 / 400)
    assert "| fda-n1 | 61.75 ± 2.47 (n=2) | +10.75 ± 9.53 pp (resolved) | 1.05× |" in summary
    text = (results / "benchmarks.md").read_text()
    section = text[text.index("## Step time"):]
    assert "No GPU numbers" in section and "Test CPU" in section
    assert "| fda-n9 | ok | 440.00 |" in section and "| 1.10 |" in section  # 440 / 400 in the × STE column
    assert "fda-n9 1.10×" in section and "— met." in section  # the worst closed-form ratio is 1.10
    assert "fda-n9-sum 2.00×" in section
    assert "1000 ms vs 400 ms = 2.5× — missed" in section


def test_gpu_targets_of_the_captured_step(results):
    for mode, graph in (("graph", True), ("eager", False)):
        group_dir = results / "bench" / "gpu" / f"torch-bf16-b128-{mode}"
        group_dir.mkdir(parents=True)
        for case, ms in (("ste", 2.0), ("fda-n9", 2.1), ("fda-n9+noise", 2.4)):
            record = _bench_record(case, ms * (1 if graph else 6))
            record.update(suite="gpu", device="cuda", eval={"images_per_s": 80000.0})
            record["group"] = {"backend": "torch", "precision": "bf16", "batch": 128, "compile": False,
                               **({"cuda_graph": True} if graph else {})}
            record["data_share"] = 0.02
            record["environment"].update(device="cuda", device_name="NVIDIA H100")
            (group_dir / f"{case}.json").write_text(json.dumps(record))
    write_summary()
    text = (results / "benchmarks.md").read_text()
    assert "#### torch bf16 batch 128 CUDA graph" in text
    assert "FDA n=9 + noise, bf16, batch 128 (target ≤ 3 ms): 2.40 ms — met; the eager step of the same run: " \
           "14.40 ms (6.0× slower)" in text
    assert "fda-n9 vs STE, captured, bf16 (target ≤ 1.10×): 1.05× — met." in text
    assert "fda-n9+noise vs STE, captured, bf16 (target ≤ 1.15×): 1.20× — missed." in text
    assert "Evaluation (target ≥ 50,000 img/s): 80,000 img/s — met." in text
    assert "Input pipeline share of a step on the GPU, largest case (target ≤ 5%): 2.00% — met." in text
    # 400 x 390 x 2.4 ms + 400 x 10,000 / 80,000 s = 374.4 + 50 s
    assert "Projected paper-profile run (400 epochs × 390 steps × 2.40 ms + 400 evaluations of 10,000 images): " \
           "7 min, beside the model zoo's 350 min" in text


def test_micro_benchmarks_get_their_section(results):
    (results / "micro").mkdir(parents=True)
    def bench(variant: str, median: float, group: str = "torch-cpu-act128x16x32x32") -> dict:
        return {"group": group, "name": variant, "extra_info": {"variant": variant},
                "stats": {"median": median, "min": median * 0.9, "iqr": median * 0.1, "rounds": 7}}
    run = {"datetime": "2026-11-26T15:00:00", "machine_info": {"fdabnn": {"cpu_model": "Test CPU", "cpu_count": 2,
                                                                         "torch": "2.13.0", "git_commit": "abc"}},
           "benchmarks": [bench("ste", 0.004), bench("ste-unfused", 0.002), bench("fda-n9-unfused", 0.005),
                          bench("fda-n9", 0.006),
                          bench("torch", 0.030, "layers-cpu-conv3x3-128x16x32x32"),
                          bench("mindspore", 0.090, "layers-cpu-conv3x3-128x16x32x32")]}
    (results / "micro" / "estimators-cpu.json").write_text(json.dumps(run))
    write_summary()
    text = (results / "benchmarks.md").read_text()
    section = text[text.index("## Estimator micro-benchmarks"):]
    assert "#### torch-cpu-act128x16x32x32" in section
    assert "| fda-n9-unfused | 5000 | 4500 | 500 | 7 | 2.50 | 2.50 |" in section  # op by op against op by op
    assert "| fda-n9 | 6000 | 5400 | 600 | 7 | 1.50 | 3.00 |" in section  # fused against fused, and against op by op
    layers = section[section.index("#### layers-cpu-conv3x3-128x16x32x32"):]
    assert "× PyTorch" in layers and "| mindspore | 90000 | 81000 | 9000 | 7 | 3.00 |" in layers


def test_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path))
    text = write_summary()[0].read_text()
    assert "No run has been recorded yet" in text and "## References" in text


def test_records_that_fail_a_check_are_named_and_left_out(results):
    """A record the schema accepts in shape but whose numbers or history cannot be used, and a
    folder where a file should be, are named in the header with the reason, like a torn record."""
    good = store.read_json(next((results / "runs").glob("demo-torch-ste-fp32-s0-*")) / store.RECORD)
    bad = {"nan-top1": {"final": {**good["final"], "Top1-Acc": float("nan")}},
           "string-top1": {"final": {**good["final"], "Top1-Acc": "0.52"}},
           "empty-epochs": {"history": [{}] * len(good["history"])}}
    for name, change in bad.items():
        store.atomic_write_json(results / "runs" / f"demo-{name}" / store.RECORD, {**good, **change, "run_id": name})
    (results / "runs" / "demo-folder" / store.RECORD).mkdir(parents=True)
    (results / "runs" / "demo-folder-study" / store.STUDY).mkdir(parents=True)
    store.atomic_write_json(results / "runs" / "demo-folder-study" / store.RECORD, {**good, "run_id": "x"})
    text = write_summary()[0].read_text()
    header = text[:text.index("\n## ")]
    for line in ("demo-nan-top1/record.json: finished with a non-finite metric",
                 "demo-string-top1/record.json: final Top1-Acc is '0.52', not a number",
                 "demo-empty-epochs/record.json: history entry 1: no epoch number",
                 "demo-folder/record.json: a folder, not a file",
                 "demo-folder-study/study.json: a folder, not a file"):
        assert line in header, header
    assert "Not counted: 6 run file(s)" in header  # these five and the torn record
    assert rows(results / "demo.csv")["torch-ste-fp32"]["runs"] == "2"  # the good seeds only


def test_benchmark_and_session_files_that_fail_a_check_do_not_stop_the_summary(results):
    (results / "bench" / "cpu" / "g").mkdir(parents=True)
    (results / "bench" / "cpu" / "g" / "ste.json").write_text('{"status": "ok", "case": "ste"}')
    (results / "bench" / "cpu" / "g" / "nan.json").write_text(json.dumps({
        "status": "ok", "case": "fda-n9", "group": {"backend": "torch", "precision": "fp32", "batch": 8,
                                                     "compile": False},
        "timing": {"median_ms": float("nan"), "p10_ms": 1.0, "p90_ms": 2.0, "images_per_s": 3.0}}))
    (results / "bench" / "cpu" / "dir.json").mkdir()
    (results / "sessions").mkdir()
    (results / "sessions" / "s.json").write_text('{"wall_s": "long"}')
    text = write_summary()[0].read_text()
    header = text[:text.index("\n## ")]
    assert "Not counted: 3 benchmark file(s)" in header
    for line in ("cpu/g/ste.json: no group", "cpu/g/nan.json: measured without finite step times",
                 "cpu/dir.json: a folder, not a file"):
        assert line in header, header


def test_a_study_over_precisions_answers_against_fp32(tmp_path, monkeypatch):
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path))
    # STE: bf16 within noise of fp32 (paired deltas +0.5, -0.3, +0.1); fp16 resolvably lower
    for seed, (fp32, bf16, fp16) in enumerate(((50.0, 50.5, 45.0), (52.0, 51.7, 46.5), (51.0, 51.1, 45.2))):
        train = {**QUICK["train"], "seed": seed}
        for precision, top1 in (("fp32", fp32), ("bf16", bf16), ("fp16", fp16)):
            put(tmp_path, {"estimator": {"name": "ste"}, "precision": precision, "train": train}, top1, 100.0)
    put(tmp_path, {"estimator": {"name": "ste"}, "backend": "mindspore", "precision": "bf16"}, None, 0.0,
        status="unsupported", reason="bf16 on CPU: refused")
    group = tmp_path / "bench" / "cpu"
    for precision, ms in (("fp32", 400.0), ("bf16", 300.0)):  # fp16 not benchmarked: the study's own times
        (group / f"torch-{precision}-b128-eager").mkdir(parents=True)
        record = _bench_record("ste", ms)
        record["group"]["precision"] = precision
        (group / f"torch-{precision}-b128-eager" / "ste.json").write_text(json.dumps(record))
    summary = write_summary()[0].read_text()
    assert "(`demo`): precision against fp32, profile quick, cpu" in summary
    assert "| ste | mindspore | bf16 | 1 unsupported: bf16 on CPU: refused |" in summary
    assert "| ste | torch | bf16 | 51.10 ± 0.60 (n=3) | +0.10 ± 0.99 pp (not resolved) | 0.75× |" in summary
    assert "| ste | torch | fp16 | 45.57 ± 0.81 (n=3) | -5.43 ± 1.00 pp (resolved) | 1.00× (study) |" in summary
    assert ("torch ste: bf16 does not change top-1 resolvably (+0.10 ± 0.99 pp), at 0.75× the fp32 step; fp16 "
            "changes top-1 resolvably (-5.43 ± 1.00 pp), at 1.00× (study) the fp32 step.") in summary


def test_a_published_figure_is_the_table_the_study_reproduces_else_every_one_labelled(monkeypatch):
    """A variant with figures in two tables shows the one of the table its study reproduces; in a
    study that reproduces neither, both, each citing its own table; another paper's figure cites
    that paper and its budget; a variant nobody published has none."""
    from bench.report import references
    from bench.report.references import FDA_BUDGET, FDA_PAPER, Reference, published

    two = (Reference(FDA_PAPER, "Table 2", "FDA + noise", 86.20, FDA_BUDGET, ("fda-n9-18+noise",)),
           Reference(FDA_PAPER, "Table 4", "sin(x)", 86.20, FDA_BUDGET, ("fda-n9-18+noise",)),
           Reference("Other et al. 2023", "Table 5", "Ours", 87.0, "1,000 epochs", ("fda-n9-18+noise",)))
    monkeypatch.setattr(references, "REFERENCES", two)
    assert [r.table for r in published("fda-n9-18+noise", "noise-shortcut")] == ["Table 4"]
    assert [r.table for r in published("fda-n9-18+noise", "fourier-terms")] == ["Table 2"]
    assert [r.table for r in published("fda-n9-18+noise", "precision")] == ["Table 2", "Table 4", "Table 5"]
    other = published("fda-n9-18+noise", "precision")[2]
    assert other.cite() == "87.00 (Other et al. 2023, Table 5: Ours; 1,000 epochs)"
    assert published("dsq", "estimators") == []


def test_step_cost_is_read_where_the_variant_was_measured_beside_ste():
    """The study's precision first, the captured step before the eager one, the largest batch first;
    a ratio from another precision says so; none where no group measured the variant beside STE."""
    import pandas as pd

    from bench.report.step_cost import step_cost

    def row(precision, mode, batch, case, ms):
        return {"device": "cuda", "group.backend": "torch", "status": "ok", "mode": mode, "group.precision": precision,
                "group.batch": batch, "case": case, "timing.median_ms": ms, "environment.git_commit": None,
                "group_id": f"torch-{precision}-b{batch}-{mode}"}  # one process per key here

    bench = pd.DataFrame([row("bf16", "graph", 512, "ste", 4.0), row("bf16", "graph", 512, "fda-n9", 4.4),
                          row("bf16", "graph", 128, "ste", 2.0), row("bf16", "graph", 128, "approx_sign", 2.2),
                          row("bf16", "eager", 128, "ste", 5.0), row("bf16", "eager", 128, "fda-n9", 9.0),
                          row("fp32", "graph", 128, "ste", 3.0), row("fp32", "graph", 128, "approx_sign+noise", 3.6)])
    cost = lambda tree: step_cost(bench, "cuda", "torch", "bf16", tree)  # noqa: E731
    assert cost({"estimator": {"name": "fda", "n": 9}}).describe() == "1.10×"  # the batch-512 captured step
    assert cost({"estimator": {"name": "fda", "n": 9}}).batch == 512
    assert cost({"estimator": {"name": "approx_sign"}}).batch == 128
    assert cost({"estimator": {"name": "approx_sign"}, "noise": {"enabled": True}}).describe() == "1.20× (fp32)"
    assert cost({"estimator": {"name": "ste", "clip": None}}) is None


def test_a_cluster_rehearsal_says_whether_ray_ended_every_cell_as_local(tmp_path):
    """`make cluster-rehearsal` compares each cell's status and final metrics on Ray with the local
    executor's; the summary says which cells differ rather than only whether all finished."""
    from bench.executors.rehearsal import _outcomes
    from bench.report.sessions import cluster_section

    def rec(run_id, status, top1):
        return {"run_id": run_id, "status": status, "final": {"Top1-Acc": top1}, "environment": {"threads": "1"}}

    local = [rec("a", "finished", 0.1), rec("b", "diverged", None), rec("c", "finished", 0.3)]
    assert _outcomes(local, list(local))["ray_equals_local"]
    outcomes = _outcomes(local, [rec("a", "finished", 0.1), rec("b", "diverged", None), rec("c", "finished", 0.2)])
    assert outcomes == {"local_statuses": {"finished": 2, "diverged": 1}, "ray_statuses": {"finished": 2, "diverged": 1},
                        "local_threads": ["1"], "ray_threads": ["1"], "ray_equals_local": False,
                        "cells_that_differ": ["c"]}
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "r.json").write_text(json.dumps({
        "study": "fourier-terms", "profile": "smoke", "cells": 3, "local": {"wall_s": 10.0}, "ray": {"wall_s": 12.0},
        "ray_over_local": 1.2, "outcomes": outcomes, "node_death": {"lost_declared_s": 0.4},
        "environment": {"cpu_model": "cpu", "cpu_count": 2, "git_commit": "abc"}}))
    section = cluster_section(tmp_path)
    assert "| 1 differ (1 diverged, 2 finished on Ray) |" in section
    assert "| 1.20 |" in section and "| 0.4 s |" in section


def test_the_protocol_sentence_says_whether_the_start_changes_the_ranking():
    """BiBench's start against the paper's (issue 22): a pair resolved in opposite directions under the
    two starts is a reversal, one resolved under one start only is said so, and FP twins are not ranked."""
    import pandas as pd

    from bench.report.decision import Entry
    from bench.report.protocol import ranking_by_start

    def entries(scratch: dict[str, list[float]], from_fp: dict[str, list[float]]) -> dict:
        out = {}
        for init, cells in ((None, scratch), ("pretrain-fp:cpu", from_fp)):
            for name, top1 in cells.items():
                variant = name + ("-from-fp" if init else "")
                cell = pd.Series({"init": init, "variant": variant, "binarize": name != "fp", "seeds": len(top1),
                                  "seed_top1": dict(enumerate(top1)), "top1_mean": sum(top1) / len(top1)})
                out[variant] = {"torch": Entry(cell, None, None)}
        return out

    reversed_ = ranking_by_start(entries({"ste": [20, 21, 22], "fda": [25, 26, 27.5], "fp": [40, 41, 42]},
                                         {"ste": [35, 36, 37], "fda": [30, 31, 31.5]}), ["torch"])
    assert reversed_[0] == "torch, from scratch, by mean top-1: fda (26.17) > ste (21.00)."
    assert reversed_[1] == "torch, from pretrain-fp:cpu, by mean top-1: ste (36.00) > fda (30.83)."
    assert "change the ranking? Yes, it reverses fda > ste from scratch but < from pretrain-fp:cpu." in reversed_[2]
    one_side = ranking_by_start(entries({"ste": [20, 21, 22], "fda": [25, 26, 27.5]},
                                        {"ste": [35, 36, 37], "fda": [30, 40, 33]}), ["torch"])[2]
    assert "Partly" in one_side and "fda > ste (from scratch only)" in one_side
    assert ranking_by_start(entries({"ste": [20, 21]}, {}), ["torch"]) == []  # one start: nothing to say
