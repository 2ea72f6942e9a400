"""The summary with two networks, their full-precision twins and runs started from an FP checkpoint:
one decision table per network, the FP row as the upper bound (never as FDA, never ranked), and a
from-fp row compared only with the clipped STE started the same way."""
from __future__ import annotations

import csv

import pytest

from bench.report import write_summary
from test_report import QUICK, put

FROM_FP = {"init": {"from": "pretrain-fp:quick"}}


@pytest.fixture()
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("FDABNN_RESULTS", str(tmp_path))
    for seed in (0, 1):
        train = {**QUICK["train"], "seed": seed}
        for network, base in (("resnet20", 50.0), ("vgg_small", 70.0)):
            model = {"name": network}
            put(tmp_path, {"model": model, "estimator": {"name": "ste"}, "train": train}, base + seed, 100.0)
            put(tmp_path, {"model": model, "estimator": {"n": 9}, "train": train}, base + 5 + 2 * seed, 120.0)
            put(tmp_path, {"model": {**model, "binarize": False}, "train": train}, base + 20 + seed, 80.0)
        # from the FP checkpoint: STE far above the from-scratch STE; FDA just above its own reference
        # STE's seeds started from one file; FDA's seed 1 from a checkpoint trained again in between
        put(tmp_path, {**FROM_FP, "estimator": {"name": "ste"}, "train": train}, 80.0 + seed, 100.0,
            init=_started_from("ab"))
        put(tmp_path, {**FROM_FP, "estimator": {"n": 9}, "train": train}, 81.0 + 2 * seed, 120.0,
            init=_started_from("ab" if seed == 0 else "cd"))
    return tmp_path


def _started_from(digest: str) -> dict:
    return {"from": "pretrain-fp:quick", "path": "/fp/checkpoint.pt", "sha256": digest * 32}


def _decision(text: str, network: str) -> str:
    start = text.index(f"### Demo (`demo`): {network}, profile quick, cpu, fp32")
    return text[start:text.index("###", start + 3)]


def test_one_decision_table_per_network_with_its_fp_twin_as_the_upper_bound(results):
    text = write_summary()[0].read_text()
    resnet, vgg = _decision(text, "ResNet-20"), _decision(text, "VGG-small")
    assert "| vgg_small-" not in resnet and "| ste |" not in vgg and "| vgg_small-ste |" in vgg
    fp = next(line for line in resnet.splitlines() if line.startswith("| fp |"))
    assert "70.50 ± 0.71 (n=2)" in fp and "full precision: the upper bound" in fp and "92.10" in fp
    vgg_fp = next(line for line in vgg.splitlines() if line.startswith("| vgg_small-fp |"))
    assert "94.10" in vgg_fp and "90.50" in vgg_fp
    assert "90.20" in next(line for line in vgg.splitlines() if line.startswith("| vgg_small-ste |"))
    # the FP twin is said to be the bound, and is in no ranking
    assert "the full-precision twin (vgg_small-fp) reaches 90.50; the best binarized row, vgg_small-fda-n9" in vgg
    assert "fp (" not in vgg.split("resolved above clipped STE:")[1]


def test_an_fp_twin_is_never_shown_as_fda(results):
    write_summary()
    with open(results / "demo.csv") as fh:
        table = {row["label"]: row for row in csv.DictReader(fh)}
    fp = table["torch-fp-fp32"]
    assert (fp["estimator"], fp["n"], fp["binarize"], fp["network"]) == ("", "", "False", "resnet20")
    assert table["torch-vgg_small-fp-fp32"]["network"] == "vgg_small"


def test_from_fp_rows_are_compared_with_the_ste_started_the_same_way(results):
    resnet = _decision(write_summary()[0].read_text(), "ResNet-20")
    line = {row.split(" | ")[0].lstrip("| "): row for row in resnet.splitlines() if row.startswith("| ")}
    assert "reference" in line["ste-from-fp"] and "reference" in line["ste"]
    # fda-n9-from-fp against ste-from-fp (+1.50 on average), not against the from-scratch STE (+31.50)
    assert "+1.50" in line["fda-n9-from-fp"] and "+31" not in line["fda-n9-from-fp"]
    assert "+5.50" in line["fda-n9"]


def test_seeds_started_from_different_checkpoints_are_flagged(results):
    write_summary()
    with open(results / "demo.csv") as fh:
        status = {row["label"]: row["status"] for row in csv.DictReader(fh)}
    assert "2 different checkpoints, sha256 abababababab, cdcdcdcdcdcd" in status["torch-fda-n9-from-fp-fp32"]
    assert "checkpoints" not in status["torch-ste-from-fp-fp32"]
