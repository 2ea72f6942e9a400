"""The one Markdown table writer of the report (pandas' to_markdown needs an extra dependency)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def number(value: Any, digits: int = 2, spread: Any = None) -> str:
    """`12.34`, `12.34 ± 0.56` when a spread is given, `-` for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.{digits}f}"
    if spread is not None and not (isinstance(spread, float) and math.isnan(spread)):
        text += f" ± {spread:.{digits}f}"
    return text
