"""The events of a workflow run: its history.

The history alone determines the run: replaying these events through the aggregate
gives the same state every time. Events hold plain data only (errors as
``ErrorInfo.to_dict()`` dicts, kinds as ``str``), so any transcoder stores them.

Each event's ``timestamp`` is the time the caller passed in (``at=``): the aggregate
has no clock. So ``Started.timestamp`` is when the run started, and
``StepScheduled.timestamp`` when the step was scheduled.

The events are frozen attrs classes (``slots=False``: eventsourcing's mapper reads and
restores ``vars()``); applying one hands it to the aggregate's ``_apply_<event>``.
Their stored topics are ``aggregates:<Name>`` (see ``_topics``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import attrs
from eventsourcing.domain import CanInitAggregate, CanMutateAggregate

from aggregates._topics import public_topic

__all__ = [
    "CancelRequested",
    "Cancelled",
    "ChildFinished",
    "ChildStarted",
    "Completed",
    "Failed",
    "MessagePublished",
    "PatchRecorded",
    "ReceiveTimedOut",
    "RunEvent",
    "SignalAwaited",
    "SignalConsumed",
    "SignalReceived",
    "Started",
    "StepCompleted",
    "StepFailed",
    "StepScheduled",
    "TimerFired",
    "TimerStarted",
    "ValueRecorded",
]


class _AppliesEvents(Protocol):
    def _apply_event(self, event: RunEvent) -> None: ...


@attrs.frozen(slots=False, kw_only=True)
class RunEvent(CanMutateAggregate[str]):
    """Base of every event of a workflow run; the originator id is the workflow id."""

    originator_id: str
    originator_version: int
    timestamp: datetime

    TOPIC = "aggregates:RunEvent"

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.TOPIC = public_topic(cls)

    @staticmethod
    def create_timestamp() -> datetime:
        # eventsourcing calls this when no timestamp was given; there is no clock here.
        msg = "events of a workflow run take their time from the caller: pass at="
        raise TypeError(msg)

    def apply(self, aggregate: _AppliesEvents) -> None:
        aggregate._apply_event(self)


@attrs.frozen(slots=False, kw_only=True)
class Started(RunEvent, CanInitAggregate[str]):
    """The run began: workflow ``name`` called with ``args`` and ``kwargs``."""

    originator_topic: str
    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    parent_id: str | None


@attrs.frozen(slots=False, kw_only=True)
class StepScheduled(RunEvent):
    seq: int
    name: str
    args: list[Any]


@attrs.frozen(slots=False, kw_only=True)
class StepCompleted(RunEvent):
    seq: int
    result: Any


@attrs.frozen(slots=False, kw_only=True)
class StepFailed(RunEvent):
    """Attempt ``attempt`` failed; ``final`` means no retry follows (the outcome)."""

    seq: int
    error: dict[str, Any]
    attempt: int
    final: bool


@attrs.frozen(slots=False, kw_only=True)
class TimerStarted(RunEvent):
    seq: int
    fire_at: datetime


@attrs.frozen(slots=False, kw_only=True)
class TimerFired(RunEvent):
    seq: int


@attrs.frozen(slots=False, kw_only=True)
class SignalReceived(RunEvent):
    """A signal was acknowledged; it waits in its topic's queue until consumed."""

    topic: str
    payload: Any
    signal_id: str


@attrs.frozen(slots=False, kw_only=True)
class SignalAwaited(RunEvent):
    """The code waits for a signal on ``topic``, until ``timeout_at`` if set."""

    seq: int
    topic: str
    timeout_at: datetime | None


@attrs.frozen(slots=False, kw_only=True)
class SignalConsumed(RunEvent):
    """The receive at ``seq`` took the oldest pending signal of its topic."""

    seq: int
    topic: str
    signal_id: str


@attrs.frozen(slots=False, kw_only=True)
class ReceiveTimedOut(RunEvent):
    seq: int


@attrs.frozen(slots=False, kw_only=True)
class ValueRecorded(RunEvent):
    """A non-deterministic value (``kind`` now, uuid or random), recorded once."""

    seq: int
    kind: str
    value: Any


@attrs.frozen(slots=False, kw_only=True)
class ChildStarted(RunEvent):
    seq: int
    child_id: str
    name: str


@attrs.frozen(slots=False, kw_only=True)
class ChildFinished(RunEvent):
    """The child run ended: ``error`` is set if it failed, else ``result`` holds."""

    seq: int
    result: Any
    error: dict[str, Any] | None


@attrs.frozen(slots=False, kw_only=True)
class MessagePublished(RunEvent):
    """A message for ``topic`` the run published (``ctx.publish``): it is in the
    journal with the run's events of the same commit, for the outbox's relay to
    deliver. ``key`` orders delivery (messages of one key in publishing order)."""

    seq: int
    topic: str
    payload: Any
    key: str | None


@attrs.frozen(slots=False, kw_only=True)
class PatchRecorded(RunEvent):
    seq: int
    patch_id: str


@attrs.frozen(slots=False, kw_only=True)
class CancelRequested(RunEvent):
    """Cancellation asked for while the code waited on commands up to ``after_seq``:
    replay throws it at the await that issued seq ``after_seq``."""

    reason: str
    after_seq: int


@attrs.frozen(slots=False, kw_only=True)
class Completed(RunEvent):
    result: Any


@attrs.frozen(slots=False, kw_only=True)
class Failed(RunEvent):
    error: dict[str, Any]


@attrs.frozen(slots=False, kw_only=True)
class Cancelled(RunEvent):
    reason: str
