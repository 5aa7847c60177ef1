"""What the crash suite ran and injected, counted for the summary line.

``tests/crash/conftest.py`` prints the counts at the end of a pytest session
(``pytest_terminal_summary``), so a run of the suite says how many generated
histories and kill trials it checked and how many faults of each kind it
injected. Counts are per process: a killed worker's are not here, but what it
did is counted from its journal and logs by the test that killed it.
"""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["STATS", "count", "summary_lines"]

STATS: Counter[str] = Counter()
_lock = threading.Lock()


def count(what: str, n: int = 1) -> None:
    """Add ``n`` to the count of ``what`` (from any thread)."""
    with _lock:
        STATS[what] += n


def summary_lines() -> list[str]:
    """The counts, one ``what: n`` a line, grouped by their prefix."""
    with _lock:
        items = sorted(STATS.items())
    return [f"{what}: {n:,}" for what, n in items]
