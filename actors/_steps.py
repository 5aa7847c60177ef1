"""Running one step to its outcome: attempts, retries with backoff, timeouts.

This runs on a worker thread of the system's pool, never on an actor's thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import attrs

from actors._clock import Clock
from actors._definitions import ActivityDefinition
from actors._errors import StepTimeoutError
from actors._info import ActivityInfo, info_var
from actors._logs import RunScope, enter_scope, leave_scope
from actors._messages import AttemptFailure, StepOutcome
from actors._metrics import Metrics
from aggregates import ErrorInfo
from journal import UnencodableValueError

__all__ = ["run_step"]

logger = logging.getLogger("chronik.actors")


def run_step(
    step: ActivityDefinition,
    args: tuple[Any, ...],
    workflow_id: str,
    seq: int,
    *,
    clock: Clock,
    normalise: Callable[[Any], Any],
    stopping: threading.Event,
    metrics: Metrics | None = None,
) -> StepOutcome | None:
    """Attempt ``step`` until it succeeds, its policy gives up, or its
    schedule-to-close timeout is used up.

    ``None`` when the system began closing between attempts: nothing is recorded,
    so the step runs again when the journal is reopened.
    """
    metrics = metrics or Metrics()
    spent = _Spent()
    failures: list[AttemptFailure] = []
    attempt = 1
    scope = RunScope(workflow_id, seq)
    token = enter_scope(scope)  # this thread's log records name the attempt
    try:
        while True:
            scope.attempt = attempt
            metrics.add("step_attempts")
            limit = _time_limit(step, spent)
            seconds = None if limit is None else limit.seconds
            info = ActivityInfo(workflow_id, seq, step.name, attempt, seconds)
            try:
                # As history will hold it: the live run sees what a replay sees.
                result = normalise(_attempt(step, args, info, limit))
            except Exception as error:
                recorded, delay = _judge(step, error, attempt, spent)
                _log_failure(step, recorded, delay)
                if delay is None:
                    return StepOutcome(
                        seq, None, recorded, tuple(failures), clock.now()
                    )
                failures.append(AttemptFailure(attempt, recorded, clock.now()))
                if stopping.is_set():
                    return None
                metrics.add("step_retries")
                spent.sleep(clock, delay)
                attempt += 1
            else:
                return StepOutcome(seq, result, None, tuple(failures), clock.now())
    finally:
        leave_scope(token)


def _log_failure(
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


class _Spent:
    """The time a step has used of its schedule-to-close timeout.

    That is the real time outside retry sleeps plus every retry delay as asked of
    the clock: a ``ManualClock`` sleep returns at once yet its delay counts in
    full, and a ``SystemClock`` sleep counts once, not as real time and again as
    a delay. The budget starts with the first attempt of this ``run_step``: after
    the journal is reopened, a step that was in flight starts a new one.
    """

    def __init__(self) -> None:
        self._started = time.monotonic()
        # Invariant: the delays asked of clock.sleep minus the real time it took.
        self._delays_over_slept = 0.0

    def seconds(self) -> float:
        return time.monotonic() - self._started + self._delays_over_slept

    def sleep(self, clock: Clock, delay: float) -> None:
        before = time.monotonic()
        clock.sleep(delay)
        self._delays_over_slept += delay - (time.monotonic() - before)


@attrs.frozen
class _Limit:
    """How long an attempt may run, and the error it fails with past that."""

    seconds: float
    error: StepTimeoutError


def _time_limit(step: ActivityDefinition, spent: _Spent) -> _Limit | None:
    """The lesser of start-to-close and what is left of schedule-to-close."""
    per_attempt, whole = step.start_to_close, step.schedule_to_close
    if whole is not None:
        left = max(whole - spent.seconds(), 0.0)
        if per_attempt is None or left < per_attempt:
            return _Limit(left, StepTimeoutError(step.name, whole, "schedule_to_close"))
    if per_attempt is not None:
        return _Limit(per_attempt, StepTimeoutError(step.name, per_attempt))
    return None


def _judge(
    step: ActivityDefinition, error: Exception, attempt: int, spent: _Spent
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


def _attempt(
    step: ActivityDefinition,
    args: tuple[Any, ...],
    info: ActivityInfo,
    limit: _Limit | None,
) -> Any:
    context = contextvars.copy_context()
    context.run(info_var.set, info)
    if step.is_async:
        # asyncio.run copies the context it is called in into the step's task.
        return context.run(asyncio.run, _async_attempt(step, args, limit))
    if limit is None:
        return context.run(step.fn, *args)
    name = f"chronik-step {info.idempotency_key} attempt {info.attempt}"
    return _on_own_thread(lambda: context.run(step.fn, *args), name, limit)


def _on_own_thread(call: Callable[[], Any], name: str, limit: _Limit) -> Any:
    """Run ``call`` on a daemon thread, and wait for it at most ``limit``.

    Python cannot stop a thread, so an attempt past its limit is abandoned: it
    runs on and its outcome is dropped, while the worker moves on to the retry.
    Such a late duplicate is what the idempotency key, the same on every
    attempt, lets the step's side effects detect.
    """
    outcome: futures.Future[Any] = futures.Future()

    def run() -> None:
        try:
            outcome.set_result(call())
        except BaseException as error:  # handed to the worker, which raises it
            outcome.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    done, _ = futures.wait([outcome], timeout=limit.seconds)
    if not done:
        raise limit.error
    return outcome.result()


async def _async_attempt(
    step: ActivityDefinition, args: tuple[Any, ...], limit: _Limit | None
) -> Any:
    if limit is None:
        return await step.fn(*args)
    # asyncio.wait, not wait_for: a TimeoutError the step raises itself (a socket
    # timeout, say) is its own failure, not this step's timeout.
    task = asyncio.ensure_future(step.fn(*args))
    done, _ = await asyncio.wait({task}, timeout=limit.seconds)
    if done:
        return task.result()
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log the dropped outcome
    raise limit.error
