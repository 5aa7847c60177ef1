"""Reading the table a benchmark script prints, for its smoke test."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final

__all__ = ["COLUMNS", "number", "rows", "seconds"]

COLUMNS: Final = ("measurement", "chronik", "reference", "ratio", "target", "met")


def rows(stdout: str, starts: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The table's rows by key (``starts``: a key -> how its row's measurement
    starts; the longest matching start names a row), each as column -> cell."""
    found = {}
    for line in stdout.splitlines():
        keys = [k for k, start in starts.items() if line.startswith(start)]
        if keys:
            key = max(keys, key=lambda k: len(starts[k]))
            cells = re.split(r"\s{2,}", line.strip())
            assert len(cells) == len(COLUMNS), f"a row of {len(cells)} cells: {line}"
            found[key] = dict(zip(COLUMNS, cells, strict=True))
    return found


def number(cell: str, unit: str) -> float:
    """The figure a cell starts with, in ``unit``."""
    match = re.match(rf"^([\d,]+(?:\.\d+)?) {re.escape(unit)}(?: |$)", cell)
    assert match, f"{cell!r} does not start with a figure in {unit}"
    value = float(match.group(1).replace(",", ""))
    assert math.isfinite(value)
    return value


def seconds(cell: str) -> float:
    """A time cell: ms below a second, s from a second on."""
    unit = "ms" if cell.endswith(" ms") else "s"
    return number(cell, unit) / (1000 if unit == "ms" else 1)
