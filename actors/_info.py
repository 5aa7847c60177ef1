"""``ActivityInfo``: what a running step attempt knows about itself."""

from __future__ import annotations

from contextvars import ContextVar

import attrs

__all__ = ["ActivityInfo", "current_info", "info_var"]


@attrs.frozen
class ActivityInfo:
    """Handed to every attempt; ``idempotency_key`` is ``"{workflow_id}/{seq}"``,
    the same on every retry, after a crash and on replay.

    ``time_limit`` is how many seconds this attempt may run before it counts as
    timed out (the lesser of the step's start-to-close timeout and what is left of
    its schedule-to-close timeout), or None: pass it on to clients and calls that
    take a timeout, so the attempt ends before it is abandoned.

    ``fencing_token`` is the token of the lease under which this host drives
    the run: larger every time the run's partition changes host. Hand it to a
    store that refuses writes from older tokens (``UPDATE ... SET ..., fence =
    :token WHERE id = :id AND fence < :token``): a host that lost the run while
    this attempt ran can then not overwrite its successor's work.
    """

    workflow_id: str
    seq: int
    step: str
    attempt: int
    time_limit: float | None = None
    fencing_token: int | None = None

    @property
    def idempotency_key(self) -> str:
        return f"{self.workflow_id}/{self.seq}"


info_var: ContextVar[ActivityInfo | None] = ContextVar("chronik_activity", default=None)


def current_info() -> ActivityInfo | None:
    return info_var.get()
