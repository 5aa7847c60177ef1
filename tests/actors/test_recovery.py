"""Crashes and restarts: a recorded step never runs again; changed code is caught."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from actors import (
    ActorSystem,
    ManualClock,
    NonDeterminismError,
    NonDeterministicEndError,
    RunEnd,
    RunStatus,
    WorkflowContext,
    WorkflowFailedError,
    activity,
    workflow,
)
from aggregates import Command, CommandKind, RunFinishedError
from tests.actors._workflows import fulfil

ROOT = Path(__file__).resolve().parents[2]

started = threading.Event()
release = threading.Event()
executed: list[str] = []


@activity
def pack(order_id: str) -> str:
    executed.append(f"pack {order_id}")
    started.set()
    assert release.wait(5)
    return f"parcel-{order_id}"


@activity
def label(parcel: str) -> str:
    executed.append(f"label {parcel}")
    return f"label-{parcel}"


@workflow
async def dispatch(ctx: WorkflowContext, order_id: str) -> str:
    parcel = await ctx.call(pack, order_id)
    return str(await ctx.call(label, parcel))


def test_closing_mid_step_records_the_step_and_reopening_does_not_run_it_again(
    path: str, clock: ManualClock
) -> None:
    started.clear()
    release.clear()
    executed.clear()
    system = ActorSystem.open(path, clock=clock)
    system.spawn(dispatch, "o-7", id="dispatch-o-7")
    assert started.wait(5)
    closer = threading.Thread(target=system.close)
    closer.start()
    time.sleep(0.02)  # close() is now waiting for the running attempt
    release.set()
    closer.join(5)
    assert executed == ["pack o-7"]  # label was not started while closing
    with ActorSystem.open(path, clock=clock) as reopened:
        assert reopened.ref("dispatch-o-7").result(timeout=5) == "label-parcel-o-7"
    assert executed == ["pack o-7", "label parcel-o-7"]


@pytest.mark.multiprocess
def test_a_killed_process_resumes_its_run_without_rerunning_the_completed_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, counts = str(tmp_path / "journal"), tmp_path / "counts"
    environment = dict(
        os.environ, CHRONIK_COUNT_FILE=str(counts), CHRONIK_BLOCK_SHIP="1"
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.actors._crash_runner", journal],
        cwd=ROOT,
        env=environment,
    )
    try:
        deadline = time.monotonic() + 20
        while "ship" not in (counts.read_text() if counts.exists() else ""):
            assert time.monotonic() < deadline, "the child never reached ship"
            assert child.poll() is None, "the child exited early"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    monkeypatch.setenv("CHRONIK_COUNT_FILE", str(counts))
    with ActorSystem.open(journal) as system:
        result = system.ref("fulfil-o-1").result(timeout=10)
    assert result == {"order": "o-1", "shipment": "shipped-res-o-1"}
    assert counts.read_text().splitlines() == [
        "reserve fulfil-o-1/1",
        "ship fulfil-o-1/2",  # killed mid-step: run again, same idempotency key
        "ship fulfil-o-1/2",
    ]
    assert fulfil.name == "tests.actors._workflows:fulfil"


@activity
def step_a() -> str:
    return "a"


@activity
def step_b() -> str:
    return "b"


def test_changed_workflow_code_fails_the_run_with_non_determinism_error(
    path: str, clock: ManualClock
) -> None:
    @workflow(name="tests.changing")
    async def original(ctx: WorkflowContext) -> str:
        first = await ctx.call(step_a)
        await ctx.receive("go")
        return str(first)

    with ActorSystem.open(path, clock=clock) as system:
        ref = system.spawn(original, id="changing")
        assert ref.status() is RunStatus.RUNNING
        # close() lets step_a finish and records it before it returns

    @workflow(name="tests.changing")
    async def changed(ctx: WorkflowContext) -> str:
        first = await ctx.call(step_b)
        await ctx.receive("go")
        return str(first)

    with ActorSystem.open(path, clock=clock) as system:
        ref = system.ref("changing")
        # Waiting on a signal, the run stays passive until a message replays it.
        with pytest.raises(RunFinishedError):
            ref.send("go")
        with pytest.raises(WorkflowFailedError) as raised:
            ref.result(timeout=5)
        assert ref.status() is RunStatus.FAILED
    cause = raised.value.__cause__
    assert isinstance(cause, NonDeterminismError)
    assert (cause.workflow_id, cause.seq) == ("changing", 1)
    assert cause.recorded.name == "step_a"
    assert cause.requested.name == "step_b"
    assert raised.value.error.type == "NonDeterminismError"


def test_changed_code_that_ends_before_its_history_does_fails_the_run_at_that_seq(
    path: str, clock: ManualClock
) -> None:
    @workflow(name="tests.shortened")
    async def original(ctx: WorkflowContext) -> str:
        first = await ctx.call(step_a)
        await ctx.receive("go")
        return str(first)

    with ActorSystem.open(path, clock=clock) as system:
        system.spawn(original, id="shortened")  # close() records step_a

    @workflow(name="tests.shortened")
    async def shortened(ctx: WorkflowContext) -> str:
        return str(await ctx.call(step_a))  # no longer waits for "go"

    with ActorSystem.open(path, clock=clock) as system:
        ref = system.ref("shortened")
        with pytest.raises(RunFinishedError):
            ref.send("go")  # replays first: the code ends where history goes on
        with pytest.raises(WorkflowFailedError) as raised:
            ref.result(timeout=5)
    cause = raised.value.__cause__
    assert isinstance(cause, NonDeterministicEndError)
    assert (cause.workflow_id, cause.seq) == ("shortened", 2)
    assert cause.recorded == Command(CommandKind.RECEIVE, "go")
    assert cause.requested == RunEnd(RunStatus.COMPLETED)
    assert "the end of the run (completed)" in str(cause)


def test_non_determinism_in_a_recorded_value_cannot_be_caught_by_the_workflow(
    path: str, clock: ManualClock
) -> None:
    @workflow(name="tests.changing-value")
    async def original(ctx: WorkflowContext) -> str:
        ctx.now()
        await ctx.receive("go")
        return "done"

    with ActorSystem.open(path, clock=clock) as system:
        system.spawn(original, id="changing-value")

    @workflow(name="tests.changing-value")
    async def changed(ctx: WorkflowContext) -> str:
        try:
            ctx.random()
        except NonDeterminismError:
            return "swallowed"
        return "went on"

    with ActorSystem.open(path, clock=clock) as system:
        ref = system.ref("changing-value")
        with pytest.raises(RunFinishedError):
            ref.send("go")  # a message replays the passive run
        with pytest.raises(WorkflowFailedError) as raised:
            ref.result(timeout=5)
    assert isinstance(raised.value.__cause__, NonDeterminismError)


@activity
def make_list() -> list[int]:
    return [1, 2, 3]


@workflow(name="tests.recovery.mutating")
async def mutating(ctx: WorkflowContext) -> list[object]:
    items = await ctx.call(make_list)
    first = items.pop(0)
    payload = await ctx.receive("go")
    payload.append(9)
    second = await ctx.receive("go")
    return [first, items, payload, second]


def test_a_workflow_mutating_its_results_does_not_change_its_history(
    path: str, clock: ManualClock
) -> None:
    with ActorSystem.open(path, clock=clock) as system:
        ref = system.spawn(mutating, id="mutating")
        ref.send("go", [1])
    with ActorSystem.open(path, clock=clock) as system:
        ref = system.ref("mutating")
        ref.send("go", [2])
        assert ref.result(timeout=5) == [1, [2, 3], [1, 9], [2]]
