"""A SupervisedRef names a child by its path and reaches whichever incarnation
runs now, across restarts of the child and of the supervisors above it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pykka
import pytest

from supervision import (
    Backoff,
    ChildUnavailableError,
    ManualClock,
    Supervisor,
    SupervisorFlags,
    SupervisorRef,
)
from tests.supervision._support import (
    PING,
    TIMEOUT,
    Crash,
    Note,
    Plain,
    inject,
    probe,
    urn,
)

Start = Callable[..., SupervisorRef]


def test_a_ref_reaches_each_new_incarnation(start: Start) -> None:
    root = start([probe("a")])
    a = root.child("a")
    seen = {urn(a)}

    for _ in range(3):
        inject(root, a, Crash(ValueError("boom")))
        seen.add(urn(a))

    assert len(seen) == 4
    assert a == root.child("a")
    assert hash(a) == hash(root.child("a"))
    assert repr(a) == "<SupervisedRef root/a>"


def test_an_ask_queued_behind_a_crash_is_answered_by_the_next_incarnation(
    start: Start,
) -> None:
    root = start([probe("a")])
    a = root.child("a")
    before = urn(a)

    a.tell(Crash(ValueError("boom")))
    after = urn(a)  # queued behind the crash, never handled by that incarnation

    assert after != before


def test_a_ref_to_a_nested_child_outlives_restarts_of_its_supervisor(
    start: Start,
) -> None:
    sub = Supervisor.child_spec("sub", [probe("x")])
    root = start([sub])
    x = root.child("sub", "x")
    before = urn(x)

    root.supervisor("sub").stop()
    root.wait_quiet()

    assert urn(x) != before


def test_a_nested_supervisor_ref_adds_children_to_whichever_incarnation_runs(
    start: Start,
) -> None:
    sub = Supervisor.child_spec("sub", [probe("x")])
    root = start([sub])
    nested = root.supervisor("sub")
    root.supervisor("sub").stop()
    root.wait_quiet()

    added = nested.start_child(probe("d"))

    assert added.path == ("sub", "d")
    assert added.ask(PING, timeout=TIMEOUT)[0] == "d"
    info = root.tree().child("sub").supervisor
    assert info is not None
    assert [c.id for c in info.children] == ["x", "d"]


def test_children_added_at_run_time_are_gone_after_their_supervisor_restarts(
    start: Start,
) -> None:
    root = start([Supervisor.child_spec("sub")])
    added = root.supervisor("sub").start_child(probe("d"))

    root.supervisor("sub").stop()
    root.wait_quiet()

    with pytest.raises(ChildUnavailableError, match="no child lives at this path"):
        added.tell(PING)


def test_tell_to_a_child_between_incarnations_raises_unless_it_may_wait(
    start: Start,
) -> None:
    root = start(
        [probe("a")], SupervisorFlags(backoff=Backoff(initial=60.0, maximum=60.0))
    )
    a = root.child("a")
    inject(root, a, Crash(ValueError("boom")))

    with pytest.raises(ChildUnavailableError, match="it is restarting"):
        a.tell(PING)
    with pytest.raises(ChildUnavailableError, match="it is restarting"):
        a.tell(PING, wait=0.01)
    with pytest.raises(ChildUnavailableError, match="it is restarting"):
        a.ask(PING, timeout=0.01)


def test_tell_may_wait_for_the_next_incarnation(
    start: Start, clock: ManualClock
) -> None:
    log: list[str] = []
    root = start(
        [probe("a", log)], SupervisorFlags(backoff=Backoff(initial=1.0, jitter=0))
    )
    a = root.child("a")
    inject(root, a, Crash(ValueError("boom")))
    told = threading.Thread(target=lambda: a.tell(Note("got it"), wait=TIMEOUT))
    told.start()

    clock.advance(1.0)
    told.join(TIMEOUT)
    urn(a)  # answered after the told message

    assert log[-2:] == ["start a", "got it"]


def test_a_ref_to_a_terminated_child_fails_at_once(start: Start) -> None:
    root = start([probe("a")])
    a = root.child("a")

    root.terminate_child("a")

    with pytest.raises(ChildUnavailableError, match="no child lives at this path"):
        a.tell(PING)
    assert a.current() is None


def test_an_asked_handler_that_raises_actor_dead_error_is_not_retried(
    start: Start,
) -> None:
    root = start([probe("a")])
    a = root.child("a")
    before = urn(a)

    with pytest.raises(pykka.ActorDeadError, match="inner"):
        a.ask(Crash(pykka.ActorDeadError("inner")), timeout=TIMEOUT)

    assert urn(a) == before


def test_supervisor_ref_of_wraps_a_supervisor_started_directly() -> None:
    actor = Supervisor.start([probe("a")])
    try:
        root = SupervisorRef.of(actor)
        assert root.child("a").ask(PING, timeout=TIMEOUT)[0] == "a"
    finally:
        actor.stop()

    plain = Plain.start()
    try:
        with pytest.raises(TypeError, match="is not a supervisor"):
            SupervisorRef.of(plain)  # type: ignore[arg-type]
    finally:
        plain.stop()


def test_a_child_path_must_name_at_least_one_child(start: Start) -> None:
    root = start()

    with pytest.raises(ValueError, match="one or more non-empty ids"):
        root.child()
    with pytest.raises(ValueError, match="one or more non-empty ids"):
        root.child("a", "")
