"""Estimator micro-benchmarks (`make bench-micro`): run only when benchmarking is enabled, and every
JSON result carries the environment it was measured in."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def _benchmarking(config: pytest.Config) -> bool:
    # pyproject's addopts pass --benchmark-disable; --benchmark-enable overrides it (pytest-benchmark's rule)
    return not config.getoption("benchmark_disable", False) or config.getoption("benchmark_enable", False)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-benchmark >= 5.3 takes a path and writes it at the end: create results/micro/ for it. Older
    # versions open the file while parsing the command line, so there `mkdir -p` must come first.
    path = config.getoption("benchmark_json", None)
    if isinstance(path, (str, os.PathLike)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With benchmarking disabled, a micro test would run its full-size callable once and measure
    nothing: skip it instead (the unmarked guard test still checks every benchmarked callable)."""
    if _benchmarking(config):
        return
    skip = pytest.mark.skip(reason="benchmarking is disabled (pyproject addopts): run `make bench-micro`, "
                                   "or add --benchmark-enable")
    for item in items:
        if item.get_closest_marker("micro") is not None:
            item.add_marker(skip)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    from bench.environment import describe

    versions = {}
    for name in ("torch", "mindspore"):
        module = sys.modules.get(name)  # only what this run imported; importing mindspore here costs seconds
        if module is not None:
            versions[name] = module.__version__
    torch = sys.modules.get("torch")
    if torch is not None:
        versions["torch_threads"] = str(torch.get_num_threads())
        versions["cuda"] = torch.version.cuda or "none"
        if torch.cuda.is_available():
            versions["device_name"] = torch.cuda.get_device_name()
    machine_info["fdabnn"] = describe(versions)
