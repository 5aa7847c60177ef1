"""The PostgreSQL benchmarks keep working: --quick runs exit cleanly and print
their rows (skipped, saying why, where no server answers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]


@pytest.mark.multiprocess
@pytest.mark.parametrize(
    ("script", "extra", "rows"),
    [
        (
            "benchmarks/postgres.py",
            ["--idle-seconds", "0.5"],
            ["threads x one event per append", "an idle host"],
        ),
        (
            # W4 waits for the killed host's leases: a short TTL keeps it quick.
            "benchmarks/pg_workflows.py",
            ["--lease-ttl", "1"],
            [
                "PostgreSQL W1",
                "PostgreSQL W3",
                "PostgreSQL W4",
                "restarted under its name",
                "(TTL 1 s)",
                "each step ran exactly once",
            ],
        ),
    ],
)
def test_a_quick_postgresql_benchmark_prints_its_rows(
    postgres_dsn: str, script: str, extra: list[str], rows: list[str]
) -> None:
    finished = subprocess.run(
        [sys.executable, script, "--quick", "--dsn", postgres_dsn, *extra],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    for row in rows:
        assert row in finished.stdout, finished.stdout
