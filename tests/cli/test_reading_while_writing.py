"""Read-only commands work while another process runs a system on the journal."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import chronik
from tests.replay._support import last_notification

pytestmark = pytest.mark.multiprocess  # each test runs the console script

TICKER_EVENTS = 42  # Started, 20 steps scheduled and completed, Completed


def test_list_history_state_export_and_verify_read_a_journal_being_written(
    writer: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, process = writer
    before = last_notification(str(path)) or 0

    listed = chronik("-j", path, "list", "--status", "completed")
    assert listed.code == 0, listed
    assert "tick-1 " in listed.out
    assert "tests.cli.ticker" in listed.out

    history = chronik("-j", path, "history", "tick-1", "--json")
    assert history.code == 0, history
    assert len(history.json()["events"]) == TICKER_EVENTS

    state = chronik("-j", path, "state", "tick-1", "--at", "3", "--json")
    assert state.code == 0, state
    assert state.json()["commands"][0]["outcome"]["value"] == 0

    exported = chronik("-j", path, "export")
    assert exported.code == 0, exported
    positions = [json.loads(line)["position"] for line in exported.out.splitlines()]
    assert positions == list(range(1, len(positions) + 1))
    assert len(positions) >= before

    verified = chronik("-j", path, "verify", "-m", "tests.cli._flows")
    assert verified.code == 0, verified
    assert "ok" in verified.out

    assert (last_notification(str(path)) or 0) > max(before, len(positions))
    assert process.poll() is None, "the writer stopped: it should still be writing"
