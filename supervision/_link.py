"""The tie between a supervisor and one incarnation of one child.

A supervisor calls a child's start factory inside ``offering(link)``; the
``SupervisedActor`` the factory constructs (its ``__init__`` runs in the
supervisor's thread) claims the link. Factories keep the plain signature
``() -> ActorRef`` and actors need no constructor argument to be supervised.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import pykka

from supervision._messages import ChildExited

if TYPE_CHECKING:
    from supervision._tree import Path, Tree

__all__ = ["Link", "claim_offered", "offering"]

_offered: ContextVar[Link | None] = ContextVar(
    "chronik_supervision_offer", default=None
)


@contextmanager
def offering(link: Link) -> Iterator[None]:
    token = _offered.set(link)
    try:
        yield
    finally:
        _offered.reset(token)


def claim_offered(actor_ref: pykka.ActorRef[Any]) -> Link | None:
    """The link on offer, if no other actor took it first."""
    link = _offered.get()
    if link is None or not link.claim(actor_ref):
        return None
    return link


class Link:
    def __init__(
        self,
        tree: Tree,
        path: Path,
        supervisor: pykka.ActorRef[Any],
        incarnation: int,
    ) -> None:
        self.tree = tree
        self.path = path
        self.supervisor = supervisor
        self.incarnation = incarnation
        self.actor_ref: pykka.ActorRef[Any] | None = None
        self.exit_reason: BaseException | None = None  # the incarnation's first failure
        self._lock = threading.Lock()
        # Invariant: _starting is True from the supervisor's begin() until the
        # incarnation's on_start returned (or the start was abandoned): one end().
        self._starting = True
        self._detached = False  # the supervisor stops this incarnation itself
        self._reporting = False  # an exit report is on its way (counted in activity)
        tree.activity.begin()

    @property
    def child_id(self) -> str:
        return self.path[-1]

    def claim(self, actor_ref: pykka.ActorRef[Any]) -> bool:
        with self._lock:
            if self.actor_ref is not None:
                return False
            self.actor_ref = actor_ref
            # Under the lock: a supervisor that detached this link first (it
            # refused an adoption) keeps its path's incarnation.
            if not self._detached:
                self.tree.set(self.path, actor_ref)
        return True

    def started(self) -> None:
        """The incarnation's on_start returned, or it will never run."""
        with self._lock:
            starting, self._starting = self._starting, False
        if starting:
            self.tree.activity.end()

    def detach(self) -> None:
        """From now on the supervisor needs no exit report: it is stopping the
        incarnation itself and reads ``exit_reason`` when it has stopped."""
        with self._lock:
            self._detached = True

    @property
    def detached(self) -> bool:
        with self._lock:
            return self._detached

    def record(self, reason: BaseException) -> None:
        with self._lock:
            if self.exit_reason is None:
                self.exit_reason = reason

    def begin_exit(self) -> None:
        """The incarnation is ending; count its report until the supervisor has
        handled it (unless the supervisor is the one stopping it)."""
        with self._lock:
            if self._detached or self._reporting:
                return
            self._reporting = True
        self.tree.activity.begin()

    def report(self, actor_ref: pykka.ActorRef[Any]) -> None:
        """Called once, last thing in the incarnation's thread."""
        self.tree.clear_if(self.path, actor_ref)
        with self._lock:
            reporting = self._reporting
        if not reporting:
            return
        message = ChildExited(self.child_id, self.incarnation, self.exit_reason)
        try:
            self.supervisor.tell(message)
        except pykka.ActorDeadError:
            self.tree.activity.end()  # nobody is left to handle it
