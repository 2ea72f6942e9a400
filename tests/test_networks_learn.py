"""A short real training learns: VGG-small (binarized) and the full-precision twins of both networks,
in both backends, through the one interface (backends.prepare) and the suite's own schedules and data
order. Slow (VGG-small's step is ~15x ResNet-20's): `make test-slow`.

50 training and 50 test images per class (stratified), batch 50, Adam 2e-3 on a cosine: 10 steps an
epoch. Chance is 10 % (500 test images: one sd of a chance guess is 1.3 points). Top-1 measured on
2026-12-03 (2 cores shared with a study): torch-fp 38.0 %, torch-vgg_small-fp
28.2 %, torch-vgg_small-ste 26.8 %, mindspore-fp 32.4 %, mindspore-vgg_small-ste 25.0 %. The bars
sit well below those and well above chance: 0.25 for ResNet-20's FP twins, 0.20 for VGG-small's
(four epochs of ten steps is little for its 8,192-wide linear), 0.15 for binarized VGG-small.
"""
from __future__ import annotations

import pytest

import backends
from bench.data.augment import batch_plan, plan_epoch, steps_per_epoch
from bench.schedules import Schedules
from bench.spec import build_spec

TRAIN_PER_CLASS, TEST_PER_CLASS, BATCH = 50, 50, 50


def _train(data, tree: dict, epochs: int) -> dict[str, float]:
    spec = build_spec({**tree, "device": "cpu", "optim": {"name": "adam", "lr": 2e-3, "weight_decay": 1e-4},
                       "train": {"epochs": epochs, "batch_size": BATCH, "eval_batch_size": 500}})
    backend = backends.prepare(spec, data)
    sched = Schedules(spec, steps_per_epoch(len(data.train_y), BATCH, None))
    for epoch in range(epochs):
        backend.set_estimator_values(sched.estimator_values(epoch))
        for step, (indices, aug) in enumerate(plan_epoch(len(data.train_y), BATCH, spec.train.seed, epoch,
                                                         spec.data.augment, None)):
            g = epoch * sched.steps_per_epoch + step
            backend.train_step(batch_plan(indices, aug), sched.lr(g), sched.alpha(g))
    assert not backend.pop_stats().nonfinite
    return backend.evaluate()


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "model", "estimator", "epochs", "threshold"), [
    ("torch", {"name": "resnet20", "binarize": False}, {}, 6, 0.25),
    ("torch", {"name": "vgg_small", "binarize": False}, {}, 4, 0.20),
    ("torch", {"name": "vgg_small"}, {"name": "ste"}, 4, 0.15),
    ("mindspore", {"name": "resnet20", "binarize": False}, {}, 6, 0.25),
    ("mindspore", {"name": "vgg_small"}, {"name": "ste"}, 3, 0.15),
], ids=["torch-fp", "torch-vgg_small-fp", "torch-vgg_small-ste", "mindspore-fp", "mindspore-vgg_small-ste"])
def test_short_training_beats_chance(cifar10, backend, model, estimator, epochs, threshold):
    if backends.unavailable_reason(backend):
        pytest.skip(backends.unavailable_reason(backend))
    data = cifar10.subsample(TRAIN_PER_CLASS, TEST_PER_CLASS, seed=0)
    metrics = _train(data, {"backend": backend, "model": model, "estimator": estimator}, epochs)
    print(f"\n{backend} {model} {estimator}: {metrics}")
    assert metrics["Top1-Acc"] > threshold
