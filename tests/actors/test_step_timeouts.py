"""Step timeouts: start-to-close bounds an attempt, schedule-to-close the whole step."""

from __future__ import annotations

import asyncio
import math
import pickle
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from actors import (
    ActivityInfo,
    ActorSystem,
    DefinitionError,
    ManualClock,
    RetryPolicy,
    StepFailed,
    StepTimeoutError,
    WorkflowContext,
    activity,
    workflow,
)

executions: list[ActivityInfo] = []
threads: list[str] = []


class _Gate:
    """What a hanging attempt waits on; a fresh event per test, set at teardown."""

    event = threading.Event()


@pytest.fixture(autouse=True)
def _release_hanging_attempts() -> Iterator[None]:
    executions.clear()
    threads.clear()
    _Gate.event = threading.Event()
    yield
    _Gate.event.set()


def _hang() -> str:
    _Gate.event.wait(timeout=5)
    return "too late"


@workflow
async def call(ctx: WorkflowContext, step: str) -> Any:
    """Call the step of this module named ``step``; a failure becomes a tuple."""
    try:
        return await ctx.call(globals()[step])
    except StepFailed as failed:
        return failed.attempts, failed.error.type, failed.error.message


# -- start-to-close ----------------------------------------------------------------


@activity(retry=RetryPolicy(max_attempts=3, initial_interval=0.5), start_to_close=0.05)
def hangs_once() -> str:
    info = activity.info()
    executions.append(info)
    threads.append(threading.current_thread().name)
    if info.attempt == 1:
        return _hang()
    return f"done on attempt {info.attempt}"


def test_a_hanging_sync_step_times_out_and_is_retried_with_the_same_key(
    system: ActorSystem, clock: ManualClock
) -> None:
    ref = system.spawn(call, "hangs_once", id="hangs-once")
    assert ref.result(timeout=5) == "done on attempt 2"
    assert [info.attempt for info in executions] == [1, 2]
    assert {info.idempotency_key for info in executions} == {"hangs-once/1"}
    assert {info.time_limit for info in executions} == {0.05}
    assert clock.sleeps == [0.5]
    assert threads == [
        "chronik-step hangs-once/1 attempt 1",
        "chronik-step hangs-once/1 attempt 2",
    ]
    # The abandoned first attempt finishes late; its "too late" is dropped.
    [abandoned] = [t for t in threading.enumerate() if t.name == threads[0]]
    _Gate.event.set()
    abandoned.join(timeout=5)
    assert not abandoned.is_alive()
    assert system.ref("hangs-once").result(timeout=5) == "done on attempt 2"


@activity(retry=RetryPolicy(max_attempts=1), timeout=0.05)
def always_hangs() -> str:
    executions.append(activity.info())
    return _hang()


def test_a_sync_step_past_its_last_attempt_fails_with_a_start_to_close_timeout(
    system: ActorSystem,
) -> None:
    attempts, kind, message = system.spawn(call, "always_hangs", id="hangs").result(
        timeout=5
    )
    assert (attempts, kind) == (1, "StepTimeoutError")
    assert "start-to-close timeout of 0.05 s" in message
    assert len(executions) == 1


@activity(retry=RetryPolicy(max_attempts=1))
async def raises_its_own_timeout() -> None:
    raise TimeoutError("the socket timed out")


def test_a_timeout_error_an_async_step_raises_itself_is_not_a_step_timeout(
    system: ActorSystem,
) -> None:
    result = system.spawn(call, "raises_its_own_timeout", id="own").result(timeout=5)
    assert result == (1, "TimeoutError", "the socket timed out")


# -- schedule-to-close ---------------------------------------------------------------


@activity(
    retry=RetryPolicy(max_attempts=10, initial_interval=1, backoff=1),
    schedule_to_close=2.5,
)
def always_fails() -> None:
    executions.append(activity.info())
    raise ConnectionError("the connection was refused")


def test_schedule_to_close_stops_retries_when_the_next_delay_would_not_fit(
    system: ActorSystem, clock: ManualClock
) -> None:
    attempts, kind, message = system.spawn(call, "always_fails", id="fails").result(
        timeout=5
    )
    # Attempt 3 fails after 2 s of retry delays; a third delay would end at 3 s.
    assert (attempts, kind) == (3, "StepTimeoutError")
    assert "schedule-to-close timeout of 2.5 s" in message
    assert "ConnectionError: the connection was refused" in message
    assert clock.sleeps == [1.0, 1.0]
    assert len(executions) == 3


