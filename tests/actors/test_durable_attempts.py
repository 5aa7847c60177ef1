"""Each failed attempt of a step is durable when it fails (it may share a
group commit), so the attempt count, the backoff and the schedule-to-close
budget carry on after a crash instead of starting over."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from actors import (
    ActorSystem,
    ManualClock,
    RetryPolicy,
    WorkflowContext,
    WorkflowFailedError,
    activity,
    workflow,
)
from tests.actors._attempts_child import MAX_ATTEMPTS, flaky_run
from tests.journal._subprocess import Child

TIMEOUT = 10.0
_gate = threading.Event()
_third_attempt = threading.Event()


@activity(retry=RetryPolicy(max_attempts=5, initial_interval=0.001))
def fails_twice_then_waits() -> str:
    attempt = activity.info().attempt
    if attempt <= 2:
        raise ValueError(f"attempt {attempt}")
    _third_attempt.set()
    assert _gate.wait(TIMEOUT)
    return "done"


@workflow(name="tests.attempts.patient")
async def patient(ctx: WorkflowContext) -> Any:
    return await ctx.call(fails_twice_then_waits)


def test_a_failed_attempt_is_recorded_while_the_step_is_still_being_retried(
    path: str, clock: ManualClock
) -> None:
    _gate.clear()
    _third_attempt.clear()
    with ActorSystem.open(path, clock=clock) as system:
        ref = system.spawn(patient, id="patient-1")
        assert _third_attempt.wait(TIMEOUT)
        step = _wait_for_attempts(system, "patient-1", 2)
        assert step.is_open  # attempt 3 still runs
        assert step.last_error is not None
        assert step.last_error.message == "attempt 2"
        _gate.set()
        assert ref.result(timeout=TIMEOUT) == "done"
        assert system.history("patient-1").commands[0].attempts == 2


def test_attempts_survive_a_sigkill_mid_retry_and_max_attempts_counts_them_all(
    tmp_path: Path,
) -> None:
    journal, side_file = str(tmp_path / "journal"), tmp_path / "attempts.txt"
    child = Child("tests.actors._attempts_child", journal, str(side_file))
    try:
        assert child.read_line(timeout=TIMEOUT) == "hanging"
    finally:
        child.kill()
    assert side_file.read_text().split() == ["1", "2", "3"]

    with ActorSystem.open(journal) as system:
        ref = system.ref("flaky-1")
        with pytest.raises(WorkflowFailedError) as failed:
            ref.result(timeout=TIMEOUT)
        step = system.history("flaky-1").commands[0]

    # Attempts 1 and 2 were recorded before the kill; attempt 3 never ended, so
    # it runs again, and attempt 4 is the last of max_attempts=4: not 3 + 4.
    assert side_file.read_text().split() == ["1", "2", "3", "3", "4"]
    assert step.attempts == MAX_ATTEMPTS
    assert "attempt 4 fails" in str(failed.value)
    assert flaky_run.name == "tests.attempts.flaky_run"


def _wait_for_attempts(system: ActorSystem, run_id: str, attempts: int) -> Any:
    deadline = threading.Event()
    for _ in range(int(TIMEOUT / 0.01)):
        commands = system.history(run_id).commands
        if commands and commands[0].attempts >= attempts:
            return commands[0]
        deadline.wait(0.01)
    raise AssertionError(f"{run_id} never recorded {attempts} failed attempts")
