"""The rules of a step's attempts: how long each may run, whether a failed one is
retried and after how long, and the schedule-to-close budget they share.

Pure decisions over a step's definition and the time it has used; the worker
(``actors/_worker.py``) applies them on its threads and its event loop.
"""

from __future__ import annotations

import logging
import time

import attrs

from actors._definitions import ActivityDefinition
from actors._errors import StepTimeoutError
from aggregates import ErrorInfo
from journal import UnencodableValueError

__all__ = ["Limit", "Spent", "judge", "log_failure", "time_limit"]

logger = logging.getLogger("chronik.actors")


class Spent:
    """The time a step has used of its schedule-to-close timeout.

    That is ``already`` (used before a crash, when a run resumes the step), plus
    the real time since the worker took the step outside its retry waits, plus
    every retry delay in full as asked of the clock: a ``ManualClock`` wait is
    over at once yet its delay counts in full, and a ``SystemClock`` wait counts
    once, not as real time and again as a delay.
    """

    def __init__(self, already: float = 0.0) -> None:
        self._started = time.monotonic()
        # Invariant: ``already`` plus the delays waited minus the real time
        # those waits took.
        self._extra = already

    def seconds(self) -> float:
        return time.monotonic() - self._started + self._extra

    def wait_began(self) -> float:
        """A retry wait begins now: hand the result to ``wait_ended``."""
        return time.monotonic()

    def wait_ended(self, began: float, delay: float) -> None:
        """The wait begun at ``began`` for a ``delay`` asked of the clock is over."""
        self._extra += delay - (time.monotonic() - began)


@attrs.frozen
class Limit:
    """How long an attempt may run, and the error it fails with past that."""

    seconds: float
    error: StepTimeoutError


def time_limit(step: ActivityDefinition, spent: Spent) -> Limit | None:
    """The lesser of start-to-close and what is left of schedule-to-close."""
    per_attempt, whole = step.start_to_close, step.schedule_to_close
    if whole is not None:
        left = max(whole - spent.seconds(), 0.0)
        if per_attempt is None or left < per_attempt:
            return Limit(left, StepTimeoutError(step.name, whole, "schedule_to_close"))
    if per_attempt is not None:
        return Limit(per_attempt, StepTimeoutError(step.name, per_attempt))
    return None


def judge(
    step: ActivityDefinition, error: Exception, attempt: int, spent: Spent
) -> tuple[ErrorInfo, float | None]:
    """The failed attempt as recorded, and the delay before the next (None: final)."""
    if isinstance(error, UnencodableValueError):
        # The same result would come back on a retry: fail for good.
        return ErrorInfo.from_exception(error, retryable=False), None
    if isinstance(error, StepTimeoutError) and error.kind == "schedule_to_close":
        return ErrorInfo.from_exception(error, retryable=False), None
    if not step.retry.retries(error, attempt):
        return ErrorInfo.from_exception(error, retryable=False), None
    delay = step.retry.delay(attempt)
    whole = step.schedule_to_close
    if whole is not None and spent.seconds() + delay >= whole:
        cause = f"{type(error).__qualname__}: {error}"
        late = StepTimeoutError(step.name, whole, "schedule_to_close", cause)
        return ErrorInfo.from_exception(late, retryable=False), None
    return ErrorInfo.from_exception(error, retryable=True), delay


def log_failure(
    step: ActivityDefinition, error: ErrorInfo, delay: float | None
) -> None:
    if not logger.isEnabledFor(logging.WARNING):
        return
    if delay is None:
        logger.warning(
            "step %s failed for good (%s: %s); the workflow gets StepFailed",
            step.name,
            error.type,
            error.message,
        )
    else:
        logger.warning(
            "step %s failed (%s: %s); retrying in %.3g s",
            step.name,
            error.type,
            error.message,
            delay,
        )
