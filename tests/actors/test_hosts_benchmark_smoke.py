"""The hosts benchmark keeps working: a --quick run exits cleanly with its rows."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
_HEADER = re.compile(
    r"^measurement\s+chronik\s+reference\s+ratio\s+target\s+met$", re.M
)
_COLUMNS = ("measurement", "chronik", "reference", "ratio", "target", "met")
_ROWS = {  # a key -> how its row's measurement starts
    "failover": "W5 failover: ",
    "scaling": "W5 scaling: ",
    "floor": "floor, no engine ",
    "duplicates": "W5 duplicates: ",
    "idle": "W5 idle host: ",
}


def _rows(stdout: str) -> dict[str, dict[str, str]]:
    """The table's rows by their key (see ``_ROWS``), each as column -> cell."""
    rows = {}
    for line in stdout.splitlines():
        for key, start in _ROWS.items():
            if line.startswith(start):
                cells = re.split(r"\s{2,}", line.strip())
                assert len(cells) == len(_COLUMNS), f"{len(cells)} cells: {line}"
                rows[key] = dict(zip(_COLUMNS, cells, strict=True))
    return rows


def _number(cell: str, unit: str) -> float:
    found = re.match(rf"^([\d,]+(?:\.\d+)?) {re.escape(unit)}(?: |$)", cell)
    assert found, f"{cell!r} does not start with a figure in {unit}"
    value = float(found.group(1).replace(",", ""))
    assert math.isfinite(value)
    return value


def _seconds(cell: str) -> float:
    """A time cell: ms below a second, s from a second on."""
    unit = "ms" if cell.endswith(" ms") else "s"
    return _number(cell, unit) / (1000 if unit == "ms" else 1)


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
    rows = _rows(finished.stdout)
    assert sorted(rows) == sorted(_ROWS), finished.stdout
    for row in rows.values():
        assert row["met"] in {"yes", "no"}, row
    failover = rows["failover"]
    assert 0 < _seconds(failover["chronik"]) < 60
    assert failover["reference"] == "1.00 s (lease TTL)"
    scaling = rows["scaling"]
    two = _number(scaling["chronik"], "steps/s")
    one = _number(scaling["reference"].removesuffix(" (1 host)"), "steps/s")
    assert two > 0
    assert one > 0
    assert float(scaling["ratio"].rstrip("x")) == pytest.approx(two / one, 0.05)
    floor = rows["floor"]
    assert _number(floor["chronik"], "steps/s") > 0
    assert _number(floor["reference"].removesuffix(" (1 process)"), "steps/s") > 0
    assert _number(rows["duplicates"]["chronik"], "extra") >= 0
    idle = re.match(
        r"^[\d,]+ reads/s \((\d+) in ([\d.]+) s\)$", rows["idle"]["chronik"]
    )
    assert idle, rows["idle"]
    assert float(idle.group(2)) >= 0.9
    assert list(tmp_path.iterdir()) == []
