"""The audit benchmark keeps working: a --quick run exits cleanly with its table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
_ROWS = (
    "read the log (baseline)",
    "verify hash chains (API)",
    "chronik export (JSON lines)",
    "chronik verify (chains + replay)",
)


@pytest.mark.multiprocess
def test_the_audit_benchmark_prints_a_rate_for_every_measurement() -> None:
    done = subprocess.run(
        [sys.executable, str(_REPO / "benchmarks" / "audit.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"journal of [\d,]+ events \(\d+ runs\)", done.stdout)
    for row in _ROWS:
        found = re.search(
            rf"^{re.escape(row)}\s+([\d,]+)\s+[\d.]+\s+[\d.]+x$", done.stdout, re.M
        )
        assert found, f"no figures for {row!r} in:\n{done.stdout}"
        assert int(found.group(1).replace(",", "")) > 0
