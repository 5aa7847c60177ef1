"""``Worker``: runs steps (activities) outside the actors, to their outcome.

Sync steps run on a ``StepPool`` of at most ``max_workers`` threads; async steps
all run on one shared event loop thread (``StepLoop``), started at the first.
Nothing sleeps on a thread: one ``Watchdog`` thread fails sync attempts past
their limit and starts the retries of sync steps once their wait is over; the
loop does both with asyncio for async steps.

Threads stay bounded: at most ``max_workers`` pool threads, the watchdog and
the loop. A sync attempt past its limit fails at once (and is retried, as its
policy says), but Python cannot stop it: it keeps its pool thread until it
returns, and that thread counts against ``max_workers`` meanwhile. Its late
result is dropped, and a warning names it once (when it returns, or once it
has overrun by ``overrun_warning_after`` seconds, whichever comes first).

Every failed attempt that will be retried is reported (``AttemptFailed``) as it
fails, then the end once (``StepOutcome``, with ``failures`` empty: the reports
are the failures). A worker that is closing takes no step, drops the attempts
waiting for a thread or for their retry wait, and reports no retry: what was not
recorded runs again when the journal is reopened. A step handed over while a
thread (or the loop) was free for it is under way, and runs.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from actors._attempts import Limit, Spent, judge, log_failure, time_limit
from actors._clock import Clock
from actors._definitions import ActivityDefinition
from actors._info import ActivityInfo, info_var
from actors._logs import RunScope, enter_scope, leave_scope
from actors._messages import AttemptFailed, StepOutcome
from actors._metrics import Metrics
from actors._pool import StepPool
from actors._steploop import StepLoop
from actors._watchdog import Watchdog

__all__ = ["Report", "StepJob", "Worker", "WorkerError"]

logger = logging.getLogger("chronik.actors")


@attrs.frozen
class StepJob:
    """A step to run from attempt ``first_attempt`` on (a run resuming a step
    whose earlier attempts failed before a crash), with ``spent`` seconds of
    its schedule-to-close budget used and ``delay`` seconds of backoff still to
    wait before that attempt."""

    step: ActivityDefinition
    args: tuple[Any, ...]
    workflow_id: str
    seq: int
    first_attempt: int = 1
    spent: float = 0.0
    delay: float = 0.0
    fencing_token: int | None = None  # the run's host's, if shared

    @property
    def idempotency_key(self) -> str:
        return f"{self.workflow_id}/{self.seq}"


@attrs.frozen
class WorkerError:
    """The worker itself failed running step ``seq`` (a bug, not a step error):
    a failure that must reach the run's supervisor, not only a log."""

    seq: int
    error: BaseException


Report = Callable[[AttemptFailed | StepOutcome | WorkerError], None]
"""Told each failed attempt to be retried, then the outcome; from any thread."""


class Worker:
    def __init__(
        self,
        max_workers: int,
        *,
        clock: Clock,
        normalise: Callable[[Any], Any],
        metrics: Metrics | None = None,
        overrun_warning_after: float = 1.0,
    ) -> None:
        self.clock = clock
        self.normalise = normalise  # a value as history holds it; raises if it can't
        self.metrics = metrics or Metrics()
        self.overrun_warning_after = overrun_warning_after
        self.pool = StepPool(max_workers)
        self.watchdog = Watchdog()
        self.loop = StepLoop()
        self.overruns = 0  # sync attempts that ran past their limit, so far
        self._closing = threading.Event()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    @property
    def threads(self) -> int:
        """How many threads the worker holds now."""
        return self.pool.threads + int(self.watchdog.alive) + int(self.loop.alive)

    @property
    def overrunning(self) -> int:
        """Sync attempts past their limit that still hold a pool thread."""
        return self.pool.overrunning

    def submit(self, job: StepJob, report: Report) -> None:
        """Run ``job`` to its outcome, telling ``report`` how it goes; nothing
        once the worker is closing."""
        if self.closing:
            return
        if job.step.is_async:
            self.loop.start(_Run(self, job, report))
        else:
            _SyncRun(self, job, report).wait_then_attempt(job.delay)

    def close(self, wait: bool = True) -> None:
        """Take no more work and drop the attempts waiting for a thread or a
        retry wait (they run again when the journal is reopened); the attempts
        under way finish and report; then the threads end (those of overrunning
        attempts when they return). With ``wait=False`` this winds down in the
        background."""
        self._closing.set()
        if not wait:
            threading.Thread(target=self._wind_down, daemon=True).start()
            return
        self._wind_down()

    def _wind_down(self) -> None:
        self.loop.close()
        self.pool.drain()  # the watchdog times out running attempts meanwhile
        self.watchdog.close()


