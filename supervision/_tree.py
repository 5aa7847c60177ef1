"""State one supervision tree shares between its supervisors and its refs.

A root supervisor creates the ``Tree``; nested supervisors reach it through their
link. It holds, under one lock:

- the current incarnation at each child path, which is what makes a
  ``SupervisedRef`` outlive restarts (of the child, and of the supervisors above it);
- the snapshot each supervisor keeps up to date after every message (it sends
  only what the message changed), from which ``tree()`` assembles the whole tree
  without asking (or blocking) any actor;
- the tree's activity: failures and restarts still in progress.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from typing import Any

import attrs
import pykka

from supervision._clock import Clock
from supervision._errors import ChildUnavailableError
from supervision._info import ChildInfo, SupervisorInfo

__all__ = ["Activity", "Handle", "Path", "Publication", "Tree"]

Path = tuple[str, ...]


class Activity:
    """Counts work in progress: an incarnation starting (until its ``on_start``
    returned), an exit report or a restart message not yet handled.

    Invariant: whatever follows from a counted item (a restart, an escalation, a
    retried start) is counted before that item is done, so the count reaches zero
    only when the tree is quiet, pending backoff pauses aside.
    """

    def __init__(self) -> None:
        self._quiet = threading.Condition()
        self._busy = 0

    def begin(self) -> None:
        with self._quiet:
            self._busy += 1

    def end(self) -> None:
        with self._quiet:
            self._busy -= 1
            if self._busy == 0:
                self._quiet.notify_all()

    def wait_quiet(self, timeout: float) -> bool:
        with self._quiet:
            return self._quiet.wait_for(lambda: self._busy == 0, timeout)


@attrs.frozen
class Publication:
    """What changed in one supervisor since it last published.

    ``header`` is its ``SupervisorInfo`` without children; ``gone`` the ids of the
    children it removed, ``changed`` each new or changed child with the actor urn
    of its running incarnation if that is a supervisor. ``complete`` marks the
    first publication of an incarnation, which lists every child.
    """

    owner: str  # actor urn of the supervisor incarnation that publishes
    generation: int  # Tree.next_generation() when it was constructed
    header: SupervisorInfo
    complete: bool
    gone: frozenset[str]
    changed: tuple[tuple[ChildInfo, str | None], ...]


@attrs.define
class _Snapshot:
    owner: str
    generation: int
    header: SupervisorInfo  # without children
    # Invariant: the publisher's children in its start order, each with the urn
    # of its running incarnation if that is a supervisor (their info is nested
    # when the tree is read).
    children: dict[str, tuple[ChildInfo, str | None]]


class Tree:
    def __init__(self, name: str, clock: Clock) -> None:
        self.name = name
        self.clock = clock
        self.activity = Activity()
        self._changed = threading.Condition()
        # Invariant: a path is a key of _refs exactly while a child spec lives
        # there; its value is the incarnation that may take messages, or None.
        self._refs: dict[Path, pykka.ActorRef[Any] | None] = {}
        # Invariant: _starting holds the paths of _refs whose first incarnation
        # has not claimed its link yet (a child being started, not restarted).
        self._starting: set[Path] = set()
        # Invariant: _below[path] holds the ids of the paths opened directly
        # below path and not closed since (an entry only while there are some),
        # so closing a subtree costs its size, not the tree's.
        self._below: dict[Path, set[str]] = {}
        self._stopped: str | None = None
        # Invariant: the snapshot at a path is from the latest-constructed
        # supervisor there; closing the path drops it.
        self._snapshots: dict[Path, _Snapshot] = {}
        self._generations = itertools.count(1)

    def name_of(self, path: Path) -> str:
        return "/".join((self.name, *path))

    # -- incarnations -------------------------------------------------------------

    def open(self, path: Path) -> None:
        with self._changed:
            if path not in self._refs:
                self._refs[path] = None
                self._starting.add(path)
            if path:
                self._below.setdefault(path[:-1], set()).add(path[-1])

    def set(self, path: Path, ref: pykka.ActorRef[Any]) -> None:
        with self._changed:
            if path in self._refs:
                self._refs[path] = ref
                self._starting.discard(path)
                self._changed.notify_all()

    def clear_if(self, path: Path, ref: pykka.ActorRef[Any]) -> None:
        with self._changed:
            if self._refs.get(path) is ref:
                self._refs[path] = None

    def close_under(self, path: Path) -> None:
        """Forget ``path`` and every path below it: they will not come back."""
        with self._changed:
            siblings = self._below.get(path[:-1]) if path else None
            if siblings is not None:
                siblings.discard(path[-1])
                if not siblings:
                    del self._below[path[:-1]]
            closing = [path]
            while closing:
                below = closing.pop()
                self._refs.pop(below, None)
                self._starting.discard(below)
                self._snapshots.pop(below, None)
                closing.extend((*below, child) for child in self._below.pop(below, ()))
            self._changed.notify_all()

    def stop(self, reason: str) -> None:
        with self._changed:
            self._stopped = reason
            self._refs.clear()
            self._starting.clear()
            self._changed.notify_all()

    def current(self, path: Path) -> pykka.ActorRef[Any] | None:
        with self._changed:
            return self._refs.get(path)

    def wait(
        self,
        path: Path,
        stale: pykka.ActorRef[Any] | None,
        deadline: float,
        first_deadline: float | None = None,
    ) -> pykka.ActorRef[Any]:
        """The incarnation at ``path`` once there is one other than ``stale``,
        waiting until ``deadline`` (on ``time.monotonic``) at most, or until
        ``first_deadline`` if later while the child's first incarnation is
        still being started."""
        with self._changed:
            while True:
                ref = self._refs.get(path)
                if self._stopped is None and ref is not None and ref is not stale:
                    return ref
                until = deadline
                if first_deadline is not None and path in self._starting:
                    until = max(deadline, first_deadline)
                remaining = until - time.monotonic()
                if self._stopped is not None or remaining <= 0:
                    raise self._unavailable(path)
                self._changed.wait(remaining)

    def _unavailable(self, path: Path) -> ChildUnavailableError:
        if self._stopped is not None:
            return ChildUnavailableError(self.name_of(path), self._stopped)
        if path not in self._refs:
            return ChildUnavailableError(
                self.name_of(path),
                "no child lives at this path (not started yet, terminated, or its "
                "supervisor stopped)",
            )
        if path in self._starting:
            return ChildUnavailableError(
                self.name_of(path),
                "its first incarnation has not started in time (its supervisor "
                "is still starting it, or cannot: see its last failure in the "
                "tree)",
            )
        return ChildUnavailableError(
            self.name_of(path), "it has no live incarnation yet (it is restarting)"
        )

    # -- snapshots ----------------------------------------------------------------

    def next_generation(self) -> int:
        """A number larger than any handed out before: a supervisor takes one
        when it is constructed, so that its snapshot supersedes its
        predecessors' (an abandoned incarnation may publish after it)."""
        with self._changed:
            return next(self._generations)

    def publish(self, path: Path, publication: Publication) -> None:
        with self._changed:
            known = self._snapshots.get(path)
            if publication.complete:
                if known is not None and known.generation > publication.generation:
                    return  # a superseded incarnation, late
                known = _Snapshot(
                    publication.owner, publication.generation, publication.header, {}
                )
                self._snapshots[path] = known
            elif known is None or known.owner != publication.owner:
                return  # superseded, or its path was closed
            known.header = publication.header
            for child_id in publication.gone:
                known.children.pop(child_id, None)
            for child, urn in publication.changed:
                known.children[child.id] = (child, urn)

    def info(self, path: Path) -> SupervisorInfo | None:
        with self._changed:
            return self._assemble(path, None)

    def _assemble(self, path: Path, owner: str | None) -> SupervisorInfo | None:
        snapshot = self._snapshots.get(path)
        if snapshot is None or owner not in (None, snapshot.owner):
            return None
        children = tuple(
            self._nest(path, child, urn) for child, urn in snapshot.children.values()
        )
        return attrs.evolve(snapshot.header, children=children)

    def _nest(self, path: Path, child: ChildInfo, urn: str | None) -> ChildInfo:
        if urn is None:
            return child
        return attrs.evolve(child, supervisor=self._assemble((*path, child.id), urn))


@attrs.frozen
class Handle:
    """Where a supervisor sits: its tree and its path in it.

    Each supervisor registers its handle by actor urn and holds it, so the entry
    lives as long as the supervisor object; a ref is made from it without
    messaging the supervisor (which may have failed to start)."""

    tree: Tree
    path: Path

    @classmethod
    def register(cls, actor_urn: str, tree: Tree, path: Path) -> Handle:
        handle = cls(tree, path)
        _handles[actor_urn] = handle
        return handle

    @staticmethod
    def of(actor_urn: str) -> Handle | None:
        return _handles.get(actor_urn)


_handles: weakref.WeakValueDictionary[str, Handle] = weakref.WeakValueDictionary()