@activity(schedule_to_close=0.1)
def hangs_within_a_budget() -> str:
    executions.append(activity.info())
    return _hang()


def test_schedule_to_close_cuts_a_hanging_attempt_short_and_is_final(
    system: ActorSystem, clock: ManualClock
) -> None:
    attempts, kind, message = system.spawn(
        call, "hangs_within_a_budget", id="budget"
    ).result(timeout=5)
    assert (attempts, kind) == (1, "StepTimeoutError")
    assert "schedule-to-close timeout of 0.1 s" in message
    assert clock.sleeps == []
    [info] = executions
    assert info.time_limit is not None
    assert 0 < info.time_limit <= 0.1


@activity(
    retry=RetryPolicy(max_attempts=10, initial_interval=1, backoff=1),
    start_to_close=0.05,
    schedule_to_close=1.5,
)
def hangs_each_attempt() -> str:
    executions.append(activity.info())
    return _hang()


def test_start_to_close_timeouts_are_retried_until_schedule_to_close_is_used_up(
    system: ActorSystem, clock: ManualClock
) -> None:
    attempts, kind, message = system.spawn(
        call, "hangs_each_attempt", id="each"
    ).result(timeout=5)
    assert (attempts, kind) == (2, "StepTimeoutError")
    assert "schedule-to-close timeout of 1.5 s" in message
    assert "failed with StepTimeoutError" in message
    assert clock.sleeps == [1.0]
    assert [info.time_limit for info in executions] == [0.05, 0.05]


@activity(schedule_to_close=0.05)
async def sleeps_past_the_budget() -> str:
    await asyncio.sleep(1)
    return "too late"


def test_an_async_step_past_its_schedule_to_close_is_cancelled_for_good(
    system: ActorSystem,
) -> None:
    attempts, kind, message = system.spawn(
        call, "sleeps_past_the_budget", id="async-budget"
    ).result(timeout=5)
    assert (attempts, kind) == (1, "StepTimeoutError")
    assert "schedule-to-close" in message


# -- definitions and the error -------------------------------------------------------


def _step() -> None: ...


def test_timeout_is_the_older_name_of_start_to_close() -> None:
    step = activity(timeout=2)(_step)
    assert step.start_to_close == step.timeout == 2.0
    assert step.schedule_to_close is None
    both = activity(start_to_close=1, schedule_to_close=30)(_step)
    assert (both.timeout, both.schedule_to_close) == (1.0, 30.0)


def test_bad_timeouts_of_an_activity_list_every_problem() -> None:
    with pytest.raises(DefinitionError) as raised:
        activity(start_to_close=0, schedule_to_close="1m", timeout=5)(_step)  # type: ignore[call-overload]
    problems = raised.value.problems
    assert len(problems) == 3
    assert "pass only start_to_close" in problems[0]
    assert "start_to_close=0 must be seconds > 0" in problems[1]
    assert "schedule_to_close='1m' must be seconds > 0" in problems[2]


@pytest.mark.parametrize(
    ("keyword", "start_to_close"), [("start_to_close", 10), ("timeout", 10)]
)
def test_a_schedule_to_close_below_start_to_close_is_a_definition_error(
    keyword: str, start_to_close: float
) -> None:
    options: dict[str, Any] = {keyword: start_to_close}
    with pytest.raises(DefinitionError) as raised:
        activity(schedule_to_close=5, **options)(_step)
    [problem] = raised.value.problems
    assert f"schedule_to_close=5 is below {keyword}=10" in problem


@pytest.mark.parametrize("value", [-1, 0, math.inf, math.nan, True, "5s"])
def test_a_timeout_must_be_a_finite_positive_number(value: Any) -> None:
    with pytest.raises(DefinitionError, match="must be seconds > 0"):
        activity(schedule_to_close=value)(_step)


@pytest.mark.parametrize(
    "error",
    [
        StepTimeoutError("charge", 0.05),
        StepTimeoutError("charge", 2.5, "schedule_to_close"),
        StepTimeoutError("charge", 2.5, "schedule_to_close", "ConnectionError: no"),
    ],
)
def test_a_step_timeout_error_pickles_with_its_kind(error: StepTimeoutError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is StepTimeoutError
    assert (copy.step, copy.timeout, copy.kind, copy.cause) == (
        error.step,
        error.timeout,
        error.kind,
        error.cause,
    )
    assert str(copy) == str(error)
