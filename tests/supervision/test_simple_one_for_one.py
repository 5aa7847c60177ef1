"""simple_one_for_one: many alike children added at run time, each restarted on
its own; a child that will not restart leaves the supervisor and the tree, and a
shutdown stops every child at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pykka
import pytest

from supervision import (
    Backoff,
    ChildUnavailableError,
    ManualClock,
    Restart,
    RestartIntensityError,
    Strategy,
    Supervisor,
    SupervisorFlags,
    SupervisorRef,
)
from tests.supervision._support import (
    PING,
    STOP,
    TIMEOUT,
    Crash,
    Escalations,
    inject,
    probe,
    statuses,
    urn,
)

Start = Callable[..., SupervisorRef]
SIMPLE = SupervisorFlags(strategy=Strategy.SIMPLE_ONE_FOR_ONE)


def test_a_failed_child_restarts_alone_and_its_siblings_keep_running(
    start: Start,
) -> None:
    log: list[str] = []
    root = start([], SIMPLE)
    for child_id in "abc":
        root.start_child(probe(child_id, log))
    root.wait_quiet()
    others = {i: urn(root.child(i)) for i in "ac"}
    log.clear()

    inject(root, root.child("b"), Crash(ValueError("boom")))

    assert log == ["start b"]
    assert statuses(root) == {
        "a": ("running", 0),
        "b": ("running", 1),
        "c": ("running", 0),
    }
    assert {i: urn(root.child(i)) for i in "ac"} == others
    assert root.tree().strategy is Strategy.SIMPLE_ONE_FOR_ONE


def test_a_transient_child_that_exits_normally_leaves_the_tree_and_its_id_is_free(
    start: Start,
) -> None:
    root = start([], SIMPLE)
    run = root.start_child(probe("run-1", restart=Restart.TRANSIENT))
    root.start_child(probe("other"))
    root.wait_quiet()

    inject(root, run, STOP)

    assert statuses(root) == {"other": ("running", 0)}
    with pytest.raises(ChildUnavailableError, match="no child lives at this path"):
        run.ask(PING, timeout=0.05)
    again = root.start_child(probe("run-1", restart=Restart.TRANSIENT))
    root.wait_quiet()
    assert urn(again)
    assert statuses(root) == {"other": ("running", 0), "run-1": ("running", 0)}


def test_a_transient_child_that_fails_is_restarted(start: Start) -> None:
    root = start([], SIMPLE)
    run = root.start_child(probe("run-1", restart=Restart.TRANSIENT))
    root.wait_quiet()

    inject(root, run, Crash(ValueError("boom")))

    assert statuses(root) == {"run-1": ("running", 1)}


@pytest.mark.parametrize("ending", [STOP, Crash(ValueError("boom"))])
def test_a_temporary_child_is_removed_whatever_ended_it(
    start: Start, ending: object
) -> None:
    root = start([], SIMPLE)
    root.start_child(probe("tmp", restart=Restart.TEMPORARY))
    root.start_child(probe("other"))
    root.wait_quiet()

    inject(root, root.child("tmp"), ending)

    assert statuses(root) == {"other": ("running", 0)}


def test_too_many_restarts_across_children_stop_them_all_and_escalate(
    start: Start,
) -> None:
    escalations = Escalations()
    root = start(
        [],
        SupervisorFlags(strategy=Strategy.SIMPLE_ONE_FOR_ONE, max_restarts=1),
        on_escalate=escalations,
    )
    children = [root.start_child(probe(child_id)) for child_id in "abc"]
    root.wait_quiet()
    actors = [child.current() for child in children]

    inject(root, children[0], Crash(ValueError("one")))
    children[1].tell(Crash(ValueError("two")))  # the second restart in the period

    cause = escalations.wait()
    assert isinstance(cause, RestartIntensityError)
    assert (cause.child_id, repr(cause.cause)) == ("b", "ValueError('two')")
    assert all(actor is not None and not actor.is_alive() for actor in actors)
    info = root.tree()
    assert not info.alive
    assert info.children == ()


def test_a_nested_simple_one_for_one_supervisor_restarts_empty(start: Start) -> None:
    runs = Supervisor.child_spec("runs", [], SIMPLE)
    root = start([runs])
    nested = root.supervisor("runs")
    nested.start_child(probe("run-1"))
    root.wait_quiet()

    nested.stop()  # a normal exit: the permanent supervisor restarts
    root.wait_quiet()

    assert statuses(root, "runs") == {}
    assert root.tree().child("runs").restarts == 1
    assert root.child("runs", "run-1").current() is None


def test_backoff_delays_the_restart_of_a_child(
    start: Start, clock: ManualClock
) -> None:
    backoff = Backoff(initial=1.0, jitter=0.0)
    root = start(
        [], SupervisorFlags(strategy=Strategy.SIMPLE_ONE_FOR_ONE, backoff=backoff)
    )
    run = root.start_child(probe("run-1"))
    root.wait_quiet()

    inject(root, run, Crash(ValueError("boom")))
    assert statuses(root) == {"run-1": ("restarting", 0)}

    clock.advance(1.0)
    root.wait_quiet()
    assert statuses(root) == {"run-1": ("running", 1)}


def test_children_known_up_front_are_refused_with_the_fix() -> None:
    before = set(pykka.ActorRegistry.get_all())

    with pytest.raises(ValueError, match=r"starts with no children, not \['a'\].*"):
        Supervisor.child_spec("runs", [probe("a")], SIMPLE)
    with pytest.raises(ValueError, match=r"SupervisorRef\.start_child"):
        Supervisor.start((probe("a"),), SIMPLE)

    assert set(pykka.ActorRegistry.get_all()) == before  # nothing was started


def test_shutdown_stops_children_at_once_and_abandons_a_hung_one_after_its_timeout(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    release = threading.Event()
    root = start([], SIMPLE)
    root.start_child(probe("hung", log, shutdown=0.3, stop_hang=release))
    slow = [f"slow-{n}" for n in range(5)]
    for child_id in slow:  # one after the other, they would take 1.5 s
        root.start_child(probe(child_id, log, shutdown=TIMEOUT, stop_sleep=0.3))
    root.wait_quiet()
    log.clear()
    try:
        began = time.monotonic()
        root.stop()
        took = time.monotonic() - began

        assert sorted(log) == sorted(f"stop {i}" for i in ["hung", *slow])
        assert 0.3 <= took < 1.2, took  # the slowest one's time, not the sum
        messages = [record.getMessage() for record in caplog.records]
        abandoned = [message for message in messages if "abandoned" in message]
        assert abandoned == [
            "supervisor 'root': child 'hung' did not stop within 0.3 s and was "
            "abandoned (its thread may still run); make its handlers return, or "
            "raise ChildSpec.shutdown"
        ]
        assert root.tree().children == ()
    finally:
        release.set()
