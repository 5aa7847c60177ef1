"""The clock's additions for time skipping, and the toolkit's errors."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actors import ActorSystem, ManualClock
from actors.testing import (
    CrashSafetyError,
    FaultFreeRunError,
    InjectedCrash,
    NonDeterministicWorkflowError,
    StuckRunError,
)
from tests.testing._workflows import sleeper

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_manual_clock_tells_the_next_due_timer_and_advances_to_it(
    tmp_path: Path,
) -> None:
    clock = ManualClock(START)
    with ActorSystem.open(tmp_path / "journal", clock=clock) as system:
        assert clock.next_due() is None
        ref = system.spawn(sleeper, "2h", "1h", id="naps")
        clock.wait_for_timers(1)
        assert clock.next_due() == START + timedelta(hours=2)
        clock.advance_to(START + timedelta(hours=2))
        clock.wait_for_timers(1)
        assert clock.next_due() == START + timedelta(hours=3)
        clock.advance_to(START)  # never back
        assert clock.now() == START + timedelta(hours=2)
        clock.advance_to(START + timedelta(hours=3))
        assert ref.result(timeout=5)[-1] == (START + timedelta(hours=3)).isoformat()
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.advance_to(datetime(2027, 1, 1))


@pytest.mark.parametrize(
    "error",
    [
        StuckRunError("workflow run 'r'", 1.5, "a signal on 'go' (seq 1)"),
        CrashSafetyError("r", "FaultPlan()", "  life 1: ...", "it broke", "  ..."),
        FaultFreeRunError("r", "it hung", "  life 1: ..."),
        NonDeterministicWorkflowError("r", "FaultPlan()", "  ...", "it differed", "."),
        InjectedCrash("process 1 crashed"),
    ],
    ids=type,
)
def test_the_toolkits_errors_pickle_and_say_what_to_do(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert str(error)
