"""The hosts benchmark keeps working: a --quick run exits cleanly with its rows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import _bench_table as table

_REPO = Path(__file__).resolve().parents[2]
_HEADER = re.compile(
    r"^measurement\s+chronik\s+reference\s+ratio\s+target\s+met$", re.M
)
_ROWS = {  # a key -> how its row's measurement starts
    "failover": "W5 failover: ",
    "scaling": "W5 scaling: ",
    "floor": "floor, no engine ",
    "duplicates": "W5 duplicates: ",
    "idle": "W5 idle host: ",
}


@pytest.mark.multiprocess
def test_quick_hosts_benchmark_prints_its_rows_with_sane_figures(
    tmp_path: Path,
) -> None:
    finished = subprocess.run(
        [sys.executable, "benchmarks/hosts.py", "--quick", "--tmp-dir", str(tmp_path)],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    assert _HEADER.search(finished.stdout), finished.stdout
    rows = table.rows(finished.stdout, _ROWS)
    assert sorted(rows) == sorted(_ROWS), finished.stdout
    for row in rows.values():
        assert row["met"] in {"yes", "no"}, row
    failover = rows["failover"]
    assert 0 < table.seconds(failover["chronik"]) < 60
    assert failover["reference"] == "1.00 s (lease TTL)"
    scaling = rows["scaling"]
    two = table.number(scaling["chronik"], "steps/s")
    one = table.number(scaling["reference"].removesuffix(" (1 host)"), "steps/s")
    assert two > 0
    assert one > 0
    assert float(scaling["ratio"].rstrip("x")) == pytest.approx(two / one, 0.05)
    floor = rows["floor"]
    assert table.number(floor["chronik"], "steps/s") > 0
    assert table.number(floor["reference"].removesuffix(" (1 process)"), "steps/s") > 0
    assert table.number(rows["duplicates"]["chronik"], "extra") >= 0
    idle = re.match(
        r"^[\d,]+ reads/s \((\d+) in ([\d.]+) s\)$", rows["idle"]["chronik"]
    )
    assert idle, rows["idle"]
    assert float(idle.group(2)) >= 0.9
    assert list(tmp_path.iterdir()) == []
