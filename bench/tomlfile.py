"""Reading the suite's own TOML files (studies, profiles, benchmark suites) with one-line errors that
name the file and the key."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from bench.errors import UserError


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None


def nones(value: Any) -> Any:
    """TOML has no null: the string "none" (any case) -> None, throughout a TOML tree."""
    if isinstance(value, dict):
        return {k: nones(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nones(v) for v in value]
    return None if isinstance(value, str) and value.lower() == "none" else value


def check_keys(path: Path, where: str, table: dict[str, Any], allowed: dict[str, type | tuple[type, ...]]) -> None:
    """Every key of `table` is in `allowed`, its value of the type given there."""
    for key, value in table.items():
        if key not in allowed:
            raise UserError(f"{path}: {where}key '{key}': unknown; allowed: {', '.join(allowed)}")
        kinds = allowed[key] if isinstance(allowed[key], tuple) else (allowed[key],)
        if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
            wanted = " or ".join(k.__name__ for k in kinds)
            raise UserError(f"{path}: {where}key '{key}': expected {wanted}, got {type(value).__name__} {value!r}")
