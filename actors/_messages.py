"""The messages a workflow actor receives; each has one ``_on_<message>`` method."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from aggregates import ErrorInfo

__all__ = [
    "AttemptFailed",
    "AttemptFailure",
    "CancelRun",
    "ChildDone",
    "DeliverSignal",
    "Passivate",
    "Query",
    "Reply",
    "StepOutcome",
    "TimerDue",
    "WorkerFailed",
]


@attrs.frozen
class AttemptFailure:
    attempt: int
    error: ErrorInfo
    at: datetime


@attrs.frozen
class AttemptFailed:
    """Attempt ``attempt`` of step ``seq`` failed with ``error`` at ``at``; the
    worker tries again in ``retry_in`` seconds (as asked of the clock)."""

    seq: int
    attempt: int
    error: ErrorInfo
    at: datetime
    retry_in: float


@attrs.frozen
class StepOutcome:
    """How a step ended after all its attempts: ``error`` is None on success."""

    seq: int
    result: Any
    error: ErrorInfo | None
    failures: tuple[AttemptFailure, ...]
    finished_at: datetime


@attrs.frozen
class TimerDue:
    seq: int


@attrs.frozen
class DeliverSignal:
    """Record a signal durably, then answer the sender."""

    topic: str
    payload: Any
    signal_id: str


@attrs.frozen
class CancelRun:
    """Record a cancel request durably, throw it into the workflow, then answer."""

    reason: str


@attrs.frozen
class ChildDone:
    """A child run ended: ``error`` is None when it completed with ``result``."""

    child_id: str
    result: Any
    error: ErrorInfo | None


@attrs.frozen
class Query:
    name: str
    args: tuple[Any, ...]


@attrs.frozen
class Passivate:
    """The run has been idle since ``idle_since`` (monotonic seconds)."""

    idle_since: float


@attrs.frozen
class Reply:
    """The answer to an ``ask``: a value, or an error for the asker to raise;
    ``retry`` when the actor failed and the asker should ask its replacement."""

    value: Any = None
    error: BaseException | None = None
    retry: bool = False


@attrs.frozen
class WorkerFailed:
    """A worker thread failed outside the step itself (a bug, not a step error)."""

    seq: int
    error: BaseException
