"""Runs: results, idempotent spawn, steps with retries, values, signals, timers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from actors import (
    ActivityInfo,
    ActorSystem,
    ManualClock,
    ReceiveTimeoutError,
    ResultTimeoutError,
    RetryPolicy,
    RunConflictError,
    RunStatus,
    StepFailed,
    StepTimeoutError,
    UnknownRunError,
    WorkflowContext,
    WorkflowFailedError,
    activity,
    workflow,
)
from aggregates import WorkflowRun

executions: list[ActivityInfo] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    executions.clear()


@activity
def double(value: int) -> int:
    executions.append(activity.info())
    return value * 2


@workflow
async def doubled_twice(ctx: WorkflowContext, value: int) -> int:
    once = await ctx.call(double, value)
    return int(await ctx.call(double, once))


def test_a_run_returns_its_result_and_reports_completed(
    journal_system: ActorSystem,
) -> None:
    ref = journal_system.spawn(doubled_twice, 3, id="double-3")
    assert ref.result(timeout=5) == 12
    assert ref.status() is RunStatus.COMPLETED
    assert [info.idempotency_key for info in executions] == [
        "double-3/1",
        "double-3/2",
    ]


def test_each_step_and_its_outcome_are_saved_in_one_commit(
    journal_system: ActorSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    saves: list[list[str]] = []
    save = journal_system._host.commit

    def counting(run: WorkflowRun, *children: WorkflowRun) -> None:
        saves.append([type(event).__name__ for event in run.pending_events])
        save(run, *children)

    monkeypatch.setattr(journal_system._host, "commit", counting)
    journal_system.spawn(doubled_twice, 1, id="double-1").result(timeout=5)
    # The next step's StepScheduled rides along: still one commit per step.
    assert saves == [
        ["Started"],
        ["StepScheduled", "StepCompleted", "StepScheduled"],
        ["StepCompleted", "Completed"],
    ]


def test_spawning_an_existing_id_with_equal_arguments_returns_the_same_run(
    journal_system: ActorSystem,
) -> None:
    first = journal_system.spawn(doubled_twice, 5, id="double-5")
    assert first.result(timeout=5) == 20
    again = journal_system.spawn(doubled_twice, 5, id="double-5")
    assert again.result(timeout=5) == 20
    assert len(executions) == 2


def test_spawning_an_existing_id_with_other_arguments_is_a_conflict(
    journal_system: ActorSystem,
) -> None:
    journal_system.spawn(doubled_twice, 5, id="double-x").result(timeout=5)
    with pytest.raises(RunConflictError, match="double-x") as raised:
        journal_system.spawn(doubled_twice, 6, id="double-x")
    assert "(5,)" in str(raised.value)
    assert "(6,)" in str(raised.value)


def test_system_ref_finds_a_run_by_id_and_refuses_an_unknown_id(
    journal_system: ActorSystem,
) -> None:
    journal_system.spawn(doubled_twice, 2, id="double-2").result(timeout=5)
    assert journal_system.ref("double-2").result(timeout=5) == 8
    with pytest.raises(UnknownRunError, match="no-such-run"):
        journal_system.ref("no-such-run")


def test_a_finished_run_is_found_by_id_after_reopening(
    journal_location: str, clock: ManualClock
) -> None:
    with ActorSystem.open(journal_location, clock=clock) as system:
        system.spawn(doubled_twice, 4, id="double-4").result(timeout=5)
    with ActorSystem.open(journal_location, clock=clock) as system:
        assert system.ref("double-4").result(timeout=5) == 16
        assert system.ref("double-4").status() is RunStatus.COMPLETED


# -- retries -------------------------------------------------------------------

flaky_failures: list[int] = []


@activity(retry=RetryPolicy(max_attempts=3, initial_interval=0.5, backoff=2.0))
def flaky(fail_times: int) -> str:
    info = activity.info()
    executions.append(info)
    if info.attempt <= fail_times:
        raise ConnectionError(f"attempt {info.attempt} lost the connection")
    return "ok"


@workflow
async def call_flaky(ctx: WorkflowContext, fail_times: int) -> str:
    try:
        return str(await ctx.call(flaky, fail_times))
    except StepFailed as failed:
        return f"compensated after {failed.attempts}: {failed.error.type}"


def test_a_failing_step_is_retried_with_backoff_and_the_same_idempotency_key(
    journal_system: ActorSystem, clock: ManualClock
) -> None:
    assert journal_system.spawn(call_flaky, 2, id="flaky-2").result(timeout=5) == "ok"
    assert [info.attempt for info in executions] == [1, 2, 3]
    assert {info.idempotency_key for info in executions} == {"flaky-2/1"}
    assert clock.sleeps == [0.5, 1.0]


def test_a_step_that_exhausts_its_retries_raises_step_failed_in_the_workflow(
    journal_system: ActorSystem,
) -> None:
    result = journal_system.spawn(call_flaky, 5, id="flaky-5").result(timeout=5)
    assert result == "compensated after 3: ConnectionError"
    assert len(executions) == 3


class CardDeclinedError(Exception):
    pass


@activity(retry=RetryPolicy(max_attempts=5, non_retryable=(CardDeclinedError,)))
def charge(amount: int) -> None:
    executions.append(activity.info())
    raise CardDeclinedError(f"card declined for {amount}")


@workflow
async def pay(ctx: WorkflowContext, amount: int) -> None:
    await ctx.call(charge, amount)


def test_a_non_retryable_error_fails_the_step_at_once_and_then_the_run(
    journal_system: ActorSystem,
) -> None:
    ref = journal_system.spawn(pay, 10, id="pay-10")
    with pytest.raises(WorkflowFailedError) as raised:
        ref.result(timeout=5)
    assert len(executions) == 1
    assert raised.value.error.type == "StepFailed"
    assert "card declined for 10" in raised.value.error.message
    assert ref.status() is RunStatus.FAILED


@activity(retry=RetryPolicy(max_attempts=2, initial_interval=0), timeout=0.02)
async def slow() -> str:
    executions.append(activity.info())
    await asyncio.sleep(1)
    return "too late"


@workflow
async def call_slow(ctx: WorkflowContext) -> str:
    try:
        return str(await ctx.call(slow))
    except StepFailed as failed:
        return failed.error.type


def test_an_async_step_past_its_timeout_is_cancelled_and_retried(
    journal_system: ActorSystem,
) -> None:
    result = journal_system.spawn(call_slow, id="slow").result(timeout=5)
    assert result == StepTimeoutError.__name__
    assert len(executions) == 2


# -- values, signals and timers --------------------------------------------------

noted: list[tuple[Any, ...]] = []


@activity
def note(*values: Any) -> None:
    noted.append(values)


@workflow
async def values_then_wait(ctx: WorkflowContext) -> list[Any]:
    values = [ctx.now(), str(ctx.uuid4()), ctx.random()]
    await ctx.call(note, *values)
    await ctx.receive("go")
    return values


def test_now_uuid_and_random_are_recorded_and_replayed_after_reopening(
    journal_location: str, clock: ManualClock
) -> None:
    noted.clear()
    with ActorSystem.open(journal_location, clock=clock) as system:
        system.spawn(values_then_wait, id="values")
        clock.advance("1h")  # replay must not read the clock again
    with ActorSystem.open(journal_location, clock=clock) as system:
        ref = system.ref("values")
        ref.send("go")
        assert tuple(ref.result(timeout=5)) == noted[0]
    assert len(noted) == 1
    assert noted[0][0] == clock.now() - timedelta(hours=1)


@workflow
async def collect(ctx: WorkflowContext, count: int) -> list[Any]:
    return [await ctx.receive("item") for _ in range(count)]


def test_signals_of_a_topic_are_consumed_in_the_order_they_were_acknowledged(
    journal_system: ActorSystem,
) -> None:
    ref = journal_system.spawn(collect, 3, id="collect")
    for item in ("a", "b", "c"):
        ref.send("item", item)
    assert ref.result(timeout=5) == ["a", "b", "c"]


def test_a_signal_acknowledged_before_close_is_delivered_after_reopening(
    journal_location: str, clock: ManualClock
) -> None:
    with ActorSystem.open(journal_location, clock=clock) as system:
        ref = system.spawn(collect, 2, id="collect-2")
        ref.send("item", 1)
        ref.send("item", 2, signal_id="second")
    with ActorSystem.open(journal_location, clock=clock) as system:
        assert system.ref("collect-2").result(timeout=5) == [1, 2]


def test_resending_a_signal_id_is_a_no_op(journal_system: ActorSystem) -> None:
    ref = journal_system.spawn(collect, 2, id="collect-dup")
    ref.send("item", "first", signal_id="s-1")
    ref.send("item", "first again", signal_id="s-1")
    ref.send("item", "second", signal_id="s-2")
    assert ref.result(timeout=5) == ["first", "second"]


@workflow
async def wait_a_week(ctx: WorkflowContext) -> float:
    started = ctx.now()
    await ctx.sleep("7d")
    return (ctx.now() - started).total_seconds()


def test_a_week_long_durable_sleep_ends_when_the_clock_advances(
    journal_system: ActorSystem, clock: ManualClock
) -> None:
    ref = journal_system.spawn(wait_a_week, id="week")
    clock.wait_for_timers(1)
    clock.advance("6d")
    with pytest.raises(ResultTimeoutError):
        ref.result(timeout=0.02)
    clock.advance("1d")
    assert ref.result(timeout=5) == 7 * 86400


def test_a_timer_pending_at_close_fires_after_reopening(
    journal_location: str, clock: ManualClock
) -> None:
    with ActorSystem.open(journal_location, clock=clock) as system:
        system.spawn(wait_a_week, id="week-reopen")
        clock.wait_for_timers(1)
    clock.advance("7d")  # no system is open: the timer is overdue on reopening
    with ActorSystem.open(journal_location, clock=clock) as system:
        assert system.ref("week-reopen").result(timeout=5) == 7 * 86400


@workflow
async def approve(ctx: WorkflowContext) -> str:
    try:
        decision = await ctx.receive("approval", timeout="2h")
    except ReceiveTimeoutError:
        return "timed out"
    return str(decision)


def test_a_receive_times_out_when_no_signal_arrives_in_time(
    journal_system: ActorSystem, clock: ManualClock
) -> None:
    ref = journal_system.spawn(approve, id="approve-late")
    clock.wait_for_timers(1)
    clock.advance("2h")
    assert ref.result(timeout=5) == "timed out"


def test_a_signal_before_the_deadline_wins_over_the_timeout(
    journal_system: ActorSystem, clock: ManualClock
) -> None:
    ref = journal_system.spawn(approve, id="approve-early")
    clock.wait_for_timers(1)
    ref.send("approval", "yes")
    assert ref.result(timeout=5) == "yes"
    clock.advance("3h")  # the stale deadline fires into a finished run: ignored
    assert ref.status() is RunStatus.COMPLETED


def test_spawn_many_starts_every_run_in_one_commit_and_is_idempotent(
    journal_system: ActorSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing = journal_system.spawn(doubled_twice, 1, id="many-1")
    existing.result(timeout=5)  # its own commits are done
    saves: list[list[str]] = []
    save = journal_system._host.commit

    def counting(run: WorkflowRun, *children: WorkflowRun) -> None:
        saves.append([r.id for r in (run, *children)])
        save(run, *children)

    monkeypatch.setattr(journal_system._host, "commit", counting)
    refs = journal_system.spawn_many(
        doubled_twice, [("many-1", [1]), ("many-2", [2]), ("many-3", [3])]
    )
    assert saves[0] == ["many-2", "many-3"]
    assert [ref.result(timeout=5) for ref in refs] == [4, 8, 12]
    assert refs[0].id == existing.id
    with pytest.raises(RunConflictError):
        journal_system.spawn_many(doubled_twice, [("many-4", [4]), ("many-2", [9])])
    with pytest.raises(ValueError, match="more than once"):
        journal_system.spawn_many(doubled_twice, [("many-5", [5]), ("many-5", [5])])
    with pytest.raises(UnknownRunError):
        journal_system.ref("many-4")  # nothing of a refused batch was written
