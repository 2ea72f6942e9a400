"""Shared fixtures: the real CIFAR-10 copy the Makefile points at, loaded once per session."""
from __future__ import annotations

import os

import pytest

# Sets MindSpore's process environment (the oneDNN ISA cap, read when the library loads, and its log
# level) before any test module imports mindspore directly; the package itself does not import it.
import backends.mindspore  # noqa: F401


@pytest.fixture(scope="session")
def cifar10():
    """The real CIFAR-10 from $CIFAR10_ROOT (set by `make test` / .ci/run when ../shared/data exists)."""
    root = os.environ.get("CIFAR10_ROOT")
    if not root:
        pytest.skip("CIFAR10_ROOT is not set: point it at a CIFAR-10 copy (make test does) to run this test")
    from bench.data.cifar10 import load_cifar10

    return load_cifar10(root, download=False)
