"""Cancellation: the workflow sees it at its await, may compensate, and replays it."""

from __future__ import annotations

import threading
import time

import pytest

from actors import (
    ActorSystem,
    ManualClock,
    RunCancelledError,
    RunStatus,
    WorkflowCancelled,
    WorkflowContext,
    activity,
    workflow,
)
from aggregates import CancelRequested, RunFinishedError, WorkflowRun
from tests.actors._ownership_support import as_crashed

calls: list[str] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@activity
def charge(order: str) -> str:
    calls.append(f"charge {order}")
    return f"ch-{order}"


@activity
def refund(charge_id: str) -> str:
    calls.append(f"refund {charge_id}")
    return f"refunded {charge_id}"


@workflow
async def compensating(ctx: WorkflowContext, order: str) -> str:
    charged = await ctx.call(charge, order)
    try:
        await ctx.receive("ship", timeout="7d")
    except WorkflowCancelled as cancelled:
        await ctx.call(refund, charged)
        return f"compensated: {cancelled.reason}"
    return "shipped"


@workflow
async def not_handling(ctx: WorkflowContext) -> None:
    await ctx.sleep("1d")


def _history(system: ActorSystem, workflow_id: str) -> WorkflowRun:
    run: WorkflowRun = system.history(workflow_id)
    return run


def test_a_cancelled_workflow_can_compensate_and_complete(
    journal_system: ActorSystem, clock: ManualClock
) -> None:
    ref = journal_system.spawn(compensating, "o-1", id="cancel-1")
    clock.wait_for_timers(1)  # waiting for "ship"
    ref.cancel("customer changed their mind")
    assert ref.result(timeout=5) == "compensated: customer changed their mind"
    assert calls == ["charge o-1", "refund ch-o-1"]
    run = _history(journal_system, "cancel-1")
    assert run.cancel_requested
    assert run.status is RunStatus.COMPLETED


def test_a_cancellation_the_workflow_does_not_catch_ends_the_run_cancelled(
    journal_system: ActorSystem, clock: ManualClock
) -> None:
    ref = journal_system.spawn(not_handling, id="cancel-2")
    clock.wait_for_timers(1)
    ref.cancel("no longer needed")
    with pytest.raises(RunCancelledError, match="no longer needed"):
        ref.result(timeout=5)
    assert ref.status() is RunStatus.CANCELLED
    clock.advance("2d")  # the abandoned timer's fire is ignored
    assert _history(journal_system, "cancel-2").status is RunStatus.CANCELLED


def test_cancelling_twice_is_a_no_op_and_a_finished_run_refuses(
    journal_system: ActorSystem, clock: ManualClock
) -> None:
    ref = journal_system.spawn(compensating, "o-3", id="cancel-3")
    clock.wait_for_timers(1)
    ref.cancel("first")
    ref.result(timeout=5)
    with pytest.raises(RunFinishedError):
        ref.cancel("second")
    stored = journal_system._app.repository.event_store.get("cancel-3")
    assert sum(isinstance(e, CancelRequested) for e in stored) == 1


def test_a_cancellation_is_replayed_at_the_same_await_in_a_fresh_system(
    journal_location: str, clock: ManualClock
) -> None:
    gate = threading.Event()

    @activity(name="tests.cancel.slow_refund")
    def slow_refund(charge_id: str) -> str:
        calls.append(f"refund {charge_id}")
        if len(calls) == 2:  # the abandoned system's attempt hangs
            gate.wait(5)
        return "ok"

    @workflow(name="tests.cancel.replayed")
    async def replayed(ctx: WorkflowContext, order: str) -> str:
        charged = await ctx.call(charge, order)
        try:
            await ctx.sleep("1d")
        except WorkflowCancelled:
            await ctx.call(slow_refund, charged)
            return "compensated"
        return "slept"

    abandoned = ActorSystem.open(journal_location, clock=clock)
    old = abandoned.spawn(replayed, "o-4", id="cancel-4")
    clock.wait_for_timers(1)
    old.cancel("stop")  # durable; the refund now hangs in the old system
    deadline = time.monotonic() + 5
    while len(calls) < 2:  # the old system's refund has started (and hangs)
        assert time.monotonic() < deadline, "the refund never started"
        time.sleep(0.001)
    as_crashed(abandoned)  # its process is gone, as far as other hosts see
    try:
        with ActorSystem.open(journal_location, clock=clock) as fresh:
            assert fresh.ref("cancel-4").result(timeout=5) == "compensated"
            history = fresh.history("cancel-4")
            assert [c.name for c in history.commands] == [
                "charge",
                None,
                "tests.cancel.slow_refund",
            ]
    finally:
        gate.set()
        # The stale owner's record of the refund is fenced out: it stops
        # driving the run, and its ref reads the end the fresh system recorded.
        assert old.result(timeout=5) == "compensated"
        assert abandoned.restarts == 0
        abandoned.close()
    assert calls == ["charge o-4", "refund ch-o-4", "refund ch-o-4"]
