"""Shared fixtures: the real CIFAR-10 copy the Makefile points at, loaded once per session."""
from __future__ import annotations

import os

# MindSpore's bundled oneDNN takes a reference path on AVX-512 CPUs unless capped (60 s vs 2.5 s a
# step); it is read when the library loads, so it must be set before anything imports mindspore.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

import pytest


@pytest.fixture(scope="session")
def cifar10():
    """The real CIFAR-10 from $CIFAR10_ROOT (set by `make test` / .ci/run when ../shared/data exists)."""
    root = os.environ.get("CIFAR10_ROOT")
    if not root:
        pytest.skip("CIFAR10_ROOT is not set: point it at a CIFAR-10 copy (make test does) to run this test")
    from bench.data.cifar10 import load_cifar10

    return load_cifar10(root, download=False)
