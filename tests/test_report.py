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
        status: str = "finished", reason: str = "", env: dict = ENV) -> None:
    """One run's directory: record.json built by training's own record function, and study.json."""
    spec = build_spec({**QUICK, **tree})
    run_dir = root / "runs" / f"{study}-{spec.label()}-s{spec.train.seed}-{spec.digest()}"
    history = [] if top1 is None else [{
        "epoch": e, "Validation-Loss": 2.0 - top1 / 100, "Top1-Acc": top1 / 100, "Top5-Acc": 0.9,
        "step_ms": [500.0, 400.0, 300.0] + [step_ms] * 12, "warmup_steps": 3 if e == 0 else 0, "wall_s": 10.0,
    } for e in range(3)]
    record = run_record(spec, run_dir, env, history, 30.0, status, reason, None)
    store.atomic_write_json(run_dir / store.RECORD, record)
    if study:
        store.atomic_write_json(run_dir / store.STUDY, {"study": study, "profile": "quick", "study_title": "Demo",
                                                         "study_question": "Which estimator wins?"})


@pytest.fixture()
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path))
    ste = {"estimator": {"name": "ste"}}
    for seed, top1 in ((0, 50.0), (1, 52.0)):
        put(tmp_path, {**ste, "train": {**QUICK["train"], "seed": seed}}, top1, 100.0)
        put(tmp_path, {"estimator": {"n": 1}, "train": {**QUICK["train"], "seed": seed}}, top1 + 10, 120.0)
        put(tmp_path, {"estimator": {"n": 4}, "train": {**QUICK["train"], "seed": seed}}, top1 + 1, 150.0)
        put(tmp_path, {"estimator": {"n": 4}, "noise": {"enabled": True},
                       "train": {**QUICK["train"], "seed": seed}}, top1 + 2, 160.0)
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
    assert (int(n1["runs"]), float(n1["top1_mean"])) == (2, 61.0)
    assert float(n1["top1_std"]) == pytest.approx(2 ** 0.5, abs=1e-4)
    assert float(n1["step_ms_mean"]) == 120.0  # median step, warm-up steps excluded
    assert float(table["torch-fda-n4-fp32"]["step_vs_ste"]) == 1.5
    assert float(table["torch-ste-fp32"]["step_vs_ste"]) == 1.0
    # one seed: the uncertainty is the binomial standard error on 1,000 test images
    ms = table["mindspore-ste-fp32"]
    assert (ms["device"], ms["unc_kind"]) == ("cuda", "binomial SE")
    assert float(ms["top1_unc"]) == pytest.approx(100 * (0.25 / 1000) ** 0.5)
    assert ms["step_vs_ste"] == "1"  # its own clipped STE: same backend, device and precision
    assert table["torch-approx_sign-fp32"]["status"] == "1 failed" and table["torch-approx_sign-fp32"]["runs"] == "0"


def test_summary_header_says_where_it_was_measured(results):
    text = (write_summary()[0]).read_text()
    header = text.split("## Study")[0]
    for expected in ("Test CPU 9000 (2 cores)", "NVIDIA H100 80GB HBM3", "torch 2.13.0+cpu", "mindspore 2.10.0",
                     "CUDA 12.4", "Linux 6.1", "fp32", "profiles: quick", "c0ffee" * 4, "lossy JPEG",
                     "abc123def", "from 11 run records (10 in studies)",
                     "Left out: 1 record(s) whose spec this version no longer accepts: demo-old"):
        assert expected in header, expected


