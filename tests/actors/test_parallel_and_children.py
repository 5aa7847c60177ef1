"""ctx.gather and child workflows: parallel, durable, deterministic on replay."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from actors import (
    ActorSystem,
    ChildFailedError,
    ManualClock,
    RunCancelledError,
    RunConflictError,
    RunStatus,
    StepFailed,
    WorkflowCancelled,
    WorkflowContext,
    activity,
    workflow,
)
from aggregates import CommandKind

both_running = threading.Barrier(2, timeout=5)


@activity
def meet(name: str) -> str:
    both_running.wait()  # only returns if the other step runs at the same time
    return f"met {name}"


@activity
def fail_fast(name: str) -> str:
    raise ValueError(f"{name} is broken")


@activity
def echo(value: str) -> str:
    return value


@workflow
async def parallel(ctx: WorkflowContext) -> list[str]:
    results: list[str] = await ctx.gather(ctx.call(meet, "a"), ctx.call(meet, "b"))
    return results


@workflow
async def mixed(ctx: WorkflowContext) -> list[object]:
    results: list[object] = await ctx.gather(
        ctx.call(echo, "x"),
        ctx.call(fail_fast, "y"),
        ctx.receive("go"),
        return_exceptions=True,
    )
    return [r if isinstance(r, str) else type(r).__name__ for r in results]


@workflow
async def first_failure(ctx: WorkflowContext) -> str:
    try:
        await ctx.gather(ctx.call(echo, "ok"), ctx.call(fail_fast, "second"))
    except StepFailed as failed:
        return f"failed at seq {failed.seq}"
    return "no failure"


def test_gathered_steps_run_at_the_same_time_and_return_in_argument_order(
    system: ActorSystem,
) -> None:
    both_running.reset()
    assert system.spawn(parallel, id="gather-1").result(timeout=5) == [
        "met a",
        "met b",
    ]
    history = system.history("gather-1")
    assert [c.name for c in history.commands] == ["meet", "meet"]


def test_gather_with_return_exceptions_waits_for_a_signal_and_lists_errors(
    system: ActorSystem,
) -> None:
    ref = system.spawn(mixed, id="gather-2")
    ref.send("go", "signal")
    assert ref.result(timeout=5) == ["x", "StepFailed", "signal"]


def test_gather_raises_the_first_failure_in_argument_order(
    system: ActorSystem,
) -> None:
    assert system.spawn(first_failure, id="gather-3").result(timeout=5) == (
        "failed at seq 2"
    )


@workflow
async def child(ctx: WorkflowContext, value: str) -> str:
    await ctx.sleep("1h")
    return str(await ctx.call(echo, value.upper()))


@workflow
async def broken_child(ctx: WorkflowContext) -> str:
    return str(await ctx.call(fail_fast, "child"))


@workflow
async def parent(ctx: WorkflowContext) -> dict[str, object]:
    one = await ctx.spawn(child, "one")
    detached = await ctx.spawn(child, "two", id="detached-two", detached=True)
    try:
        await ctx.spawn(broken_child)
    except ChildFailedError as failed:
        error = failed.error.type
    return {"one": one, "detached": detached, "error": error}


def test_a_parent_awaits_children_and_sees_their_failures(
    system: ActorSystem, clock: ManualClock
) -> None:
    ref = system.spawn(parent, id="parent-1")
    clock.wait_for_timers(1)
    assert system.history("parent-1/1").parent_id == "parent-1"
    clock.advance("1h")
    clock.wait_for_timers(1)  # the detached child sleeps; the parent goes on
    result = ref.result(timeout=5)
    assert result == {"one": "ONE", "detached": "detached-two", "error": "StepFailed"}
    assert system.ref("detached-two").status() is RunStatus.RUNNING
    clock.advance("1h")
    assert system.ref("detached-two").result(timeout=5) == "TWO"
    kinds = [c.kind for c in system.history("parent-1").commands]
    assert kinds == [CommandKind.CHILD] * 3


def test_a_child_started_before_a_restart_is_awaited_after_it(
    path: str, clock: ManualClock
) -> None:
    with ActorSystem.open(path, clock=clock) as system:
        system.spawn(parent, id="parent-2")
        clock.wait_for_timers(1)
    clock.advance("1h")  # the child's timer is due while nothing runs
    with ActorSystem.open(path, clock=clock) as system:
        clock.advance("1h")
        result = system.ref("parent-2").result(timeout=5)
    assert result["one"] == "ONE"


@workflow
async def cancels_children(ctx: WorkflowContext) -> str:
    try:
        await ctx.spawn(child, "slow", id="slow-child")
    except WorkflowCancelled:
        return "parent cancelled"
    return "child finished"


def test_cancelling_a_parent_cancels_the_child_it_awaits(
    system: ActorSystem, clock: ManualClock
) -> None:
    ref = system.spawn(cancels_children, id="parent-3")
    clock.wait_for_timers(1)
    ref.cancel("order withdrawn")
    assert ref.result(timeout=5) == "parent cancelled"
    with pytest.raises(RunCancelledError, match="order withdrawn"):
        system.ref("slow-child").result(timeout=5)


@workflow
async def reuses_id(ctx: WorkflowContext) -> str:
    try:
        await ctx.spawn(child, "other", id="taken")
    except RunConflictError:
        return "conflict"
    return "no conflict"


def test_a_child_id_that_names_another_run_is_a_conflict_the_parent_sees(
    system: ActorSystem,
) -> None:
    system.spawn(child, "first", id="taken")
    assert system.spawn(reuses_id, id="parent-4").result(timeout=5) == "conflict"


@workflow
async def until(ctx: WorkflowContext) -> str:
    start = ctx.now()
    await ctx.sleep_until(start + timedelta(days=3))
    return str(ctx.now() - start)


def test_sleep_until_fires_at_the_given_time(
    system: ActorSystem, clock: ManualClock
) -> None:
    ref = system.spawn(until, id="until-1")
    clock.wait_for_timers(1)
    clock.advance("2d")
    assert ref.status() is RunStatus.RUNNING
    clock.advance("1d")
    assert ref.result(timeout=5) == "3 days, 0:00:00"
