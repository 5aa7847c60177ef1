"""Children stop in reverse start order, nested supervisors included."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supervision import ChildUnavailableError, Supervisor, SupervisorRef
from tests.supervision._support import PING, TIMEOUT, assert_stops_then_starts, probe

Start = Callable[..., SupervisorRef]


def test_stopping_the_root_stops_children_in_reverse_start_order_depth_first(
    start: Start,
) -> None:
    log: list[str] = []
    sub = Supervisor.child_spec("sub", [probe("x", log), probe("y", log)])
    root = start([probe("a", log), sub, probe("b", log)])
    root.start_child(probe("c", log))
    root.wait_quiet()
    # Starts are asynchronous (each on_start runs in its child's thread), so only
    # their set is certain; stops are one after the other.
    assert sorted(log) == ["start a", "start b", "start c", "start x", "start y"]
    log.clear()

    root.stop()

    assert log == ["stop c", "stop b", "stop y", "stop x", "stop a"]
    info = root.tree()
    assert not info.alive
    assert info.failure is None
    assert {c.status.value for c in info.children} == {"stopped"}


def test_after_the_root_stopped_every_ref_says_the_tree_stopped(start: Start) -> None:
    sub = Supervisor.child_spec("sub", [probe("x")])
    root = start([probe("a"), sub])
    refs = [root.child("a"), root.child("sub", "x"), root.supervisor("sub"), root]

    root.stop()
    root.stop()  # twice is harmless

    for ref in refs:
        assert not ref.is_alive()
        with pytest.raises(ChildUnavailableError, match="tree 'root' stopped"):
            ref.ask(PING, timeout=TIMEOUT)
        with pytest.raises(ChildUnavailableError, match="tree 'root' stopped"):
            ref.tell(PING)


def test_a_restarted_nested_supervisor_stops_its_old_children_first(
    start: Start,
) -> None:
    log: list[str] = []
    sub = Supervisor.child_spec("sub", [probe("x", log), probe("y", log)])
    root = start([sub])
    log.clear()

    root.supervisor("sub").stop()  # a normal exit: the permanent sub restarts
    root.wait_quiet()

    assert_stops_then_starts(log, ["stop y", "stop x"], ["start x", "start y"])
    assert root.tree().child("sub").restarts == 1
