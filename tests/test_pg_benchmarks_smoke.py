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


def test_the_w2_pairs_table_judges_the_median_of_the_pairs_ratios() -> None:
    """benchmarks/pg_w2_pairs.py (which needs the peer harness's DBOS, so runs by
    hand): a row per pair, then the median ratio judged against 3x."""
    sys.path.insert(0, str(_REPO))
    from benchmarks import pg_w2_pairs, workflows

    made = pg_w2_pairs.rows([(500.0, 1000.0), (400.0, 1600.0), (600.0, 2100.0)])
    assert [round(r.ratio or 0, 2) for r in made] == [2.0, 4.0, 3.5, 3.5]
    assert [r.met for r in made] == [None, None, None, True]
    assert made[-1].chronik == 1600.0
    lines = workflows.table(made)
    assert "ratios 2.00-4.00x" in lines[-1]
    assert lines[-1].endswith("yes")
    worse = pg_w2_pairs.rows([(500.0, 1000.0), (400.0, 1100.0), (600.0, 2100.0)])
    assert worse[-1].met is False  # median 2.75x
    assert (
        pg_w2_pairs.server_url_of("host=db.example port=6543 user=app password=s3")
        == "postgresql://app:s3@db.example:6543"
    )
