"""A SupervisedRef names a child by its path and reaches whichever incarnation
runs now, across restarts of the child and of the supervisors above it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import pykka
import pytest

import supervision._refs
from supervision import (
    Backoff,
    ChildSpec,
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


def _slow_start(spec: ChildSpec, delay: float) -> ChildSpec:
    """``spec`` whose factory takes ``delay`` seconds before it starts the child."""

    def start() -> pykka.ActorRef[Any]:
        time.sleep(delay)
        return spec.start()

    return attrs.evolve(spec, start=start)


def test_a_child_still_being_started_by_a_nested_supervisor_may_be_told_at_once(
    start: Start,
) -> None:
    log: list[str] = []
    root = start([])
    nested = Supervisor.child_spec("sub", [_slow_start(probe("a", log), 0.2)])
    root.start_child(nested)  # returns before "sub" starts "a"
    a = root.child("sub", "a")
    assert a.current() is None

    a.tell(Note("told at once"))  # waits for the first incarnation

    assert urn(a)
    assert log == ["start a", "told at once"]


def test_refs_returned_by_start_child_are_told_at_once_every_time(
    start: Start,
) -> None:
    log: list[str] = []
    root = start([])
    for n in range(200):
        root.start_child(Supervisor.child_spec(f"sub-{n}", [probe(f"a-{n}", log)]))
        root.child(f"sub-{n}", f"a-{n}").tell(Note(f"note {n}"))
    root.wait_quiet(TIMEOUT)
    for n in range(200):
        urn(root.child(f"sub-{n}", f"a-{n}"))  # after its note
    assert {line for line in log if line.startswith("note")} == {
        f"note {n}" for n in range(200)
    }


def test_a_child_whose_first_start_never_comes_is_reported_after_a_bound_not_awaited_forever(  # noqa: E501
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervision._refs, "FIRST_START_WAIT", 0.2)
    release = threading.Event()
    root = start([])
    blocked = attrs.evolve(
        probe("a"), start=lambda: release.wait(TIMEOUT) and probe("a").start()
    )
    root.start_child(Supervisor.child_spec("sub", [blocked]))
    began = time.monotonic()

    with pytest.raises(ChildUnavailableError, match="first incarnation has not"):
        root.child("sub", "a").tell(PING)

    assert time.monotonic() - began < TIMEOUT / 2
    release.set()
    assert urn(root.child("sub", "a"))


def test_a_child_that_cannot_start_ends_a_tell_with_the_trees_failure_not_a_hang(
    start: Start,
) -> None:
    def broken() -> pykka.ActorRef[Any]:
        raise RuntimeError("no database")

    root = start([], SupervisorFlags(max_restarts=1, period=60.0))
    spec = Supervisor.child_spec("sub", [attrs.evolve(probe("a"), start=broken)])
    root.start_child(spec)  # "sub" fails in its on_start, twice: the root gives up
    began = time.monotonic()

    with pytest.raises(ChildUnavailableError, match=r"stopped after.*no database"):
        root.child("sub", "a").tell(PING)

    assert time.monotonic() - began < TIMEOUT / 2
