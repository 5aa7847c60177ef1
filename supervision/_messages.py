"""The messages a supervisor handles. Each is a frozen value; a supervisor routes
each one to a single ``_on_<message>`` method."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from supervision._link import Link
    from supervision._spec import ChildSpec

__all__ = [
    "ACCOUNTED",
    "AbandonChild",
    "AdoptChild",
    "ChildExited",
    "RestartDue",
    "StartChild",
    "StartFailed",
    "TerminateChild",
]


@attrs.frozen
class ChildExited:
    """An incarnation of a child ended; ``reason`` is None for a normal exit."""

    child_id: str
    incarnation: int
    reason: BaseException | None


@attrs.frozen
class StartFailed:
    """Starting ``child_id`` failed; handled like a failure of the child, one
    message at a time (as OTP's try_again_restart), so that a child that never
    starts cannot spin the supervisor."""

    child_id: str
    token: int
    reason: BaseException


@attrs.frozen
class RestartDue:
    """The backoff pause of the children waiting under ``token`` is over."""

    token: int


@attrs.frozen
class StartChild:
    """Add a child at run time and start it (OTP's start_child)."""

    spec: ChildSpec


@attrs.frozen
class AdoptChild:
    """Add a child at run time whose first incarnation its caller starts itself
    under ``link`` (``SupervisorRef.adopt_child``); sent before that start, so it
    arrives before the incarnation's exit could."""

    spec: ChildSpec
    link: Link


@attrs.frozen
class AbandonChild:
    """The caller's start of an adopted child failed: forget the child (if this
    supervisor still holds that incarnation)."""

    child_id: str
    incarnation: int


@attrs.frozen
class TerminateChild:
    """Stop a child and forget its spec (OTP's terminate_child + delete_child)."""

    child_id: str


ACCOUNTED = (ChildExited, StartFailed, RestartDue, AdoptChild, AbandonChild)
"""Messages counted in the tree's activity from the moment they are sent until a
supervisor has handled them (see ``Activity``)."""