class _Run:
    """One step being run: its attempt number and budget move on as it fails."""

    def __init__(self, worker: Worker, job: StepJob, report: Report) -> None:
        self.worker = worker
        self.job = job
        self.attempt = job.first_attempt
        self.spent = Spent(job.spent)
        self._report = report

    def begin(self) -> tuple[Limit | None, contextvars.Context]:
        """A new attempt: its limit, and a context in which the step sees its
        ``activity.info()`` and logs in the run's scope."""
        job = self.job
        self.worker.metrics.add("step_attempts")
        limit = time_limit(job.step, self.spent)
        seconds = None if limit is None else limit.seconds
        info = ActivityInfo(
            job.workflow_id,
            job.seq,
            job.step.name,
            self.attempt,
            seconds,
            job.fencing_token,
        )
        context = contextvars.Context()
        context.run(_enter, info, RunScope(job.workflow_id, job.seq, self.attempt))
        return limit, context

    def failed(self, error: Exception) -> float | None:
        """The attempt failed: report the end, or the retry and return its delay."""
        job, worker = self.job, self.worker
        recorded, delay = judge(job.step, error, self.attempt, self.spent)
        log_failure(job.step, recorded, delay)
        if delay is None:
            self.report(StepOutcome(job.seq, None, recorded, (), worker.clock.now()))
            return None
        if worker.closing:
            return None  # no retry here: nothing is recorded, it runs on reopening
        now = worker.clock.now()
        self.report(AttemptFailed(job.seq, self.attempt, recorded, now, delay))
        worker.metrics.add("step_retries")
        self.attempt += 1
        return delay

    def succeeded(self, result: Any) -> None:
        self.report(
            StepOutcome(self.job.seq, result, None, (), self.worker.clock.now())
        )

    def broke(self, error: BaseException) -> None:
        logger.error(
            "the worker failed running step %s (%s): %r",
            self.job.step.name,
            self.job.idempotency_key,
            error,
        )
        self.report(WorkerError(self.job.seq, error))

    def report(self, message: AttemptFailed | StepOutcome | WorkerError) -> None:
        try:
            self._report(message)
        except Exception:  # nobody else to tell: the report is the only outlet
            logger.exception("reporting %r failed", message)


def _enter(info: ActivityInfo, scope: RunScope) -> None:
    info_var.set(info)
    enter_scope(scope)


class _Watch:
    """A sync attempt with a limit: it ends once, on time or timed out."""

    def __init__(self, limit: Limit, info: ActivityInfo) -> None:
        self.limit = limit
        self.info = info
        self.started = time.monotonic()
        self.entry: Any = None  # the watchdog's call that times it out
        self._lock = threading.Lock()
        self._state = "running"  # then "on time" or "timed out"
        self._reported = False  # whether its overrun has been named

    def end(self, state: str) -> bool:
        """Whether this ended the attempt (it had not ended yet)."""
        with self._lock:
            if self._state != "running":
                return False
            self._state = state
            return True

    def claim_report(self) -> bool:
        with self._lock:
            reported, self._reported = self._reported, True
            return not reported

    def overrun(self) -> float:
        return time.monotonic() - self.started - self.limit.seconds


