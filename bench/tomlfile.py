"""Reading the suite's input files (spec files, studies, profiles, benchmark suites) with one-line
errors that name the file and the key: bounded before they are read, plain data once parsed."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from bench.errors import UserError

MAX_FILE_BYTES = 1 << 20  # a spec, study or suite is a few KB; a larger file is a mistake, not an input
MAX_VALUES = 100_000  # values a file may expand to (YAML aliases share nodes that a reader then copies)


def read_text(path: Path, what: str = "") -> str:
    """The file's text; a missing file, a folder, a file past MAX_FILE_BYTES or one that is not
    UTF-8 is refused in one line before anything is read into memory."""
    name = f"{what} {path}".strip()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UserError(f"{name}: not found; give the path of a file") from None
    if path.is_dir():
        raise UserError(f"{name}: is a folder; give the path of a file")
    if size > MAX_FILE_BYTES:
        raise UserError(f"{name}: {size:,} bytes, larger than the {MAX_FILE_BYTES:,} an input file may be; "
                        "give the file itself, not a data file")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{name}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def plain_tree(path: Path, tree: Any, where: str = "") -> Any:
    """`tree` when it is plain data (tables, lists, strings, numbers, booleans, null) of at most
    MAX_VALUES values; else one line naming the key (a TOML date, a YAML alias bomb)."""
    count = 0

    def walk(value: Any, key: str) -> None:
        nonlocal count
        count += 1
        if count > MAX_VALUES:
            raise UserError(f"{path}: expands past {MAX_VALUES:,} values (YAML anchors and aliases?); "
                            "write each value out")
        if isinstance(value, dict):
            for sub_key, sub in value.items():
                if not isinstance(sub_key, str):
                    raise UserError(f"{path}: key {sub_key!r}{' under ' + key if key else ''}: expected a string key")
                walk(sub, f"{key}.{sub_key}" if key else sub_key)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            raise UserError(f"{path}: key '{key}': a {type(value).__name__} ({value}) is not a value this suite "
                            "reads; quote it or write a number")

    walk(tree, where)
    return tree


def read_toml(path: Path) -> dict[str, Any]:
    text = read_text(path)
    try:
        return plain_tree(path, tomllib.loads(text))
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
