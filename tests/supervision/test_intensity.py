"""Restart intensity: past max_restarts in period, a supervisor stops its children
and fails to its parent; at the root, on_escalate gets the cause."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supervision import (
    ChildUnavailableError,
    ManualClock,
    RestartIntensityError,
    Supervisor,
    SupervisorFlags,
    SupervisorRef,
)
from tests.supervision._support import (
    TIMEOUT,
    Crash,
    Escalations,
    assert_stops_then_starts,
    inject,
    probe,
    statuses,
    urn,
)

Start = Callable[..., SupervisorRef]


def test_more_restarts_than_allowed_within_the_period_escalate_from_the_root(
    start: Start,
) -> None:
    log: list[str] = []
    escalations = Escalations()
    root = start(
        [probe("a", log), probe("b", log)],
        SupervisorFlags(max_restarts=2, period=5.0),
        on_escalate=escalations,
    )
    for _ in range(2):
        inject(root, root.child("a"), Crash(ValueError("boom")))
    assert statuses(root)["a"] == ("running", 2)
    log.clear()

    inject(root, root.child("a"), Crash(ValueError("third")))

    cause = escalations.wait()
    assert isinstance(cause, RestartIntensityError)
    assert (cause.supervisor, cause.child_id, cause.max_restarts) == ("root", "a", 2)
    assert repr(cause.cause) == "ValueError('third')"
    assert "restart number 3 within 5 s" in str(cause)
    assert log == ["stop b"]  # a had already exited
    info = root.tree()
    assert not info.alive
    assert info.failure is not None
    assert info.failure.startswith("RestartIntensityError")
    with pytest.raises(ChildUnavailableError, match="stopped after RestartIntensity"):
        root.child("b").ask("ping", timeout=TIMEOUT)


def test_restarts_further_apart_than_the_period_never_escalate(
    start: Start, clock: ManualClock
) -> None:
    escalations = Escalations()
    root = start(
        [probe("a")],
        SupervisorFlags(max_restarts=2, period=5.0),
        on_escalate=escalations,
    )

    for _ in range(10):
        inject(root, root.child("a"), Crash(ValueError("boom")))
        clock.advance(2.6)

    assert statuses(root) == {"a": ("running", 10)}
    assert not escalations.causes


def test_a_restart_exactly_one_period_old_still_counts(
    start: Start, clock: ManualClock
) -> None:
    escalations = Escalations()
    root = start(
        [probe("a")],
        SupervisorFlags(max_restarts=1, period=5.0),
        on_escalate=escalations,
    )
    inject(root, root.child("a"), Crash(ValueError("one")))

    clock.advance(5.0)
    inject(root, root.child("a"), Crash(ValueError("two")))

    assert isinstance(escalations.wait(), RestartIntensityError)


def test_max_restarts_zero_escalates_on_the_first_failure(start: Start) -> None:
    escalations = Escalations()
    root = start([probe("a")], SupervisorFlags(max_restarts=0), on_escalate=escalations)

    inject(root, root.child("a"), Crash(ValueError("boom")))

    assert isinstance(escalations.wait(), RestartIntensityError)


def test_a_nested_supervisor_that_gives_up_is_restarted_by_its_parent_afresh(
    start: Start,
) -> None:
    log: list[str] = []
    sub = Supervisor.child_spec(
        "sub", [probe("x", log), probe("y", log)], SupervisorFlags(max_restarts=1)
    )
    root = start([probe("a", log), sub])
    x = root.child("sub", "x")
    inject(root, x, Crash(ValueError("one")))
    assert statuses(root, "sub") == {"x": ("running", 1), "y": ("running", 0)}
    log.clear()

    inject(root, x, Crash(ValueError("two")))

    assert_stops_then_starts(log, ["stop y"], ["start x", "start y"])
    assert statuses(root) == {"a": ("running", 0), "sub": ("running", 1)}
    assert statuses(root, "sub") == {"x": ("running", 0), "y": ("running", 0)}
    failure = root.tree().child("sub").last_failure
    assert failure is not None
    assert failure.startswith("RestartIntensityError('root/sub', 'x', 1")
    assert urn(x)  # the ref outlived its supervisor's restart


def test_escalation_climbs_to_the_root_when_every_level_gives_up(start: Start) -> None:
    escalations = Escalations()
    sub = Supervisor.child_spec("sub", [probe("x")], SupervisorFlags(max_restarts=0))
    root = start(
        [sub, probe("a")], SupervisorFlags(max_restarts=0), on_escalate=escalations
    )

    inject(root, root.child("sub", "x"), Crash(ValueError("deep")))

    cause = escalations.wait()
    assert isinstance(cause, RestartIntensityError)
    assert (cause.supervisor, cause.child_id) == ("root", "sub")
    assert isinstance(cause.cause, RestartIntensityError)
    assert (cause.cause.supervisor, cause.cause.child_id) == ("root/sub", "x")
    assert repr(cause.cause.cause) == "ValueError('deep')"
    assert not root.tree().alive
