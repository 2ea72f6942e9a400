"""Divergence is a status: the rule on histories, the training loop stopping a diverged run, and the
FDA facts the summary gives as the reason, checked against the NumPy reference."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bench import divergence as rule
from bench import store
from bench.estimators import fda_reference
from bench.fda_shape import facts, first_negative, peak
from bench.spec import build_spec
from bench.training import train


def epoch(i: int, train_loss: float, val_loss: float) -> dict:
    return {"epoch": i, "train_loss": train_loss, "Validation-Loss": val_loss, "Top1-Acc": 0.1, "Top5-Acc": 0.5}


@pytest.mark.parametrize("history, expected", [
    ([epoch(0, 2.4, 2.3), epoch(1, 2.1, 2.2)], None),
    ([epoch(0, 2.4, 2.3), epoch(1, 2.1, 23.1)], (2, "validation loss")),  # over 10 ln 10 = 23.03
    ([epoch(0, 7123.0, 2122.8)], (1, "training loss")),  # the FDA n=32 runs: exploded within epoch 1
    ([epoch(0, 2.4, 2.3), epoch(1, math.nan, 2.2)], (2, "training loss")),
    ([epoch(0, 2.4, math.inf)], (1, "validation loss")),
    ([], None),
])
def test_the_rule(history, expected):
    found = rule.divergence(history)
    assert (found and (found.epoch, found.what)) == expected


def test_the_limit_follows_the_number_of_classes():
    assert rule.divergence([epoch(0, 40.0, 2.0)], classes=100) is None  # 10 ln 100 = 46
    assert rule.divergence([epoch(0, 40.0, 2.0)], classes=10) is not None


def test_fda_facts_from_the_reference():
    found = facts(0.1)
    assert (found.amplifies_from, found.negative_from) == (7, 15)
    for n in (0, 6, 7, 9, 32):
        assert peak(n, 0.1) == pytest.approx(4 * 0.1 * (n + 1) / np.pi)  # the paper's closed form at x = 0
    assert peak(6, 0.1) < 1 < peak(7, 0.1)
    assert first_negative(14, 0.1) is None
    zero = np.pi / (2 * 16 * 0.1)  # the closed form's first zero for n = 15
    assert first_negative(15, 0.1) == pytest.approx(zero, abs=1e-4)
    assert fda_reference(np.array([zero + 1e-3]), 15, 0.1)[0] < 0
    text = found.describe()
    assert "from n = 7" in text and "from n = 15" in text


def test_a_diverging_run_stops_with_its_status_and_is_not_trained_again(cifar10, tmp_path, monkeypatch):
    spec = build_spec({"backend": "torch", "device": "cpu", "data.subset": 4, "data.test_subset": 4,
                       "train.batch_size": 8, "train.max_steps_per_epoch": 2, "train.eval_batch_size": 40,
                       "train.epochs": 3})
    monkeypatch.setattr(rule, "EXPLOSION", 0.5)  # any loss above 0.5 ln 10 "explodes": diverged in epoch 1
    run_dir = tmp_path / "run"
    record = train(spec, run_dir)
    assert record["status"] == "diverged" and record["epochs_done"] == 1
    assert record["reason"].startswith("training loss") and "in epoch 1" in record["reason"]
    assert store.record_problem(record) is None
    again = train(spec, run_dir)  # complete: a rerun would diverge the same way
    assert again["finished_at"] == record["finished_at"]
