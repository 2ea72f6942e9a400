"""The architecture's rules, checked on the source: only backends/ knows a framework, and both
backends and the neutral code agree on the estimator vocabulary."""
from __future__ import annotations

import ast

import pytest

from bench.environment import REPO

FRAMEWORKS = {"torch", "mindspore"}


def _imported_roots(path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted((REPO / "bench").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_under_bench_imports_a_framework(path):
    assert not _imported_roots(path) & FRAMEWORKS, f"{path} imports a framework: move that code behind backends/"


def test_framework_neutral_backend_files_import_no_framework():
    for name in ("__init__.py", "base.py"):
        assert not _imported_roots(REPO / "backends" / name) & FRAMEWORKS, name


def test_each_backend_has_exactly_the_described_estimators():
    from bench.estimators import NAMES

    for backend in ("pytorch", "mindspore"):
        found = {p.stem for p in (REPO / "backends" / backend / "estimators").glob("*.py")} - {"__init__", "core"}
        assert found == set(NAMES), backend
