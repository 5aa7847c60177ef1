"""The messages a workflow actor receives; each has one ``_on_<message>`` method."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from aggregates import ErrorInfo

__all__ = ["AttemptFailure", "DeliverSignal", "StepOutcome", "TimerDue"]


@attrs.frozen
class AttemptFailure:
    attempt: int
    error: ErrorInfo
    at: datetime


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
