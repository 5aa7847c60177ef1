"""The workflow benchmark keeps working: a --quick run exits cleanly with its table."""

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
    "W1": "W1: per-step gap, median",
    "W1 peer": "W1: per-step gap vs the best peer",
    "W2": "W2: ",
    "W2 cpu": "W2: CPU per step",
    "W2 fsync": "W2: fsync per step",
    "W2 batch": "W2 extra: ",
    "W3": "W3: ",
    "W4": "W4: ",
    "fsync": "fsync per step",
    "async": "20 runs each awaiting one async step",
}


def _rows(stdout: str) -> dict[str, dict[str, str]]:
    """The table's rows by their key (see ``_ROWS``), each as column -> cell."""
    rows = {}
    for line in stdout.splitlines():
        # The longest matching prefix names the row ("W2: CPU..." over "W2: ").
        keys = [k for k, start in _ROWS.items() if line.startswith(start)]
        if keys:
            key = max(keys, key=lambda k: len(_ROWS[k]))
            cells = re.split(r"\s{2,}", line.strip())
            assert len(cells) == len(_COLUMNS), f"a row of {len(cells)} cells: {line}"
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
@pytest.mark.parametrize(
    "command",
    [["benchmarks/workflows.py"], ["-m", "benchmarks.workflows"]],
    ids=["script", "module"],
)
def test_quick_workflow_benchmark_prints_all_four_rows_with_sane_figures(
    tmp_path: Path, command: list[str]
) -> None:
    finished = subprocess.run(
        [sys.executable, *command, "--quick", "--tmp-dir", str(tmp_path)],
        cwd=_REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    assert _HEADER.search(finished.stdout), finished.stdout
    rows = _rows(finished.stdout)
    assert sorted(rows) == sorted(_ROWS), finished.stdout
    for row in rows.values():
        assert row["met"] in {"yes", "no", "-"}
    w1 = rows["W1"]
    per_step = _seconds(w1["chronik"])
    commit = _seconds(w1["reference"].removesuffix(" (bare LMDB commit)"))
    assert 0 < per_step < 10
    assert 0 < commit < 10
    assert float(w1["ratio"].rstrip("x")) == pytest.approx(per_step / commit, 0.05)
    assert w1["met"] in {"yes", "no"}
    assert rows["W1 peer"]["met"] == "-"  # no --peers: nothing to judge it on
    w2 = rows["W2"]
    steps_per_s = _number(w2["chronik"], "steps/s")
    runs = re.search(r"\(([\d,]+) runs/s\)$", w2["chronik"])
    assert runs, w2["chronik"]
    runs_per_s = float(runs.group(1).replace(",", ""))
    assert steps_per_s > 0
    assert steps_per_s == pytest.approx(3 * runs_per_s, rel=0.01, abs=2)
    assert 0 < _seconds(rows["W2 cpu"]["chronik"]) < 10
    assert 0 < _number(rows["W2 fsync"]["chronik"], "/step") < 10
    assert _number(rows["W2 batch"]["chronik"], "steps/s") > 0
    assert 0 < _seconds(rows["W3"]["chronik"]) < 10
    assert 0 < _seconds(rows["W4"]["chronik"]) < 60
    assert 0.1 <= _seconds(rows["async"]["chronik"]) < 60
    assert "each step ran exactly once" in finished.stdout
    assert list(tmp_path.iterdir()) == []
