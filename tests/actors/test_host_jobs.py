"""The host turns a step the instance asks for into the worker's job: a step
history holds already goes on from the attempt after its last recorded failure,
with the budget spent since it was scheduled and the rest of its backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from actors import RetryPolicy, activity
from actors._host import _job
from actors._instance import StepToRun

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@activity(retry=RetryPolicy(max_attempts=5, initial_interval=10.0, backoff=2.0))
def slow_retries() -> None: ...


def test_a_new_step_starts_at_attempt_one_with_its_whole_budget() -> None:
    job = _job("run-1", StepToRun(slow_retries, (), 3), T0)
    assert (job.first_attempt, job.spent, job.delay) == (1, 0.0, 0.0)
    assert job.idempotency_key == "run-1/3"


def test_a_step_with_two_failed_attempts_goes_on_with_the_third_after_its_backoff() -> (
    None
):
    # Attempt 2 failed 5 s ago; the policy waits 10 * 2**(2-1) = 20 s after it.
    step = StepToRun(
        slow_retries,
        (),
        1,
        attempts=2,
        scheduled_at=T0,
        last_failed_at=T0 + timedelta(seconds=25),
    )
    job = _job("run-1", step, T0 + timedelta(seconds=30))
    assert job.first_attempt == 3
    assert job.spent == 30.0
    assert job.delay == 15.0


def test_a_backoff_that_ran_out_while_the_process_was_down_is_not_waited_again() -> (
    None
):
    step = StepToRun(
        slow_retries, (), 1, attempts=1, scheduled_at=T0, last_failed_at=T0
    )
    job = _job("run-1", step, T0 + timedelta(hours=1))
    assert (job.first_attempt, job.delay, job.spent) == (2, 0.0, 3600.0)


def test_a_step_in_flight_at_a_crash_reruns_its_attempt_with_the_budget_spent() -> None:
    step = StepToRun(slow_retries, (), 1, attempts=0, scheduled_at=T0)
    job = _job("run-1", step, T0 + timedelta(seconds=7))
    assert (job.first_attempt, job.delay, job.spent) == (1, 0.0, 7.0)
