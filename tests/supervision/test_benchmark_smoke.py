"""The supervision benchmark keeps working: a --quick run exits cleanly with its
table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
_HEADER = re.compile(
    r"^measurement\s+median\s+p90\s+baseline\s+ratio\s+target\s+met$", re.M
)


@pytest.mark.multiprocess
def test_quick_benchmark_run_exits_cleanly_and_prints_the_table() -> None:
    finished = subprocess.run(
        [sys.executable, str(_REPO / "benchmarks" / "supervision.py"), "--quick"],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    assert _HEADER.search(finished.stdout), finished.stdout
    assert "restart: one_for_one, 1 child" in finished.stdout
    assert "escalated" not in finished.stderr
