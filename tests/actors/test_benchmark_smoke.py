"""The workflow benchmark keeps working: a --quick run exits cleanly with its table."""

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
    rows = table.rows(finished.stdout, _ROWS)
    assert sorted(rows) == sorted(_ROWS), finished.stdout
    for row in rows.values():
        assert row["met"] in {"yes", "no", "-"}
    w1 = rows["W1"]
    per_step = table.seconds(w1["chronik"])
    commit = table.seconds(w1["reference"].removesuffix(" (bare LMDB commit)"))
    assert 0 < per_step < 10
    assert 0 < commit < 10
    assert float(w1["ratio"].rstrip("x")) == pytest.approx(per_step / commit, 0.05)
    assert w1["met"] in {"yes", "no"}
    assert rows["W1 peer"]["met"] == "-"  # no --peers: nothing to judge it on
    w2 = rows["W2"]
    steps_per_s = table.number(w2["chronik"], "steps/s")
    runs = re.search(r"\(([\d,]+) runs/s\)$", w2["chronik"])
    assert runs, w2["chronik"]
    runs_per_s = float(runs.group(1).replace(",", ""))
    assert steps_per_s > 0
    assert steps_per_s == pytest.approx(3 * runs_per_s, rel=0.01, abs=2)
    assert 0 < table.seconds(rows["W2 cpu"]["chronik"]) < 10
    assert 0 < table.number(rows["W2 fsync"]["chronik"], "/step") < 10
    assert table.number(rows["W2 batch"]["chronik"], "steps/s") > 0
    assert 0 < table.seconds(rows["W3"]["chronik"]) < 10
    assert 0 < table.seconds(rows["W4"]["chronik"]) < 60
    assert 0.1 <= table.seconds(rows["async"]["chronik"]) < 60
    assert "each step ran exactly once" in finished.stdout
    assert list(tmp_path.iterdir()) == []
