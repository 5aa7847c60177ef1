"""Durations as users write them: seconds, a timedelta, or ``"24h"``, ``"7d"``."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Final

from actors._errors import DurationError

__all__ = ["Duration", "to_seconds"]

Duration = float | int | str | timedelta

_UNITS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def to_seconds(value: Duration) -> float:
    """Seconds >= 0, or ``DurationError``; ``"1h30m"`` is 5400."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):
        seconds = _parse(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise DurationError(value, f"is a {type(value).__name__}")
    if math.isnan(seconds) or math.isinf(seconds):
        raise DurationError(value, "is not finite")
    if seconds < 0:
        raise DurationError(value, "is negative")
    return seconds


def _parse(text: str) -> float:
    compact = text.replace(" ", "")
    if compact.startswith("-"):
        raise DurationError(text, "is negative")
    parts = _PART.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise DurationError(text, "is not a duration string")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)