def test_summary_tables_reading_and_references(results):
    text = (write_summary()[0]).read_text()
    study = text[text.index("## Study demo: Demo"):text.index("## Stand-alone runs")]
    assert "Which estimator wins?" in study
    assert "| torch-fda-n1-fp32 | cpu | quick | 2 | 61.00 ± 1.41 | 90.00 ± 0.00 |" in study
    assert "| torch-fda-n4-fp32 | cpu | quick | 2 | 52.00 ± 1.41 |" in study and "| 150 | 1.50 |" in study
    assert "| torch-approx_sign-fp32 | cpu | quick | 0 | - |" in study and "1 failed" in study
    assert "Resolved above it: torch-fda-n1-fp32 (+10.00 pp)" in study
    assert "differ from it by at most 2.00 pp, which this study does not resolve" in study
    assert "torch-fda-n4+noise-fp32 vs torch-fda-n4-fp32: +1.00 pp (not resolved; resolution 2.83 pp)" in study
    assert "spans 9.00 pp, best at n = 1, worst at n = 4 (resolved" in study
    assert "from 1.00x (torch-ste-fp32) to 1.60x (torch-fda-n4+noise-fp32)" in study
    assert "cannot be set against the paper's accuracies" in study
    for reference in ("84.44", "85.83", "86.20", "86.61", "0.27 s/step"):
        assert reference not in study
        assert reference in text[text.index("## References"):]
    assert "99.00" not in study  # the standalone run stays out of the study tables, in a section of its own
    standalone = text[text.index("## Stand-alone runs"):text.index("## References")]
    assert "| torch-ste-fp32 | 0 | cpu |" in standalone and "| 99.00 |" in standalone
    assert "## Step time" not in text  # no benchmark records yet


def test_plots_against_n(results):
    paths = write_summary()
    pngs = sorted(p.name for p in paths if p.suffix == ".png")
    assert pngs == ["demo-quick-step-vs-n.png", "demo-quick-top1-vs-n.png"]
    assert all((results / name).read_bytes()[:4] == b"\x89PNG" for name in pngs)
    assert "![demo-quick-top1-vs-n](demo-quick-top1-vs-n.png)" in paths[0].read_text()


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
    text = write_summary()[0].read_text()
    section = text[text.index("## Step time"):text.index("## References")]
    assert "No GPU numbers" in section and "Test CPU" in section
    assert "| fda-n9 | ok | 440.00 |" in section and "| 1.10 |" in section  # 440 / 400 in the × STE column
    assert "fda-n9 1.10×" in section and "— met." in section  # the worst closed-form ratio is 1.10
    assert "fda-n9-sum 2.00×" in section
    assert "1000 ms vs 400 ms = 2.5× — missed" in section


def test_micro_benchmarks_get_their_section(results):
    (results / "micro").mkdir(parents=True)
    def bench(variant: str, median: float, group: str = "torch-cpu-act128x16x32x32") -> dict:
        return {"group": group, "name": variant, "extra_info": {"variant": variant},
                "stats": {"median": median, "min": median * 0.9, "iqr": median * 0.1, "rounds": 7}}
    run = {"datetime": "2026-11-26T15:00:00", "machine_info": {"fdabnn": {"cpu_model": "Test CPU", "cpu_count": 2,
                                                                         "torch": "2.13.0", "git_commit": "abc"}},
           "benchmarks": [bench("ste", 0.004), bench("ste-unfused", 0.002), bench("fda-n9-unfused", 0.005),
                          bench("torch", 0.030, "layers-cpu-conv3x3-128x16x32x32"),
                          bench("mindspore", 0.090, "layers-cpu-conv3x3-128x16x32x32")]}
    (results / "micro" / "estimators-cpu.json").write_text(json.dumps(run))
    text = write_summary()[0].read_text()
    section = text[text.index("## Estimator micro-benchmarks"):text.index("## References")]
    assert "#### torch-cpu-act128x16x32x32" in section
    assert "| fda-n9-unfused | 5000 | 4500 | 500 | 7 | 2.50 |" in section  # against the op-by-op STE
    layers = section[section.index("#### layers-cpu-conv3x3-128x16x32x32"):]
    assert "× PyTorch" in layers and "| mindspore | 90000 | 81000 | 9000 | 7 | 3.00 |" in layers


def test_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path))
    text = write_summary()[0].read_text()
    assert "No run has been recorded yet" in text and "## References" in text
