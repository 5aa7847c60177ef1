"""``WorkflowTestEnv``: time skipping, restarts and reopening."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actors import RunStatus, WorkflowFailedError
from actors.testing import StuckRunError, WorkflowTestEnv
from actors.testing._audit import read_runs
from tests.testing._workflows import (
    ENTERED,
    GATE,
    RUNS,
    failing,
    held_then_now,
    order_flow,
    reset,
    sleeper,
    waiter,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset()
    GATE.clear()
    ENTERED.clear()
    yield
    GATE.set()  # never leave a step hanging


def test_a_week_long_sleep_ends_in_milliseconds_with_the_clock_on_its_due_time() -> (
    None
):
    began = time.monotonic()
    with WorkflowTestEnv() as env:
        ref = env.spawn(sleeper, "7d")
        assert env.result(ref) == [(START + timedelta(days=7)).isoformat()]
        assert env.now() == START + timedelta(days=7)
    assert time.monotonic() - began < 2.0


def test_time_jumps_to_each_next_due_timer_not_by_a_fixed_step() -> None:
    with WorkflowTestEnv() as env:
        ref = env.spawn(sleeper, "90s", "3d", "1ms")
        expected = [
            START + timedelta(seconds=90),
            START + timedelta(days=3, seconds=90),
            START + timedelta(days=3, seconds=90, milliseconds=1),
        ]
        assert env.result(ref) == [when.isoformat() for when in expected]


def test_time_stands_still_while_a_step_runs_even_if_another_run_sleeps() -> None:
    with WorkflowTestEnv() as env:
        sleeping = env.spawn(sleeper, "1h")
        working = env.spawn(held_then_now)
        assert ENTERED.wait(5)
        time.sleep(0.05)  # long enough for a skipper that ignored the step to jump
        GATE.set()
        assert env.result(working) == START.isoformat()
        assert env.result(sleeping) == [(START + timedelta(hours=1)).isoformat()]


def test_signals_and_timers_drive_a_run_with_a_child_to_its_end() -> None:
    with WorkflowTestEnv() as env:
        ref = env.spawn(order_flow, "o-1", 120, id="order-o-1")
        ref.send("approve", True)
        result = env.result(ref)
    # a day's sleep, the missing note's hour-long deadline, the child's hour
    assert result["at"] == (START + timedelta(days=1, hours=2)).isoformat()
    assert result["note"] is None
    assert result["sent"] == "sent-o-1"


def test_skip_fires_each_timer_at_its_own_time_and_stops_at_the_end() -> None:
    with WorkflowTestEnv() as env:
        ref = env.spawn(sleeper, "1h", "1h", "1h")
        env.skip("150m")
        assert env.now() == START + timedelta(minutes=150)
        assert env.status(ref) is RunStatus.RUNNING
        history = env.system.history(ref.id)
        fired = [c.outcome.at for c in history.commands if c.outcome is not None]
        assert START + timedelta(hours=2) in fired  # not at 2h30: each at its time
        env.skip("30m")  # returns once the last fire is recorded
        assert env.system.history(ref.id).status is RunStatus.COMPLETED


def test_a_run_waiting_on_a_signal_is_reported_stuck_with_what_it_waits_on() -> None:
    with WorkflowTestEnv() as env:
        ref = env.spawn(waiter)
        with pytest.raises(StuckRunError, match="a signal on 'go'") as stuck:
            env.result(ref, timeout=0.2)
        assert stuck.value.subject == f"workflow run {ref.id!r}"
        ref.send("go", 7)
        assert env.result(ref) == 7


def test_a_failed_run_raises_workflow_failed_error_from_result() -> None:
    with WorkflowTestEnv() as env:
        ref = env.spawn(failing)
        with pytest.raises(WorkflowFailedError, match="out of stock"):
            env.result(ref)


def test_a_restart_abandons_the_system_and_the_run_resumes_without_rerunning_recorded_steps(  # noqa: E501
    journal_location: str,
) -> None:
    with WorkflowTestEnv(journal_location) as env:
        ref = env.spawn(order_flow, "o-2", 80, id="order-o-2")
        ref.send("approve", True)
        env.skip("1h")  # reserved, and asleep for the day
        assert RUNS["reserve"] == 1
        old = env.system
        env.restart()
        assert env.system is not old
        result = env.result(ref)  # the old ref's id, in the new system
    assert RUNS == {"reserve": 1, "charge": 1}
    assert result["at"] == (START + timedelta(days=1, hours=2)).isoformat()
    assert "order-o-2" in read_runs(journal_location)  # a journal it was given stays


def test_a_restart_while_a_step_runs_loses_its_outcome_and_the_step_runs_again() -> (
    None
):
    with WorkflowTestEnv() as env:
        ref = env.spawn(held_then_now)
        assert ENTERED.wait(5)
        env.restart()  # the step is still running in the crashed system
        GATE.set()
        assert env.result(ref) == START.isoformat()
        history = env.system.history(ref.id)
    assert RUNS["held"] == 2
    assert history.commands[0].outcome is not None
    assert history.commands[0].outcome.value == "released"


def test_reopen_closes_cleanly_and_the_run_finishes_in_the_new_system() -> None:
    with WorkflowTestEnv() as env:
        ref = env.spawn(sleeper, "1d", "1d")
        env.skip("1d")
        env.reopen()
        assert env.result(ref) == [
            (START + timedelta(days=1)).isoformat(),
            (START + timedelta(days=2)).isoformat(),
        ]


def test_ids_default_to_the_function_name_and_a_count_and_the_journal_is_removed() -> (
    None
):
    with WorkflowTestEnv(start=START + timedelta(days=3)) as env:
        first, second = env.spawn(sleeper), env.spawn(sleeper)
        assert (first.id, second.id) == ("sleeper-1", "sleeper-2")
        assert env.result(first) == []
        path = Path(env.path)
        assert path.exists()
        assert env.now() == START + timedelta(days=3)
    assert not path.exists()
