"""Definitions are checked when they are made, with every problem at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from actors import (
    ContextError,
    DefinitionError,
    DurationError,
    RetryPolicy,
    activity,
    workflow,
)
from actors._duration import to_seconds


def test_a_workflow_that_is_not_async_and_takes_no_context_lists_both_problems() -> (
    None
):
    def not_async() -> None: ...

    with pytest.raises(DefinitionError) as raised:
        workflow(not_async)  # type: ignore[arg-type]
    assert len(raised.value.problems) == 2
    assert "not an 'async def' function" in str(raised.value)
    assert "workflow context as its first argument" in str(raised.value)


def test_a_retry_policy_with_bad_values_lists_every_problem() -> None:
    with pytest.raises(DefinitionError) as raised:
        RetryPolicy(max_attempts=0, initial_interval=-1, backoff=0.5)
    message = str(raised.value)
    assert len(raised.value.problems) == 3
    assert "max_attempts=0" in message
    assert "initial_interval=-1" in message
    assert "backoff=0.5" in message


def test_a_retry_policy_refuses_non_exception_types_as_non_retryable() -> None:
    with pytest.raises(DefinitionError, match="not an exception class"):
        RetryPolicy(non_retryable=(int,))  # type: ignore[arg-type]


def test_an_activity_with_a_bad_policy_and_timeout_lists_both_problems() -> None:
    def step() -> None: ...

    with pytest.raises(DefinitionError) as raised:
        activity(retry="often", timeout=-1)(step)  # type: ignore[call-overload]
    assert len(raised.value.problems) == 2
    assert "retry='often' is not a RetryPolicy" in str(raised.value)
    assert "timeout=-1" in str(raised.value)


def test_the_retry_delay_backs_off_up_to_the_max_interval() -> None:
    policy = RetryPolicy(initial_interval=1, backoff=3, max_interval=5)
    assert [policy.delay(n) for n in (1, 2, 3)] == [1, 3, 5]


def test_activity_info_outside_a_step_is_a_context_error() -> None:
    with pytest.raises(ContextError, match="only available inside a running step"):
        activity.info()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (5, 5.0),
        (0.5, 0.5),
        ("24h", 86400.0),
        ("7d", 604800.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        (timedelta(minutes=2), 120.0),
    ],
)
def test_durations_are_read_from_seconds_strings_and_timedeltas(
    value: Any, seconds: float
) -> None:
    assert to_seconds(value) == seconds


@pytest.mark.parametrize("value", [-1, "-5s", "soon", "5 parsecs", True, None])
def test_a_negative_or_unreadable_duration_is_a_duration_error(value: Any) -> None:
    with pytest.raises(DurationError):
        to_seconds(value)
