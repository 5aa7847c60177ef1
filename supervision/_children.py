"""A supervisor's bookkeeping: one record per child, its children in start
order, the restart window, and which children a failure affects. Pure data and
functions, no threads.

A supervisor may hold many thousands of children (one per live workflow run), so
everything one message needs (find, add, remove, what changed since the tree last
saw it) costs the same with ten siblings as with ten thousand.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from typing import Any

import attrs

from supervision._info import ChildInfo, ChildStatus
from supervision._link import Link
from supervision._spec import ChildSpec, Strategy
from supervision._tree import Path

__all__ = ["Child", "Children", "RestartWindow", "affected"]


def _mark_changed(child: Child, _: attrs.Attribute[Any], value: Any) -> Any:
    """attrs hook, run before each field of ``child`` is set: its ``info()`` may
    change, so its supervisor republishes it, whichever code path set the field."""
    if child.owner is not None:
        child.owner.touch(child)
    return value


@attrs.define(eq=False, on_setattr=_mark_changed)
class Child:
    spec: ChildSpec
    path: Path
    dynamic: bool
    # Invariant: link is set exactly while status is RUNNING; token is set only
    # while status is RESTARTING and a RestartDue(token) or StartFailed(token)
    # is on its way.
    link: Link | None = None
    status: ChildStatus = ChildStatus.STOPPED
    incarnation: int = 0
    starts: int = 0
    last_failure: BaseException | None = None
    abandoned: int = 0
    token: int | None = None
    attempt: int = 0  # consecutive backoff pauses so far
    started_at: float = 0.0  # on the supervisor's clock
    supervisor_urn: str | None = None  # the running incarnation, if a Supervisor
    # Invariant: the Children holding this record, None once removed (a removed
    # record's changes are nobody's news).
    owner: Children | None = attrs.field(
        default=None, init=False, on_setattr=attrs.setters.NO_OP
    )

    @property
    def id(self) -> str:
        return self.spec.id

    def info(self) -> ChildInfo:
        return ChildInfo(
            id=self.spec.id,
            status=self.status,
            restart=self.spec.restart,
            restarts=max(0, self.starts - 1),
            last_failure=None if self.last_failure is None else repr(self.last_failure),
            abandoned=self.abandoned,
            dynamic=self.dynamic,
        )


class Children:
    """A supervisor's children by id, in start order, and what changed since the
    last ``take_changes`` (so that publishing the tree costs what changed, not
    the number of children)."""

    def __init__(self) -> None:
        # Invariant: dict order is start order (children added at run time last);
        # a restart keeps a child's place.
        self._by_id: dict[str, Child] = {}
        # Invariant: every member whose info() may differ from the last one taken,
        # in the order they first changed (so new members in start order).
        self._changed: dict[str, Child] = {}
        # Invariant: ids removed since the last take_changes (an id may also be
        # back in _by_id, re-added after its removal).
        self._gone: set[str] = set()

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, child_id: object) -> bool:
        return child_id in self._by_id

    def __iter__(self) -> Iterator[Child]:
        return iter(self._by_id.values())

    def __reversed__(self) -> Iterator[Child]:
        return reversed(self._by_id.values())

    def get(self, child_id: str) -> Child | None:
        return self._by_id.get(child_id)

    def holds(self, child: Child) -> bool:
        """``child`` itself is a member (not a record its id had before)."""
        return child.owner is self

    def ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    def add(self, child: Child) -> None:
        """Add ``child`` last; its id must be free."""
        assert child.id not in self._by_id, child.id
        self._by_id[child.id] = child
        child.owner = self
        self._changed[child.id] = child

    def remove(self, child: Child) -> None:
        del self._by_id[child.id]
        child.owner = None
        self._changed.pop(child.id, None)
        self._gone.add(child.id)

    def touch(self, child: Child) -> None:
        """``child`` changed: the next ``take_changes`` includes it."""
        self._changed.setdefault(child.id, child)

    def starting_at(self, child: Child) -> list[Child]:
        """``child`` and those started after it."""
        members = iter(self._by_id.values())
        return list(itertools.dropwhile(lambda member: member is not child, members))

    def take_changes(self) -> tuple[frozenset[str], list[Child]]:
        """The ids removed and the members changed since the last call; apply the
        removals first (a re-added id then goes last, as here)."""
        gone, changed = frozenset(self._gone), list(self._changed.values())
        self._gone.clear()
        self._changed.clear()
        return gone, changed


def affected(strategy: Strategy, children: Children, failed: Child) -> list[Child]:
    """The children that restart when ``failed`` does, in start order."""
    if strategy is Strategy.ONE_FOR_ALL:
        return list(children)
    if strategy is Strategy.REST_FOR_ONE:
        return children.starting_at(failed)
    return [failed]


class RestartWindow:
    """OTP's restart intensity: at most ``max_restarts`` restarts in any
    ``period`` seconds (a restart ``period`` seconds old still counts)."""

    def __init__(self, max_restarts: int, period: float) -> None:
        self.max_restarts = max_restarts
        self.period = period
        self._times: deque[float] = deque()

    def add(self, now: float) -> bool:
        """Count a restart at ``now``; False when it is one too many."""
        self._times.append(now)
        while now - self._times[0] > self.period:
            self._times.popleft()
        return len(self._times) <= self.max_restarts
