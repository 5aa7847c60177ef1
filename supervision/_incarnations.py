"""Starting and stopping the incarnations of a supervisor's children, in the
supervisor's thread.

``start_incarnation`` runs a child's factory under ``offering(link)``: what it
returns must be the ``SupervisedActor`` that claimed the link, else nothing it
started is left running. ``terminate`` asks one child to stop and waits up to its
shutdown timeout, then abandons it (a thread cannot be killed). ``terminate_all``
asks every child first and only then waits, so that stopping ten thousand
children takes as long as the slowest of them, not the sum (a simple_one_for_one
supervisor's shutdown, whose order OTP leaves undefined too).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import attrs
import pykka

from supervision._children import Child
from supervision._clock import Clock
from supervision._errors import (
    ChildStartError,
    ShutdownTimeoutError,
    SupervisionError,
    UnsupervisedActorError,
)
from supervision._info import ChildStatus
from supervision._link import Link, offering
from supervision._tree import Handle, Tree

__all__ = [
    "Parent",
    "abandon",
    "adopt",
    "start_incarnation",
    "terminate",
    "terminate_all",
]

logger = logging.getLogger("chronik.supervision")


@attrs.frozen
class Parent:
    """The supervisor whose children these are."""

    name: str
    tree: Tree
    ref: pykka.ActorRef[Any]
    clock: Clock


# -- starting ------------------------------------------------------------------------


def start_incarnation(parent: Parent, child: Child) -> SupervisionError | None:
    """Start a new incarnation of ``child``; the error if it did not start."""
    child.incarnation += 1
    link = Link(parent.tree, child.path, parent.ref, child.incarnation)
    try:
        with offering(link):
            ref = child.spec.start()
    except BaseException as error:  # the factory is user code
        _abort_start(parent, link)
        return ChildStartError(parent.name, child.id, error)
    if link.actor_ref is None or link.actor_ref is not ref:
        _abort_start(parent, link, ref)
        returned = getattr(ref, "actor_class", type(ref)).__name__
        return UnsupervisedActorError(parent.name, child.id, returned)
    child.link, child.status, child.token = link, ChildStatus.RUNNING, None
    child.starts += 1
    child.started_at = parent.clock.monotonic()
    # Every Supervisor registers a handle as it is constructed.
    is_supervisor = Handle.of(ref.actor_urn) is not None
    child.supervisor_urn = ref.actor_urn if is_supervisor else None
    return None


def adopt(parent: Parent, child: Child, link: Link) -> None:
    """Take ``link``'s incarnation, which its caller starts (or has started) in
    its own thread, as ``child``'s first (``SupervisorRef.adopt_child``)."""
    child.incarnation = link.incarnation
    child.link, child.status, child.token = link, ChildStatus.RUNNING, None
    child.starts += 1
    child.started_at = parent.clock.monotonic()
    child.supervisor_urn = None  # adopted children are never supervisors


def abandon(link: Link) -> None:
    """Stop an incarnation no supervisor took (its adoption was refused)."""
    link.detach()
    ref = link.actor_ref
    if ref is not None:
        ref.stop(block=False)
        link.tree.clear_if(link.path, ref)
    link.started()


def _abort_start(parent: Parent, link: Link, returned: object = None) -> None:
    """Stop what a failed factory started, so that nothing runs unsupervised
    (a factory starts a fresh actor: what it returns is the supervisor's)."""
    link.detach()
    for ref in (link.actor_ref, returned):
        if isinstance(ref, pykka.ActorRef):
            ref.stop(block=False)  # twice on the same actor is harmless
            parent.tree.clear_if(link.path, ref)
    link.started()


# -- stopping ------------------------------------------------------------------------


@attrs.frozen
class _Stopping:
    """A child asked to stop, and until when (``time.monotonic``) it may take."""

    child: Child
    link: Link
    ref: pykka.ActorRef[Any]
    stopped: pykka.Future[bool]
    deadline: float | None  # None: as long as it takes


def terminate(parent: Parent, child: Child) -> None:
    """Stop ``child`` and wait up to its shutdown timeout; abandon it after."""
    terminate_all(parent, [child])


def terminate_all(parent: Parent, children: Iterable[Child]) -> None:
    """Ask every child in ``children`` to stop, then wait for each up to its own
    shutdown timeout (counted from the ask), abandoning those still running."""
    asked = [_ask_to_stop(child) for child in children]
    for stopping in asked:
        if stopping is not None:
            _await(parent, stopping)


def _ask_to_stop(child: Child) -> _Stopping | None:
    """Mark ``child`` stopped and ask its incarnation, if any, to stop."""
    child.token = None
    link, child.link = child.link, None
    child.status, child.supervisor_urn = ChildStatus.STOPPED, None
    if link is None or link.actor_ref is None:
        return None
    link.detach()  # no exit report: _await reads the exit reason itself
    ref = link.actor_ref
    shutdown = child.spec.shutdown
    deadline = None if shutdown is None else time.monotonic() + shutdown
    return _Stopping(child, link, ref, ref.stop(block=False), deadline)


def _await(parent: Parent, stopping: _Stopping) -> None:
    deadline = stopping.deadline
    try:
        stopping.stopped.get(
            timeout=None if deadline is None else max(0.0, deadline - time.monotonic())
        )
    except pykka.Timeout:
        _abandon(parent, stopping)
        return
    except Exception:  # it exited while stopping (SystemExit in on_stop, say)
        pass  # its link holds the reason
    if stopping.link.exit_reason is not None:
        stopping.child.last_failure = stopping.link.exit_reason


def _abandon(parent: Parent, stopping: _Stopping) -> None:
    """Forget an incarnation that outlived its shutdown timeout and move on."""
    child, ref = stopping.child, stopping.ref
    pykka.ActorRegistry.unregister(ref)
    parent.tree.clear_if(child.path, ref)
    child.abandoned += 1
    timeout = child.spec.shutdown or 0.0
    child.last_failure = ShutdownTimeoutError(parent.name, child.id, timeout)
    logger.error("%s", child.last_failure)
