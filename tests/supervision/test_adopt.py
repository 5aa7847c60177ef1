"""``adopt_child``: a child whose first incarnation its caller starts, with no
round trip to the supervisor's thread; from then on it is supervised as any
child (restarted by its restart type, listed in the tree, stopped at shutdown)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from supervision import (
    ChildSpec,
    ChildStartError,
    ChildUnavailableError,
    Restart,
    Strategy,
    SupervisorFlags,
    SupervisorRef,
    UnsupervisedActorError,
)
from tests.supervision._support import (
    PING,
    STOP,
    TIMEOUT,
    Crash,
    Plain,
    inject,
    probe,
    statuses,
    urn,
)

Start = Callable[..., SupervisorRef]
SIMPLE = SupervisorFlags(strategy=Strategy.SIMPLE_ONE_FOR_ONE)


def test_the_first_incarnation_starts_in_the_callers_thread(start: Start) -> None:
    root = start([], SIMPLE)
    threads: list[threading.Thread] = []
    spec = probe("run-1", restart=Restart.TRANSIENT)

    def factory() -> object:
        threads.append(threading.current_thread())
        return spec.start()

    actor = root.adopt_child(ChildSpec("run-1", factory, Restart.TRANSIENT))

    assert threads == [threading.current_thread()]
    assert actor.ask(PING, timeout=TIMEOUT)[0] == "run-1"
    root.wait_quiet(TIMEOUT)
    assert statuses(root) == {"run-1": ("running", 0)}


def test_an_adopted_child_that_fails_is_restarted_by_the_supervisor(
    start: Start,
) -> None:
    log: list[str] = []
    root = start([], SIMPLE)
    spec = probe("run-1", log, restart=Restart.TRANSIENT)
    first = root.adopt_child(spec)
    root.wait_quiet(TIMEOUT)
    child = root.child("run-1")
    assert urn(child) == first.actor_urn

    inject(root, child, Crash(ValueError("boom")))

    assert log == ["start run-1", "start run-1"]
    assert statuses(root) == {"run-1": ("running", 1)}
    assert urn(child) != first.actor_urn


def test_an_adopted_child_that_fails_in_on_start_at_once_is_restarted(
    start: Start,
) -> None:
    """Its exit may come before the supervisor handled the adoption: the
    adoption is sent first, so the exit is never lost."""
    log: list[str] = []
    root = start([], SIMPLE)
    spec = probe(
        "run-1", log, restart=Restart.TRANSIENT, start_errors=[ValueError("early")]
    )
    root.adopt_child(spec)
    root.wait_quiet(TIMEOUT)

    assert log == ["start run-1", "start run-1"]
    assert statuses(root) == {"run-1": ("running", 1)}


def test_an_adopted_transient_child_that_exits_normally_leaves_the_tree(
    start: Start,
) -> None:
    root = start([], SIMPLE)
    root.adopt_child(probe("run-1", restart=Restart.TRANSIENT))
    root.wait_quiet(TIMEOUT)

    inject(root, root.child("run-1"), STOP)

    assert statuses(root) == {}
    root.adopt_child(probe("run-1", restart=Restart.TRANSIENT))  # the id is free
    root.wait_quiet(TIMEOUT)
    assert statuses(root) == {"run-1": ("running", 0)}


def test_a_factory_that_raises_adds_nothing(start: Start) -> None:
    root = start([], SIMPLE)

    def broken() -> object:
        raise OSError("disk on fire")

    with pytest.raises(ChildStartError, match="disk on fire") as caught:
        root.adopt_child(ChildSpec("run-1", broken, Restart.TRANSIENT))
    root.wait_quiet(TIMEOUT)

    assert isinstance(caught.value.cause, OSError)
    assert statuses(root) == {}


def test_a_factory_that_returns_a_plain_actor_adds_nothing(start: Start) -> None:
    root = start([], SIMPLE)

    with pytest.raises(UnsupervisedActorError, match="Plain"):
        root.adopt_child(ChildSpec("run-1", Plain.start, Restart.TRANSIENT))
    root.wait_quiet(TIMEOUT)

    assert statuses(root) == {}


def test_a_taken_id_stops_the_adopted_incarnation(start: Start) -> None:
    log: list[str] = []
    root = start([], SIMPLE)
    root.start_child(probe("run-1", log, restart=Restart.TRANSIENT))
    root.wait_quiet(TIMEOUT)
    kept = urn(root.child("run-1"))

    # The refusal comes from the supervisor's thread: it may come before the
    # call returns (then it raises) or after (the incarnation it returned stops).
    refusal: ChildUnavailableError | None = None
    try:
        refused = root.adopt_child(probe("run-1", log, restart=Restart.TRANSIENT))
    except ChildUnavailableError as error:
        refusal = error
    else:
        assert refused.actor_stopped.wait(TIMEOUT)
    assert refusal is None or "could not adopt child 'run-1'" in str(refusal)
    root.wait_quiet(TIMEOUT)
    assert statuses(root) == {"run-1": ("running", 0)}
    assert urn(root.child("run-1")) == kept


def test_adopting_under_a_stopped_supervisor_is_a_clear_error(start: Start) -> None:
    root = start([], SIMPLE)
    root.stop(timeout=TIMEOUT)

    with pytest.raises(ChildUnavailableError, match="not running"):
        root.adopt_child(probe("run-1", restart=Restart.TRANSIENT))


def test_adopted_children_stop_with_their_supervisor(start: Start) -> None:
    log: list[str] = []
    root = start([], SIMPLE)
    actors = [
        root.adopt_child(probe(f"run-{i}", log, restart=Restart.TRANSIENT))
        for i in range(3)
    ]
    root.wait_quiet(TIMEOUT)

    root.stop(timeout=TIMEOUT)

    assert all(actor.actor_stopped.wait(TIMEOUT) for actor in actors)
    assert sorted(e for e in log if e.startswith("stop")) == [
        "stop run-0",
        "stop run-1",
        "stop run-2",
    ]
