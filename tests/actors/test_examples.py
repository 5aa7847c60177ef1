"""The examples run end to end."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_order_workflow_example_completes_and_reopens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = runpy.run_path(str(EXAMPLES / "order_workflow.py"))
    module["main"](str(tmp_path / "journal"))
    out = capsys.readouterr().out
    assert "'approved': True} after attempts [1, 2]" in out
    assert "reopened: {'order': 'o-1'" in out
