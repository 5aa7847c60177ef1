from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest

from supervision import ManualClock, SupervisedActor, SupervisorRef, start_supervisor
from tests.supervision._support import TIMEOUT


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def start(clock: ManualClock) -> Iterator[Callable[..., SupervisorRef]]:
    """start_supervisor on the manual clock, returning once the tree is quiet
    (every child started); every tree is stopped afterwards, and no supervised
    actor may outlive the test."""
    before = set(pykka.ActorRegistry.get_by_class(SupervisedActor))
    roots: list[SupervisorRef] = []

    def start(*args: Any, **kwargs: Any) -> SupervisorRef:
        kwargs.setdefault("clock", clock)
        root = start_supervisor(*args, **kwargs)
        roots.append(root)
        root.wait_quiet(TIMEOUT)
        return root

    yield start
    for root in reversed(roots):
        root.stop(timeout=TIMEOUT)
    leaked = set(pykka.ActorRegistry.get_by_class(SupervisedActor)) - before
    assert not leaked, f"actors outlived their tree: {leaked}"