class _SyncRun(_Run):
    """A sync step: attempts on the pool, timeouts and waits on the watchdog."""

    def wait_then_attempt(self, delay: float) -> None:
        if delay <= 0:
            self.worker.pool.put(self.attempt_on_pool)  # dropped if closing
            return
        real = self.worker.clock.retry_wait(delay)
        began = self.spent.wait_began()

        def over() -> None:
            self.spent.wait_ended(began, delay)
            self.worker.pool.put(self.attempt_on_pool)

        if real <= 0:
            over()
        else:
            self.worker.watchdog.call_later(real, self._guarded(over))

    def attempt_on_pool(self) -> bool:
        """One attempt, on a pool thread; False if it overran its limit."""
        try:
            return self._attempt()
        except BaseException as error:
            self.broke(error)
            return True

    def _attempt(self) -> bool:
        job, worker = self.job, self.worker
        limit, context = self.begin()
        watch = None
        if limit is not None:
            info = context.run(info_var.get)
            assert info is not None
            watch = _Watch(limit, info)
            timeout = self._guarded(lambda: self._time_out(watch))
            watch.entry = worker.watchdog.call_later(limit.seconds, timeout)
        thread = threading.current_thread()
        name = thread.name  # named for the attempt while it runs
        thread.name = f"chronik-step {job.idempotency_key} attempt {self.attempt}"
        error: Exception | None = None
        try:
            result = context.run(job.step.fn, *job.args)
        except Exception as raised:
            error = raised
        finally:
            thread.name = name
        if watch is not None:
            if not watch.end("on time"):
                context.run(self._came_back_late, watch)
                return False
            worker.watchdog.cancel(watch.entry)
        if error is None:
            try:  # as history will hold it: the live run sees what a replay sees
                result = worker.normalise(result)
            except Exception as raised:
                error = raised
        if error is None:
            self.succeeded(result)
            return True
        delay = context.run(self.failed, error)
        if delay is not None:
            self.wait_then_attempt(delay)
        return True

    def _time_out(self, watch: _Watch) -> None:
        """On the watchdog: fail an attempt past its limit, which runs on."""
        if not watch.end("timed out"):
            return
        self.worker.pool.overran()
        self.worker.overruns += 1
        after = self.worker.overrun_warning_after
        watch.entry = self.worker.watchdog.call_later(
            after, lambda: self._still_overrunning(watch)
        )
        token = enter_scope(RunScope(self.job.workflow_id, self.job.seq, self.attempt))
        try:
            delay = self.failed(watch.limit.error)
        finally:
            leave_scope(token)
        if delay is not None:
            self.wait_then_attempt(delay)

    def _still_overrunning(self, watch: _Watch) -> None:
        if not watch.claim_report():
            return
        scope = RunScope(self.job.workflow_id, self.job.seq, watch.info.attempt)
        token = enter_scope(scope)
        try:
            logger.warning(
                "step %s attempt %d (idempotency key %s) has overrun its %.3g s "
                "limit by %.3g s and still holds a worker thread: Python cannot "
                "stop it; its result will be dropped",
                self.job.step.name,
                watch.info.attempt,
                watch.info.idempotency_key,
                watch.limit.seconds,
                watch.overrun(),
            )
        finally:
            leave_scope(token)

    def _came_back_late(self, watch: _Watch) -> None:
        self.worker.watchdog.cancel(watch.entry)
        if watch.claim_report():
            logger.warning(
                "step %s attempt %d (idempotency key %s) returned %.3g s past its "
                "%.3g s limit; its result is dropped (it was retried or failed)",
                self.job.step.name,
                watch.info.attempt,
                watch.info.idempotency_key,
                watch.overrun(),
                watch.limit.seconds,
            )

    def _guarded(self, call: Callable[[], None]) -> Callable[[], None]:
        def guarded() -> None:
            try:
                call()
            except BaseException as error:
                self.broke(error)

        return guarded
