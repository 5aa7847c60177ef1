"""The live tree as frozen data, and printed."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from supervision import (
    ChildInfo,
    ChildStatus,
    Restart,
    Strategy,
    Supervisor,
    SupervisorFlags,
    SupervisorInfo,
    SupervisorRef,
)
from tests.supervision._support import STOP, TIMEOUT, Crash, inject, probe

Start = Callable[..., SupervisorRef]


def small_tree(start: Start) -> SupervisorRef:
    sub = Supervisor.child_spec(
        "sub",
        [probe("x"), probe("y", restart=Restart.TRANSIENT)],
        SupervisorFlags(strategy=Strategy.ONE_FOR_ALL),
    )
    root = start([probe("a"), sub])
    inject(root, root.child("sub", "x"), Crash(ValueError("boom")))
    inject(root, root.child("sub", "y"), STOP)
    root.start_child(probe("d", restart=Restart.TEMPORARY))
    root.wait_quiet()
    return root


def test_tree_is_frozen_data_down_to_nested_children(start: Start) -> None:
    root = small_tree(start)

    info = root.tree()

    assert isinstance(info, SupervisorInfo)
    assert (info.name, info.strategy, info.alive, info.failure) == (
        "root",
        Strategy.ONE_FOR_ONE,
        True,
        None,
    )
    assert [c.id for c in info.children] == ["a", "sub", "d"]
    assert info.child("sub", "x") == ChildInfo(
        id="x",
        status=ChildStatus.RUNNING,
        restart=Restart.PERMANENT,
        restarts=1,
        last_failure="ValueError('boom')",
        abandoned=0,
        dynamic=False,
    )
    assert info.child("sub", "y").status is ChildStatus.STOPPED
    assert info.child("d").dynamic
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        info.alive = False  # type: ignore[misc]
    with pytest.raises(LookupError, match="has no child 'z'"):
        info.child("sub", "z")


def test_format_tree_prints_one_line_per_supervisor_and_child(start: Start) -> None:
    root = small_tree(start)

    assert root.format_tree() == "\n".join(
        [
            "root [one_for_one] alive",
            "├── a: running, permanent, 0 restarts",
            "├── sub [one_for_all]: running, permanent, 0 restarts",
            "│   ├── x: running, permanent, 1 restart, "
            "last failure: ValueError('boom')",
            "│   └── y: stopped, transient, 1 restart",
            "└── d: running, temporary, 0 restarts, dynamic",
        ]
    )


def test_the_supervisor_actor_answers_tree_through_a_pykka_proxy(start: Start) -> None:
    root = small_tree(start)
    actor = root.current()
    assert actor is not None

    assert actor.proxy().tree().get(timeout=TIMEOUT) == root.tree()


def test_a_nested_supervisor_ref_shows_its_own_subtree(start: Start) -> None:
    root = small_tree(start)

    sub = root.supervisor("sub").tree()

    assert sub.name == "root/sub"
    assert sub == root.tree().child("sub").supervisor


def test_the_tree_shows_a_nested_supervisor_again_after_the_one_above_it_restarted(
    start: Start,
) -> None:
    sub = Supervisor.child_spec("sub", [probe("x")])
    mid = Supervisor.child_spec(
        "mid", [sub, probe("w")], SupervisorFlags(max_restarts=1)
    )
    root = start([mid])
    root.supervisor("mid", "sub").stop()  # sub's second incarnation under mid
    root.wait_quiet()

    inject(root, root.child("mid", "w"), Crash(ValueError("boom")))  # mid gives up

    info = root.tree().child("mid")
    assert info.restarts == 1
    assert info.supervisor is not None
    assert info.supervisor.child("sub", "x").status is ChildStatus.RUNNING
