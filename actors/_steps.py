"""Running one step to its outcome: attempts, retries with backoff, timeouts.

This runs on a worker thread of the system's pool, never on an actor's thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from actors._clock import Clock
from actors._definitions import ActivityDefinition
from actors._errors import StepTimeoutError
from actors._info import ActivityInfo, info_var
from actors._messages import AttemptFailure, StepOutcome
from aggregates import ErrorInfo
from journal import UnencodableValueError

__all__ = ["run_step"]


def run_step(
    step: ActivityDefinition,
    args: tuple[Any, ...],
    workflow_id: str,
    seq: int,
    *,
    clock: Clock,
    check_encodable: Callable[[Any], None],
    stopping: threading.Event,
) -> StepOutcome | None:
    """Attempt ``step`` until it succeeds or its policy gives up.

    ``None`` when the system began closing between attempts: nothing is recorded,
    so the step runs again when the journal is reopened.
    """
    failures: list[AttemptFailure] = []
    attempt = 1
    while True:
        info = ActivityInfo(workflow_id, seq, step.name, attempt)
        try:
            result = _attempt(step, args, info)
            check_encodable(result)
        except UnencodableValueError as error:
            # The same result would come back on a retry: fail for good.
            final = ErrorInfo.from_exception(error, retryable=False)
            return StepOutcome(seq, None, final, tuple(failures), clock.now())
        except Exception as error:
            retries = step.retry.retries(error, attempt)
            info_of = ErrorInfo.from_exception(error, retryable=retries)
            if not retries:
                return StepOutcome(seq, None, info_of, tuple(failures), clock.now())
            failures.append(AttemptFailure(attempt, info_of, clock.now()))
            if stopping.is_set():
                return None
            clock.sleep(step.retry.delay(attempt))
            attempt += 1
            continue
        return StepOutcome(seq, result, None, tuple(failures), clock.now())


def _attempt(
    step: ActivityDefinition, args: tuple[Any, ...], info: ActivityInfo
) -> Any:
    token = info_var.set(info)
    try:
        if step.is_async:
            return asyncio.run(_async_attempt(step, args))
        started = time.monotonic()
        result = step.fn(*args)
        if step.timeout is not None and time.monotonic() - started > step.timeout:
            raise StepTimeoutError(step.name, step.timeout)
        return result
    finally:
        info_var.reset(token)


async def _async_attempt(step: ActivityDefinition, args: tuple[Any, ...]) -> Any:
    try:
        return await asyncio.wait_for(step.fn(*args), step.timeout)
    except TimeoutError:
        raise StepTimeoutError(step.name, step.timeout or 0.0) from None
