"""The vocabulary of a run's history: statuses and kinds of commands and outcomes.

Events and the aggregate's state hold the plain ``str`` values, so any transcoder
stores them; these enums are what callers pass and get back.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CommandKind", "OutcomeKind", "RunStatus", "ValueKind"]


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class CommandKind(StrEnum):
    """What workflow code asked for at one seq."""

    STEP = "step"  # ctx.call
    TIMER = "timer"  # ctx.sleep, ctx.sleep_until
    RECEIVE = "receive"  # ctx.receive
    VALUE = "value"  # ctx.now, ctx.uuid4, ctx.random
    CHILD = "child"  # ctx.spawn
    PATCH = "patch"  # ctx.patched
    PUBLISH = "publish"  # ctx.publish (the transactional outbox)


class ValueKind(StrEnum):
    """Which non-deterministic value a ``VALUE`` command recorded."""

    NOW = "now"
    UUID = "uuid"
    RANDOM = "random"


class OutcomeKind(StrEnum):
    COMPLETED = "completed"  # a result (None for a fired timer)
    FAILED = "failed"  # an ErrorInfo
    TIMED_OUT = "timed_out"  # a receive whose deadline passed first
