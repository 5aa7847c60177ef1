"""Bugs the crash suite found, each kept as a regression test now that it is
fixed (they were strict xfails until the fixes landed)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import (
    ActorSystem,
    ManualClock,
    RunCancelledError,
    WorkflowContext,
    workflow,
)
from actors._ref import RunHandle
from tests.actors._contract_faults import CommitFault, event_names, has_event, stored


@workflow(name="tests.crash.found.waiter")
async def waiter(ctx: WorkflowContext) -> str:
    """Ends as soon as it has its signal (or is cancelled): the commit of the
    signal (or of the cancel request) ends the run."""
    signal: str = await ctx.receive("go")
    return signal


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ActorSystem]:
    """A system whose senders ask again only once the faulted run's new actor
    has replayed it to its end (the OS may schedule it so; else the retry
    reaches the new actor before it stops, and is answered by luck)."""
    wait_replaced = RunHandle.wait_replaced

    def replaced_and_replayed(handle: RunHandle, stale: Any, deadline: Any) -> None:
        handle.done.wait(5)
        wait_replaced(handle, stale, deadline)

    monkeypatch.setattr(RunHandle, "wait_replaced", replaced_and_replayed)
    with ActorSystem.open(tmp_path / "journal", clock=ManualClock()) as opened:
        yield opened


def test_a_signal_recorded_before_an_engine_fault_is_acknowledged_even_if_its_commit_ended_the_run(  # noqa: E501
    system: ActorSystem,
) -> None:
    ref = system.spawn(waiter, id="waiter-1")
    CommitFault(system, when=has_event("SignalReceived"), after_commit=True)
    try:
        acknowledged = ref.send("go", "yes", signal_id="go-1")
    finally:
        # Whatever the sender was told, the signal is in history, consumed
        # once, and the run ended with it.
        names = event_names(stored(system.path, "waiter-1"))
        assert names.count("SignalReceived") == 1
        assert names.count("SignalConsumed") == 1
        assert ref.result(timeout=5) == "yes"
        assert system.restarts == 1
    assert acknowledged == "go-1"


def test_a_cancel_recorded_before_an_engine_fault_succeeds_even_if_its_commit_ended_the_run(  # noqa: E501
    system: ActorSystem,
) -> None:
    ref = system.spawn(waiter, id="waiter-2")
    CommitFault(system, when=has_event("CancelRequested"), after_commit=True)
    try:
        ref.cancel("no longer needed")
    finally:
        names = event_names(stored(system.path, "waiter-2"))
        assert names[-2:] == ["CancelRequested", "Cancelled"]
        with pytest.raises(RunCancelledError):
            ref.result(timeout=5)
        assert system.restarts == 1


# A process killed at this point of creating a journal: the commit that made the
# journal's meta database is durable, the one that writes the format marker not.
_KILLED_WHILE_CREATING = """
import os, signal, sys
import journal._store
journal._store._write_marker = lambda *_: os.kill(os.getpid(), signal.SIGKILL)
from actors import ActorSystem
ActorSystem.open(sys.argv[1])
"""


@pytest.mark.multiprocess
def test_a_process_killed_while_creating_a_journal_leaves_one_that_opens(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal"
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_WHILE_CREATING, str(path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with ActorSystem.open(path) as system:
        assert system.spawn(waiter, id="waiter-3").id == "waiter-3"
