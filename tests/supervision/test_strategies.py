"""Strategies and restart types behave as in Erlang/OTP."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from supervision import (
    ChildStatus,
    DuplicateChildError,
    Restart,
    Strategy,
    Supervisor,
    SupervisorFlags,
    SupervisorRef,
    UnknownChildError,
)
from tests.supervision._support import (
    STOP,
    TIMEOUT,
    Crash,
    assert_stops_then_starts,
    inject,
    probe,
    statuses,
    urn,
)

Start = Callable[..., SupervisorRef]


def three(log: list[str], strategy: Strategy, start: Start) -> SupervisorRef:
    root = start([probe(i, log) for i in "abc"], SupervisorFlags(strategy=strategy))
    log.clear()
    return root


def test_one_for_one_restarts_only_the_failed_child(start: Start) -> None:
    log: list[str] = []
    root = three(log, Strategy.ONE_FOR_ONE, start)
    others = {i: urn(root.child(i)) for i in "ac"}

    inject(root, root.child("b"), Crash(ValueError("boom")))

    assert log == ["start b"]
    assert statuses(root) == {
        "a": ("running", 0),
        "b": ("running", 1),
        "c": ("running", 0),
    }
    assert {i: urn(root.child(i)) for i in "ac"} == others
    assert root.tree().child("b").last_failure == "ValueError('boom')"


def test_one_for_all_stops_the_others_in_reverse_order_then_restarts_them_all(
    start: Start,
) -> None:
    log: list[str] = []
    root = three(log, Strategy.ONE_FOR_ALL, start)

    inject(root, root.child("b"), Crash(ValueError("boom")))

    assert_stops_then_starts(
        log, ["stop c", "stop a"], ["start a", "start b", "start c"]
    )
    assert statuses(root) == {
        "a": ("running", 1),
        "b": ("running", 1),
        "c": ("running", 1),
    }
    assert root.tree().child("a").last_failure is None


def test_rest_for_one_restarts_the_failed_child_and_those_started_after_it(
    start: Start,
) -> None:
    log: list[str] = []
    root = three(log, Strategy.REST_FOR_ONE, start)
    first = urn(root.child("a"))

    inject(root, root.child("b"), Crash(ValueError("boom")))

    assert_stops_then_starts(log, ["stop c"], ["start b", "start c"])
    assert statuses(root) == {
        "a": ("running", 0),
        "b": ("running", 1),
        "c": ("running", 1),
    }
    assert urn(root.child("a")) == first


def test_permanent_child_is_restarted_after_a_normal_exit(start: Start) -> None:
    root = start([probe("a")])

    inject(root, root.child("a"), STOP)

    assert statuses(root) == {"a": ("running", 1)}
    assert root.tree().child("a").last_failure is None


def test_transient_child_restarts_after_a_failure_but_stays_stopped_after_a_normal_exit(
    start: Start,
) -> None:
    root = start([probe("a", restart=Restart.TRANSIENT)])

    inject(root, root.child("a"), Crash(RuntimeError("once")))
    assert statuses(root) == {"a": ("running", 1)}

    inject(root, root.child("a"), STOP)
    assert statuses(root) == {"a": ("stopped", 1)}
    assert not root.child("a").is_alive()


@pytest.mark.parametrize("ending", [STOP, Crash(ValueError("boom"))])
def test_temporary_child_leaves_the_supervisor_when_it_exits_for_any_reason(
    start: Start, ending: object
) -> None:
    root = start([probe("a", restart=Restart.TEMPORARY), probe("b")])

    inject(root, root.child("a"), ending)

    assert statuses(root) == {"b": ("running", 0)}


def test_one_for_all_restarts_a_stopped_transient_sibling_and_drops_temporary_ones(
    start: Start,
) -> None:
    log: list[str] = []
    root = start(
        [
            probe("t", log, restart=Restart.TRANSIENT),
            probe("tmp", log, restart=Restart.TEMPORARY),
            probe("p", log),
        ],
        SupervisorFlags(strategy=Strategy.ONE_FOR_ALL),
    )
    inject(root, root.child("t"), STOP)
    assert statuses(root)["t"] == ("stopped", 0)
    log.clear()

    inject(root, root.child("p"), Crash(ValueError("boom")))

    assert_stops_then_starts(log, ["stop tmp"], ["start t", "start p"])
    assert statuses(root) == {"t": ("running", 1), "p": ("running", 1)}


def test_children_added_at_run_time_follow_the_strategy_and_can_be_terminated(
    start: Start,
) -> None:
    log: list[str] = []
    root = start([probe("a", log)], SupervisorFlags(strategy=Strategy.REST_FOR_ONE))

    added = root.start_child(probe("d", log))
    root.wait_quiet()
    assert urn(added)
    log.clear()
    inject(root, root.child("a"), Crash(ValueError("boom")))

    assert_stops_then_starts(log, ["stop d"], ["start a", "start d"])
    root.terminate_child("d")
    assert log[-1] == "stop d"
    assert list(statuses(root)) == ["a"]
    assert [c.dynamic for c in root.tree().children] == [False]


def test_start_child_with_a_taken_id_is_refused_and_changes_nothing(
    start: Start,
) -> None:
    root = start([probe("a")])
    first = urn(root.child("a"))

    with pytest.raises(DuplicateChildError, match="already has a child 'a'"):
        root.start_child(probe("a"))

    assert urn(root.child("a")) == first
    assert statuses(root) == {"a": ("running", 0)}


def test_terminate_child_of_an_unknown_id_names_the_known_children(
    start: Start,
) -> None:
    root = start([probe("a"), probe("b")])

    with pytest.raises(UnknownChildError, match=r"no child 'x'.*\['a', 'b'\]"):
        root.terminate_child("x")


def test_a_terminated_child_is_gone_for_good(start: Start) -> None:
    root = start([probe("a"), probe("b")])

    root.terminate_child("a")

    assert [c.id for c in root.tree().children] == ["b"]
    assert root.child("a").current() is None
    assert ChildStatus.RUNNING is root.tree().child("b").status


def test_a_nested_supervisor_frees_the_ids_of_children_added_at_run_time_as_it_stops(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = start(
        [probe("a"), Supervisor.child_spec("runs", [probe("x")])],
        SupervisorFlags(strategy=Strategy.ONE_FOR_ALL),
    )
    runs = root.supervisor("runs")
    runs.start_child(probe("run-1"))
    root.wait_quiet()
    first = runs.current()
    assert first is not None
    # The first incarnation's thread finishes exiting only when told to.
    proceed, exited = threading.Event(), threading.Event()
    exit_ = Supervisor._on_supervision_exit

    def late_exit(self: Supervisor, reason: BaseException | None) -> None:
        if self.actor_urn == first.actor_urn:
            proceed.wait(TIMEOUT)
        exit_(self, reason)
        if self.actor_urn == first.actor_urn:
            exited.set()

    monkeypatch.setattr(Supervisor, "_on_supervision_exit", late_exit)

    inject(root, root.child("a"), Crash(ValueError("boom")))  # restarts runs
    runs.start_child(probe("run-1"))
    root.wait_quiet()
    proceed.set()
    assert exited.wait(TIMEOUT)

    assert urn(root.child("runs", "run-1"))
    assert statuses(root, "runs") == {"x": ("running", 0), "run-1": ("running", 0)}
